"""What every command shares: the one-line error rule, the `--set` grammar, quiet start-up."""

import argparse
import contextlib
import importlib.abc
import importlib.util
import json
import os
import re
import shlex
import sys
import tempfile

from keras_vit.errors import ArgumentError, KerasViTError


class CommandError(KerasViTError):
    """A user-facing failure found by a command itself: one line, exit status 1."""


def is_user_error(error):
    """True for what `keras-vit` prints as one line; anything else keeps its traceback.

    keras_vit's own error types (`keras_vit.errors`: what a user typed or gave that
    cannot be honoured), and the operating system's refusal of a path (an `OSError`
    that names its file: a folder where a file was expected, no permission, no such
    file), which a user fixes as they would for `cp`. A plain ValueError, KeyError or
    TypeError is a bug, ours or a library's, wherever it was raised.
    """
    if isinstance(error, KerasViTError):
        return True
    return isinstance(error, OSError) and getattr(error, "filename", None) is not None


# Library arguments a command's flags reach under another name.
_FLAG_ALIASES = {"model_fields": "--set", "fields": "--set", "name": "--data",
                 "weights_path": "--weights"}


def name_the_flags(message, parser):
    """`message` with the Python arguments a library function named (`output_dir`,
    `model_fields`, `name`) written as the flags of `parser` that set them
    (`--output-dir`, `--set`, `--data`), and a "Pass format=" hint dropped where the
    command has no `--format`: a user of the CLI typed flags, not parameters."""
    flags = {}
    for action in parser._actions:  # noqa: SLF001 - argparse has no public listing
        longest = max(action.option_strings, key=len, default=None)
        if longest and longest.startswith("--"):
            flags[action.dest] = longest
    for alias, flag in _FLAG_ALIASES.items():
        if flag in flags.values():
            flags.setdefault(alias, flag)

    def flag(match):
        name = match.group(2)
        return f"{match.group(1)}{flags[name]}`" if name in flags else match.group(0)

    message = re.sub(r"(argument `)([A-Za-z_]\w*)`", flag, message)
    message = re.sub(r"(Received: )([A-Za-z_]\w*)=",
                     lambda m: f"{m.group(1)}{flags[m.group(2)]} " if m.group(2) in flags
                     else m.group(0), message)
    if "--format" not in flags.values():
        message = re.sub(r" Pass format=.*?(?:\.|$)", "", message)
    return message


def command_line(args):
    """The command as the user typed it (`keras-vit train --epochs 5 ...`), for metrics.json."""
    return " ".join(["keras-vit", args.command] + [shlex.quote(a) for a in args.argv])


def add_overwrite_argument(parser):
    parser.add_argument("--overwrite", action="store_true",
                        help="start over in an --output-dir that holds another run (its "
                        "model, metrics, history, checkpoint and logs are deleted)")


# A line of TensorFlow's C++ log (absl's format: `I0000 00:00:1796... 17960 port.cc:153] ...`)
# or absl's notice that such lines go to stderr before its logging starts.
_TF_LOG_LINE = re.compile(
    r"^(?:[IWEF]\d{4} \d\d:\d\d:[\d.]+\s+\d+ [\w./-]+:\d+\] "
    r"|WARNING: All log messages before absl::InitializeLog\(\) is called)")


# Keras' backends: the module each needs and how this project installs it.
BACKENDS = {"tensorflow": ("tensorflow", 'pip install ".[tf]"'),
            "jax": ("jax", 'pip install ".[jax]"'),
            "torch": ("torch", "pip install torch"),
            "numpy": ("numpy", "pip install numpy"),
            "openvino": ("openvino", "pip install openvino")}


def keras_backend_name():
    """The backend Keras will load, read as Keras reads it (without importing Keras):
    `KERAS_BACKEND`, else the "backend" of `$KERAS_HOME/keras.json` (default
    ~/.keras), else "tensorflow"; with where it came from, for messages."""
    if "KERAS_BACKEND" in os.environ:
        name = os.environ["KERAS_BACKEND"]
        return name, f"KERAS_BACKEND={name}"
    home = os.environ.get("KERAS_HOME") or os.path.join(os.path.expanduser("~"), ".keras")
    path = os.path.join(home, "keras.json")
    try:
        with open(path) as f:
            name = json.load(f).get("backend")
    except (OSError, ValueError, AttributeError):
        name = None
    if isinstance(name, str):
        return name, f'"backend": "{name}" in {path}'
    return "tensorflow", "Keras' default backend, tensorflow"


def check_backend_installed():
    """Refuses, in one line, a Keras backend that is unknown or not installed (Keras
    itself fails with a traceback when it first imports it)."""
    name, origin = keras_backend_name()
    if name not in BACKENDS:
        raise CommandError(
            f"{origin} is not a Keras backend; expected one of {', '.join(BACKENDS)}")
    module, install = BACKENDS[name]
    if importlib.util.find_spec(module) is None:
        raise CommandError(
            f"{origin}, but {module} is not installed: {install}, or set KERAS_BACKEND to "
            "an installed backend")


