"""Argument checks shared by layers and configs (each error names the argument), the
one atomic file writer, and the one "auto" XLA policy."""

import contextlib
import errno
import numbers
import os
import shutil

from keras_vit import compat
from keras_vit.errors import ArgumentError


def check_positive_int(name, value):
    if isinstance(value, bool) or not isinstance(value, numbers.Integral) or value <= 0:
        raise ArgumentError(
            f"Received an invalid value for argument `{name}`, expected a "
            f"positive integer. Received: {name}={value!r}"
        )
    return int(value)


def check_rate(name, value):
    if isinstance(value, bool) or not isinstance(value, numbers.Real) or not 0 <= value < 1:
        raise ArgumentError(
            f"Received an invalid value for argument `{name}`, expected a "
            f"float in [0, 1). Received: {name}={value!r}"
        )
    return float(value)


def check_choice(name, value, options):
    if value not in options:
        listed = ", ".join(repr(o) for o in options)
        raise ArgumentError(
            f"Received an invalid value for argument `{name}`, expected one "
            f"of {listed}. Received: {name}={value!r}"
        )
    return value


def to_hw(name, value):
    """Returns an (height, width) tuple from an int or a pair of ints."""
    if isinstance(value, numbers.Integral) and not isinstance(value, bool):
        value = (value, value)
    if not isinstance(value, (tuple, list)) or len(value) != 2:
        raise ArgumentError(
            f"Received an invalid value for argument `{name}`, expected an "
            f"int or a (height, width) pair. Received: {name}={value!r}"
        )
    return (check_positive_int(name, value[0]), check_positive_int(name, value[1]))


def check_divisible_image_size(image_size, patch_size, name="image_size"):
    """Raises a ValueError naming the side that `patch_size` does not divide."""
    for side, size in zip(("height", "width"), image_size):
        if size % patch_size:
            lower = (size // patch_size) * patch_size
            nearest = [s for s in (lower, lower + patch_size) if s > 0]
            raise ArgumentError(
                f"Received an invalid value for argument `{name}`: the image "
                f"{side} {size} is not divisible by the patch size "
                f"{patch_size}. The nearest {side}s that work are "
                f"{' and '.join(str(s) for s in nearest)}. "
                f"Received: {name}={tuple(image_size)}, patch_size={patch_size}"
            )


@contextlib.contextmanager
def atomic_path(path):
    """Yields a temporary path beside `path`, renamed onto `path` when the block ends
    without error and removed otherwise: a reader never sees a half-written file.

    The file is created by whoever writes it (`open`, `model.save`), so it gets the
    user's umask like any tool's output. Keeps the extension (`model.save` needs it).
    A folder that does not exist, and a write the system refuses (a full disk: its
    OSError names no file), raise an OSError that names `path`, not the temporary.
    Temporaries of `path` left by a killed process (`kill -9` cannot be cleaned up
    after) are removed the next time `path` is written.

    Example:

    >>> with atomic_path("runs/digits/model.keras") as tmp:
    ...     model.save(tmp)
    """
    path = os.fspath(path)
    folder, name = os.path.split(os.path.abspath(path))
    if not os.path.isdir(folder):
        raise FileNotFoundError(errno.ENOENT, f"cannot write {path}, no such folder", folder)
    root, ext = os.path.splitext(name)
    _remove_orphans(folder, root, ext)
    tmp = os.path.join(folder, f"{_TMP_PREFIX.format(root=root)}{os.getpid()}{ext}")
    try:
        yield tmp
        os.replace(tmp, path)
    except OSError as error:
        if error.filename not in (None, tmp):
            raise
        raise OSError(error.errno, error.strerror or str(error), path) from error
    finally:
        if os.path.exists(tmp):
            os.remove(tmp)


_TMP_PREFIX = ".{root}.tmp-"  # then the writer's process id and the extension


def _remove_orphans(folder, root, ext):
    """Removes `atomic_path` temporaries of `root + ext` whose writer is no longer
    running (what `kill -9` during a save leaves)."""
    prefix = _TMP_PREFIX.format(root=root)
    for entry in os.listdir(folder):
        pid = entry[len(prefix):len(entry) - len(ext)] if ext else entry[len(prefix):]
        if not (entry.startswith(prefix) and entry.endswith(ext) and pid.isdigit()):
            continue
        if int(pid) == os.getpid() or _running(int(pid)):
            continue
        orphan = os.path.join(folder, entry)
        if os.path.isdir(orphan) and not os.path.islink(orphan):
            shutil.rmtree(orphan, ignore_errors=True)
        else:
            with contextlib.suppress(FileNotFoundError):
                os.remove(orphan)


def _running(pid):
    """True while process `pid` exists (on this machine)."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # another user's process
        return True
    return True


def atomic_write_text(path, text):
    """Writes `text` to `path` atomically (see `atomic_path`), flushed to disk first."""
    with atomic_path(path) as tmp:
        with open(tmp, "w") as f:
            f.write(text)
            f.flush()
            os.fsync(f.fileno())


def has_accelerator():
    """True where the Keras backend sees a GPU or TPU."""
    import keras

    backend = keras.backend.backend()
    if backend == "tensorflow":
        import tensorflow as tf

        return bool(tf.config.list_logical_devices("GPU") or tf.config.list_logical_devices("TPU"))
    if backend == "jax":
        import jax

        return jax.default_backend() != "cpu"
    if backend == "torch":
        import torch

        return torch.cuda.is_available()
    return False


def auto_jit_compile(model=None):
    """keras_vit's one answer to `jit_compile="auto"` (a model's `compile` and the
    training recipes both ask here).

    On with JAX (jit is how JAX runs) and with TensorFlow, on a CPU too: for this
    model XLA trains ~10 % and predicts ~5 % faster on these CPUs (benchmarks/RESULTS.md),
    where Keras' own "auto" leaves it off. Off with torch (eager, as Keras does), under a
    `tf.distribute` strategy without an accelerator (not supported across virtual CPU
    replicas), with TensorFlow's op determinism on (XLA lacks deterministic kernels for
    some ops), and when a layer of `model` says it cannot be compiled.
    """
    import keras

    backend = keras.backend.backend()
    if backend == "torch":
        return False
    if model is not None and not all(getattr(l, "supports_jit", True) for l in model.layers):
        return False
    if backend == "tensorflow":
        import tensorflow as tf

        if tf.distribute.has_strategy() and not has_accelerator():
            return False
        if _op_determinism_enabled():
            return False
    return True


def _op_determinism_enabled():
    """`tf.config.experimental.enable_op_determinism()` has no public getter."""
    if os.environ.get("TF_DETERMINISTIC_OPS", "").lower() in ("1", "true"):
        return True
    return compat.op_determinism_enabled()