def quiet_tensorflow(verbose=False):
    """Hides TensorFlow's C++ start-up lines (oneDNN, cudart, CPU features) unless
    `verbose`; must run before tensorflow is imported. A value the user set stands.

    `TF_CPP_MIN_LOG_LEVEL` is not enough: TensorFlow 2.21 logs through absl before absl's
    logging is set up, so its oneDNN notice (on by default on Intel CPUs with AVX-512, or
    with `TF_ENABLE_ONEDNN_OPTS=1`) ignores the level. The first `import tensorflow`, by
    whatever module, therefore runs with file descriptor 2 sent to a temporary file; the
    lines in TensorFlow's C++ log format are dropped and everything else is written back.
    `TF_CPP_MIN_LOG_LEVEL=0`, set by the user, keeps every line, as `--verbose` does.
    """
    if verbose:
        return
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    if os.environ["TF_CPP_MIN_LOG_LEVEL"] == "0":  # the user asked for every line
        return
    if "tensorflow" not in sys.modules and not any(
            isinstance(f, _QuietTensorFlowImport) for f in sys.meta_path):
        sys.meta_path.insert(0, _QuietTensorFlowImport())


class _QuietTensorFlowImport(importlib.abc.MetaPathFinder):
    """Finds `tensorflow` as the other finders do, and runs its module code under
    `_without_tensorflow_log`; steps aside once that import ran (a `find_spec` probe,
    such as the backend check's, leaves it in place)."""

    _finding = False

    def find_spec(self, name, path=None, target=None):
        if name != "tensorflow" or self._finding:
            return None
        self._finding = True  # the other finders answer the lookup below
        try:
            spec = importlib.util.find_spec(name)
        finally:
            self._finding = False
        if spec is not None and spec.loader is not None:
            exec_module = spec.loader.exec_module

            def quiet_exec_module(module):
                if self in sys.meta_path:
                    sys.meta_path.remove(self)
                with _without_tensorflow_log():
                    exec_module(module)

            spec.loader.exec_module = quiet_exec_module
        return spec


@contextlib.contextmanager
def _without_tensorflow_log():
    sys.stderr.flush()
    saved = os.dup(2)
    with tempfile.TemporaryFile(mode="w+b") as captured:
        os.dup2(captured.fileno(), 2)
        try:
            yield
        finally:
            sys.stderr.flush()
            os.dup2(saved, 2)
            os.close(saved)
            captured.seek(0)
            kept = [line for line in captured.read().decode(errors="replace").splitlines(True)
                    if not _TF_LOG_LINE.match(line)]
            if kept:
                sys.stderr.write("".join(kept))
                sys.stderr.flush()


def add_set_argument(parser, what="a ViTConfig field"):
    parser.add_argument(
        "--set", action="append", default=[], metavar="FIELD=VALUE",
        help=f"{what}, e.g. --set num_layers=6 or --set image_size=16,16 (repeatable; "
        "values are JSON, or true/false/none, numbers, comma-separated lists, text)")


def add_checkpoint_arguments(parser):
    """`--variant` and `--set`: what a checkpoint file does not record (every command
    that reads a checkpoint takes both)."""
    parser.add_argument("--variant", default=None,
                        help="e.g. B/16, for what the checkpoint file does not record")
    add_set_argument(parser)


def parse_fields(items, flag="--set", allowed=None):
    """`--set FIELD=VALUE` pairs as a dict (see `parse_field_value`); the same grammar
    for `--recipe-set` (`flag`), whose FIELD must be one of `allowed`."""
    fields = {}
    for item in items:
        name, sep, text = item.partition("=")
        if not sep or not name.strip():
            raise ArgumentError(
                f"Received an invalid value for argument `{flag}`, expected FIELD=VALUE. "
                f"Received: {flag} {item!r}")
        if allowed is not None and name.strip() not in allowed:
            raise ArgumentError(
                f"Received an unknown field for argument `{flag}`, expected one of "
                f"{', '.join(allowed)}. Received: {flag} {item!r}")
        fields[name.strip()] = parse_field_value(text.strip())
    return fields


def add_recipe_arguments(parser, names):
    """`--recipe NAME` (one of `names`, the presets) and `--recipe-set FIELD=VALUE`."""
    parser.add_argument("--recipe", default=None, metavar="NAME",
                        help=f"a preset recipe: {', '.join(names)} (default: chosen by "
                        "the data, see the README's training section)")
    parser.add_argument(
        "--recipe-set", action="append", default=[], metavar="FIELD=VALUE",
        help="a Recipe field, e.g. --recipe-set epochs=20 (repeatable; as --set; wins "
        "over --epochs and the other recipe flags)")


def parse_field_value(text):
    """A `--set` value: JSON where it parses (`[16, 16]`, `0.1`, `"gap"`, `null`),
    else true/false/none (any case), a comma list (`16,16` -> (16, 16)), an int, a float,
    or the text itself (`gap`)."""
    try:
        return json.loads(text)
    except json.JSONDecodeError:
        pass
    if "," in text:
        return tuple(parse_field_value(t.strip()) for t in text.split(",") if t.strip())
    low = text.lower()
    if low in ("true", "false"):
        return low == "true"
    if low in ("none", "null"):
        return None
    for kind in (int, float):
        try:
            return kind(text)
        except ValueError:
            pass
    return text


# Suffixes that make a checkpoint argument a path, not a registered or hub name.
_FILE_SUFFIXES = (".keras", ".npz", ".safetensors", ".h5", ".bin", ".pth", ".pt", ".ckpt")


def input_path(action, message, names_too=False):
    """Marks `action` (what `add_argument` returned) as a file or folder the command
    reads: `check_input_paths` refuses a missing one with `message.format(path)` before
    any heavy import (Keras, TensorFlow) or model load. With `names_too` the argument
    may also be a registered or hub name: only a value with a file suffix or a path
    separator at its end is checked; `names_too` may instead be a function of the
    value and the parsed arguments, True for a name the library resolves itself."""
    action.input_path = (message, names_too)
    return action


def check_input_paths(args):
    """One line for the first missing input path the command's marked arguments name."""
    parser = getattr(args, "command_parser", None)
    for action in getattr(parser, "_actions", ()):  # noqa: SLF001 - argparse has no listing
        mark = getattr(action, "input_path", None)
        value = getattr(args, action.dest, None)
        if mark is None or value is None:
            continue
        message, names_too = mark
        for path in value if isinstance(value, list) else [value]:
            path = str(path)
            if callable(names_too):
                if names_too(path, args):
                    continue
            elif names_too and not (path.lower().endswith(_FILE_SUFFIXES) or path.endswith(
                    ("/", os.sep))):
                continue
            if not os.path.exists(path):
                raise CommandError(message.format(path))


def add_invert_argument(parser):
    """`--invert` / `--no-invert` of predict and visualize (default: auto, see
    `keras_vit.evaluation.predict.invert_images`)."""
    parser.add_argument(
        "--invert", action=argparse.BooleanOptionalAction, default=None,
        help="use 255 - pixel, or never (--no-invert); by default an image is inverted "
        "when its polarity is not the training data's (for the digits model, light "
        "strokes on dark: a drawing whose border is brighter than its centre)",
    )


def invert_note(inverted, invert):
    """What predict and visualize print beside an image they inverted (`invert`: the
    flag, None for auto)."""
    if not inverted:
        return ""
    if invert is None:
        return "  (inverted: its border is brighter than its centre; --no-invert keeps it)"
    return "  (inverted: --invert)"


# keras_vit.data.DATASETS, written here so a missing --data is refused before Keras
# starts (tests/test_user_paths.py checks they agree).
DATA_NAMES = ("digits", "cifar10", "cifar100", "oxford_iiit_pet", "oxford_flowers102",
              "imagenet2012", "imagenet2012_real")


def _is_data_name(value, args):
    return value in DATA_NAMES or value.startswith("vtab/")


def _is_checkpoint_name(value, args):
    """A checkpoint name the pipeline resolves: a hub name (hf://...) or a registered
    VARIANT:TAG (every registered name has its colon), or a bare TAG with --variant;
    never a value with a file suffix."""
    if value.lower().endswith(_FILE_SUFFIXES) or value.endswith(("/", os.sep)):
        return False
    return ":" in value or getattr(args, "variant", None) is not None


def mark_data_and_weights(parser):
    """Marks the `--data` and `--weights` of train, finetune and pretrain as input
    paths (`input_path`): a folder or file that is missing, and not a data set or
    checkpoint name, is refused in one line before TensorFlow starts."""
    for action in parser._actions:  # noqa: SLF001 - argparse has no public listing
        if action.dest == "data":
            input_path(action, f"no such folder: {{}} (expected one of {', '.join(DATA_NAMES)}, "
                       "vtab/<task>, or an image folder, one sub-folder per class)",
                       names_too=_is_data_name)
        elif action.dest == "weights":
            input_path(action, "No checkpoint file or folder at {}, nor a registered name "
                       "(VARIANT:TAG such as B/16:augreg_in21k, or TAG with --variant).",
                       names_too=_is_checkpoint_name)


def model_or_digits(path):
    """`--model PATH`, or without it the shipped digits model (one line if it is missing)."""
    if path is not None:
        return path
    from keras_vit import evaluation

    if not evaluation.DIGITS_MODEL.is_file():
        raise CommandError(
            f"no --model given and the shipped digits model {evaluation.DIGITS_MODEL} is "
            "missing; make it with `keras-vit train --output-dir weights/digits`"
        )
    return evaluation.DIGITS_MODEL


def add_distribution_arguments(parser, distribute_help):
    """`--distribute` (its help, `distribute_help`, says what the command distributes
    on), `--model-parallel N` and `--gradient-accumulation-steps`, shared by train,
    finetune and pretrain."""
    parser.add_argument("--distribute", action="store_true", help=distribute_help)
    parser.add_argument("--model-parallel", type=int, default=None, metavar="N",
                        help="with --distribute on JAX: shard each model's attention and "
                        "MLP kernels over N devices (keras_vit.training.distribution)")
    parser.add_argument("--gradient-accumulation-steps", type=int, default=None,
                        help="sum gradients of this many batches per update")
