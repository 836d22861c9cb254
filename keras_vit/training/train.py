"""`train` and `finetune`: the library functions behind `keras-vit train|finetune`.

Plain Keras underneath: `model.fit` with Keras optimizers, schedules and
callbacks (TensorBoard), plus `ResumableCheckpoint` for what Keras lacks.
An output folder holds everything of one run:

    DIR/model.keras      the trained model (written atomically at the end)
    DIR/metrics.json     test_accuracy, test_top5_accuracy (K > 5), seconds (the
                         total) and segments (one per process that trained),
                         class_names, command, config
    DIR/history.csv      one row per epoch, `epoch` column first (1-based)
    DIR/logs/            TensorBoard
    DIR/checkpoint/      the last completed epoch's weights and optimizer state,
                         with the run's configuration

Started again with the same folder and the same configuration, a run goes on
from the last completed epoch (and says so); a larger `epochs` extends it. A
different configuration is refused with one line naming the differences, and
nothing is overwritten unless `overwrite=True` (`keras-vit train --overwrite`).
"""

import json
import math
import os
import shutil
import sys
import time

import keras
import numpy as np

from keras_vit.checkpoints import load as load_checkpoint
from keras_vit import data as datasets  # looked up at call time (tests patch it)
from keras_vit.data.image_folder import image_folder_shape, is_image_folder
from keras_vit.errors import ArgumentError, RunFolderError
from keras_vit.models import VisionTransformer, ViTConfig, variant_config
from keras_vit.models.config import field_names
from keras_vit.training import finetune_kit
from keras_vit.training.callbacks import ResumableCheckpoint, TrainingDiverged, read_state
from keras_vit.training.reproducibility import capped_epochs, seed_everything
from keras_vit.training.recipes import (
    DIGITS_MODEL,
    DIGITS_RECIPE,
    FINETUNE_RECIPE,
    PRETRAIN_RECIPE,
    SMALL_IMAGES_RECIPE,
    finetuning_optimizer,
    small_images_model,
    make_schedule,
    pretraining_optimizer,
)
from keras_vit.utils import (
    atomic_path,
    atomic_write_text,
    auto_jit_compile,
    has_accelerator,
    to_hw,
)


def _log(message, verbose):
    if verbose:
        print(message, file=sys.stderr, flush=True)


def resolve_jit_compile(jit_compile, model=None):
    """`"auto"` (or None): keras_vit's one XLA policy, `keras_vit.utils.auto_jit_compile`;
    "on"/"off" (and True/False, "true"/"false") as given."""
    if jit_compile == "auto" or jit_compile is None:
        return auto_jit_compile(model)
    if isinstance(jit_compile, str):
        if jit_compile.lower() in ("on", "true", "1", "yes"):
            return True
        if jit_compile.lower() in ("off", "false", "0", "no"):
            return False
        raise ArgumentError(
            "Received an invalid value for argument `jit_compile`, expected "
            f"'auto', True or False. Received: jit_compile={jit_compile!r}"
        )
    return bool(jit_compile)


def _check_accumulation(gradient_accumulation_steps, distribute):
    """Refuses what TensorFlow cannot do: accumulate gradients under MirroredStrategy."""
    import keras

    if distribute and gradient_accumulation_steps not in (None, 1):
        if keras.backend.backend() == "tensorflow":
            # Keras' optimizers apply accumulated updates inside a cond, which
            # MirroredStrategy cannot synchronise (a merge_call RuntimeError).
            raise ArgumentError(
                "Received an invalid value for argument `gradient_accumulation_steps`: "
                "Keras cannot accumulate gradients under tf.distribute.MirroredStrategy; "
                "use a larger per-replica batch or drop `distribute`. Received: "
                f"gradient_accumulation_steps={gradient_accumulation_steps}, distribute=True"
            )


def _distribution_scope(distribute, verbose):
    """A context factory for building the model: MirroredStrategy (TF) or DataParallel (JAX)."""
    import contextlib

    import keras

    if not distribute:
        return contextlib.nullcontext, 1
    backend = keras.backend.backend()
    if backend == "tensorflow":
        import tensorflow as tf

        devices = tf.config.list_logical_devices("GPU") or tf.config.list_logical_devices("CPU")
        strategy = tf.distribute.MirroredStrategy([d.name for d in devices])
        _log(f"Distributing over {strategy.num_replicas_in_sync} replicas "
             f"(MirroredStrategy: {', '.join(d.name for d in devices)}).", verbose)
        return strategy.scope, strategy.num_replicas_in_sync
    if backend == "jax":
        devices = keras.distribution.list_devices()
        keras.distribution.set_distribution(keras.distribution.DataParallel(devices=devices))
        _log(f"Distributing over {len(devices)} devices (keras.distribution.DataParallel).",
             verbose)
        return contextlib.nullcontext, len(devices)
    raise ArgumentError(
        "Received an invalid value for argument `distribute`: data-parallel "
        "training is supported on the tensorflow and jax backends. "
        f"Received: distribute=True with backend {backend!r}"
    )


def _policy(mixed_precision):
    if not mixed_precision:
        return None
    return "mixed_float16" if has_accelerator() else "mixed_bfloat16"


def _to_one_hot(dataset, num_classes, one_hot_labels):
    import tensorflow as tf

    if one_hot_labels:
        return dataset
    return dataset.map(
        lambda x, y: (x, tf.one_hot(y, num_classes)), num_parallel_calls=tf.data.AUTOTUNE
    )


def build_model(model, info, image_size=None, dtype=None, **fields):
    """A `VisionTransformer` for a data set: a variant name, "digits" or a ViTConfig dict.

    Every field (`fields`, the data set's shape, `image_size`) is applied before the
    configuration is validated, so `image_size=28, patch_size=4` is one valid request.
    """
    unknown = sorted(set(fields) - set(field_names()))
    if unknown:
        raise ArgumentError(
            "Received an invalid value for argument `model_fields`: unknown ViTConfig "
            f"field(s) {', '.join(unknown)}. Known: {', '.join(field_names())}"
        )
    fields = {k: v for k, v in fields.items() if v is not None}
    shape = dict(image_size=image_size or info.image_size, num_channels=info.num_channels,
                 num_classes=info.num_classes)
    if model == "digits":
        config = ViTConfig(**{**DIGITS_MODEL, **shape, **fields})
    elif model == "small":
        config = ViTConfig(**{**small_images_model(shape["image_size"]), **shape, **fields})
    elif isinstance(model, str):
        if "patch_size" not in fields:
            # A 16 px patch on a 32 px image leaves 4 tokens: use 4 px patches.
            probe = _variant(model, **shape, patch_size=1)
            h, w = probe.image_hw
            patch = int(model.rsplit("/", 1)[-1]) if model.rsplit("/", 1)[-1].isdigit() else 16
            if h % patch or w % patch or (h // patch) * (w // patch) < 4:
                fields["patch_size"] = max(1, min(h, w) // 8)
        config = _variant(model, **shape, **fields)
    elif isinstance(model, dict):
        config = ViTConfig.from_dict({**model, **shape, **fields})
    else:
        raise ArgumentError(
            "Received an invalid value for argument `model`, expected 'digits', 'small', "
            f"a variant name like 'Ti/16' or a ViTConfig dict. Received: model={model!r}"
        )
    return VisionTransformer(config, dtype=dtype, name="vit")


def _variant(name, **fields):
    try:
        return variant_config(name, **fields)
    except ValueError as error:  # name the argument the user gave
        if "unknown variant" not in str(error):
            raise
        raise ArgumentError(str(error).replace("`config`", "`model`").replace(
            "config=", "model=")) from error


def test_metrics(model, dataset, num_classes):
    """Top-1 (and top-5 where K > 5) accuracy and the loss of `model` on a split."""
    import keras

    logits, labels = [], []
    for images, y in dataset:
        logits.append(keras.ops.convert_to_numpy(model(images, training=False)).astype("float64"))
        y = np.asarray(y)
        labels.append(y.argmax(-1) if y.ndim == 2 else y)
    logits, labels = np.concatenate(logits), np.concatenate(labels).astype("int64")
    shifted = logits - logits.max(-1, keepdims=True)
    log_probs = shifted - np.log(np.exp(shifted).sum(-1, keepdims=True))
    metrics = {
        "test_accuracy": float((logits.argmax(-1) == labels).mean()),
        "test_loss": float(-log_probs[np.arange(len(labels)), labels].mean()),
        "test_examples": int(len(labels)),
    }
    if num_classes > 5:
        top5 = np.argsort(-logits, axis=-1)[:, :5]
        metrics["test_top5_accuracy"] = float((top5 == labels[:, None]).any(-1).mean())
    return metrics


def _tensorboard_installed():
    import importlib.util

    return importlib.util.find_spec("tensorboard") is not None


def _save_model(model, path):
    with atomic_path(path) as tmp:
        model.save(tmp)


def _check_recipe(recipe):
    for name in ("epochs", "batch_size"):
        value = recipe[name]
        if isinstance(value, bool) or not isinstance(value, int) or value <= 0:
            raise ArgumentError(
                f"Received an invalid value for argument `{name}`, expected a "
                f"positive integer. Received: {name}={value!r}"
            )
    rate = recipe["learning_rate"]
    if isinstance(rate, bool) or not isinstance(rate, (int, float)) or not rate > 0:
        raise ArgumentError(
            "Received an invalid value for argument `learning_rate`, expected a "
            f"positive number. Received: learning_rate={rate!r}"
        )


# --- The run folder: never clobbered ---------------------------------------------------

RUN_FILES = ("model.keras", "metrics.json", "history.csv", "checkpoint", "logs")
# Execution details that do not change what is trained: a rerun may differ in them.
_NOT_COMPARED = ("jit_compile", "steps_per_execution", "steps_per_epoch", "parameters",
                 "epochs", "replicas")


def check_output_dir(output_dir):
    """Refuses an `output_dir` that is a file or lies under one (one line, no traceback)."""
    path = os.path.abspath(os.fspath(output_dir))
    while path and not os.path.exists(path):
        path = os.path.dirname(path)
    if path and not os.path.isdir(path):
        where = "is" if path == os.path.abspath(output_dir) else f"lies under {path}, which is"
        raise RunFolderError(
            f"Received an invalid value for argument `output_dir`: {output_dir} {where} a "
            "file, not a folder. Pass a folder (--output-dir NEW).")


def recorded_config(output_dir):
    """The configuration a run folder was made with (its checkpoint state, else its
    metrics.json), or None."""
    state = read_state(os.path.join(output_dir, "checkpoint"))
    if state and state.get("config"):
        return state["config"]
    path = os.path.join(output_dir, "metrics.json")
    if os.path.isfile(path):
        with open(path) as f:
            return json.load(f).get("config")
    return None


def config_differences(old, new):
    """["epochs 60 -> 5", "num_layers 4 -> 1", ...]: what differs between two run
    configurations, model fields by name; execution details are not compared."""
    old, new = (json.loads(json.dumps(c, default=str)) for c in (old, new))
    differences = []
    for key in sorted(set(old) | set(new)):
        if key in _NOT_COMPARED:
            continue
        a, b = old.get(key), new.get(key)
        if key == "model_config" and isinstance(a, dict) and isinstance(b, dict):
            differences += [f"{k} {a.get(k)!r} -> {b.get(k)!r}" for k in sorted(set(a) | set(b))
                            if a.get(k) != b.get(k)]
        elif a != b:
            differences.append(f"{key} {a!r} -> {b!r}")
    if new.get("epochs", 0) < old.get("epochs", 0):
        differences.insert(0, f"epochs {old['epochs']} -> {new['epochs']}")
    return differences


def _prepare_run_folder(output_dir, config, overwrite, verbose):
    """Checks that `output_dir` is new, holds this very run (resume), or may be cleared."""
    check_output_dir(output_dir)
    present = [n for n in RUN_FILES if os.path.exists(os.path.join(output_dir, n))]
    if not present:
        return
    if overwrite:
        for name in present:
            path = os.path.join(output_dir, name)
            shutil.rmtree(path) if os.path.isdir(path) else os.remove(path)
        _log(f"Starting over in {output_dir}: removed {', '.join(present)} (overwrite).",
             verbose)
        return
    old = recorded_config(output_dir)
    ways_out = "pass --output-dir NEW for a new run, or --overwrite to start this one over"
    if old is None:
        if {"model.keras", "metrics.json"} & set(present):
            raise RunFolderError(
                f"{output_dir} holds {', '.join(present)} but no record of how they were "
                f"made, so they are not resumed or replaced; {ways_out}")
        return  # a run stopped before its first epoch: nothing to keep
    differences = config_differences(old, config)
    if differences:
        raise RunFolderError(
            f"{output_dir} holds a run made with other options ({'; '.join(differences)}); "
            f"{ways_out}")
    if config["epochs"] > old.get("epochs", config["epochs"]):
        _log(f"Extending the run in {output_dir} from {old['epochs']} to {config['epochs']} "
             f"epochs (its learning-rate schedule now spans {config['epochs']}).", verbose)


def _progress_verbosity(verbose):
    """Keras' progress bar on a terminal; one line per epoch when output is redirected."""
    if verbose == "auto":
        return 1 if sys.stdout.isatty() else 2
    return verbose


def _fit(model, optimizer, train_ds, test_ds, info, output_dir, recipe, record, *,
         jit_compile, steps_per_execution, steps, verbose, tensorboard, start, overwrite,
         command):
    """Compiles, resumes, fits, saves and evaluates; shared by train and finetune.

    `metrics.json`'s config is the recipe, the run's `record` (data, seed,
    image size, ...) and what was resolved here (XLA, steps, the model).
    """
    epochs, label_smoothing = recipe["epochs"], recipe["label_smoothing"]
    config = dict(
        recipe, **record, jit_compile=jit_compile, steps_per_execution=steps_per_execution,
        steps_per_epoch=steps, model_config=model.config.to_dict(),
        parameters=int(model.count_params()),
    )
    config = json.loads(json.dumps(config, default=str))
    verbose_log = verbose not in (0, False)
    _prepare_run_folder(output_dir, config, overwrite, verbose_log)
    train_ds = _to_one_hot(train_ds, info.num_classes, info.one_hot_labels)
    os.makedirs(output_dir, exist_ok=True)
    model.compile(
        optimizer=optimizer,
        loss=keras.losses.CategoricalCrossentropy(
            from_logits=True, label_smoothing=label_smoothing
        ),
        metrics=["accuracy"],
        jit_compile=jit_compile,
        steps_per_execution=steps_per_execution,
    )
    checkpoint = ResumableCheckpoint(
        os.path.join(output_dir, "checkpoint"), os.path.join(output_dir, "history.csv"),
        config=config, start=start,
    )
    done = checkpoint.restore(model)
    if done:
        _log(f"Resuming from epoch {done} of {epochs} "
             f"(state in {os.path.join(output_dir, 'checkpoint')}).", verbose_log)
    callbacks = [checkpoint]
    if tensorboard and not _tensorboard_installed():
        _log("TensorBoard logs skipped: `pip install tensorboard` to have them.", verbose_log)
        tensorboard = False
    if tensorboard:
        callbacks.append(keras.callbacks.TensorBoard(
            os.path.join(output_dir, "logs"), write_graph=False, update_freq="epoch"
        ))
    model_path = os.path.join(output_dir, "model.keras")
    metrics_path = os.path.join(output_dir, "metrics.json")
    if done >= epochs and os.path.isfile(model_path) and os.path.isfile(metrics_path):
        _log(f"All {epochs} epochs of the run in {output_dir} were already done; its files "
             "are left as they are.", verbose_log)
        with open(metrics_path) as f:
            return json.load(f)
    if done < epochs:
        model.fit(train_ds, epochs=epochs, initial_epoch=done, callbacks=callbacks,
                  verbose=_progress_verbosity(verbose), shuffle=False)  # tf.data shuffles
    else:
        _log(f"All {epochs} epochs were already done; evaluating the saved state.",
             verbose_log)
    if checkpoint.diverged is not None:
        epoch, batch = checkpoint.diverged
        good = checkpoint.restore(model)  # the last committed (finite) state
        where = f"epoch {epoch}" + (f", batch {batch}" if batch else "")
        if good:
            _save_model(model, model_path)
            kept = f"the last good model (epoch {good}) is in {model_path}"
        else:
            kept = "no epoch had completed, so no model was saved"
        raise TrainingDiverged(
            f"the loss became NaN or infinite at {where}; training stopped and "
            f"{kept}. Lower the learning rate or check the data."
        )
    _save_model(model, model_path)
    metrics = test_metrics(model, test_ds, info.num_classes)
    segments = checkpoint.segments + ([checkpoint.segment(epochs)] if done < epochs else [])
    metrics.update(
        seconds=round(sum(s["seconds"] for s in segments), 2),
        segments=segments,
        epochs=int(epochs),
        resumed_from_epoch=int(done),
        backend=keras.backend.backend(),
        class_names=list(info.class_names) if info.class_names else None,
        command=command,
        config=config,
    )
    atomic_write_text(metrics_path, json.dumps(metrics, indent=2, default=str) + "\n")
    _log(f"Test accuracy {metrics['test_accuracy']:.4f} on {metrics['test_examples']} "
         f"images; model in {model_path}.", verbose_log)
    return metrics


def default_output_dir(data, command="train"):
    """runs/<data> for `train`, runs/finetune-<data> for `finetune`."""
    name = os.path.basename(str(data).rstrip("/"))
    return os.path.join("runs", name if command == "train" else f"{command}-{name}")


def _steps_per_epoch(info, dataset, batch_size, drop_remainder=False):
    if info.num_examples:
        if drop_remainder:
            return max(info.num_examples // batch_size, 1)
        return math.ceil(info.num_examples / batch_size)
    cardinality = int(dataset.cardinality())
    if cardinality > 0:
        return cardinality
    return sum(1 for _ in dataset)


def _divisor(steps, most=16):
    """Batches per compiled call on a CPU: a divisor of `steps` up to `most` (so the
    progress bar ends on the epoch's last step), or `most` when none is near it."""
    best = max(d for d in range(1, min(most, steps) + 1) if steps % d == 0)
    return best if best >= most // 2 else min(most, steps)


class _Run:
    """What `train` and `finetune` prepare alike: the recipe with the caller's values
    over its defaults, the checked output folder, the seed, XLA, the distribution."""

    def __init__(self, defaults, given, data, command, output_dir, seed, jit_compile,
                 distribute, gradient_accumulation_steps, mixed_precision, verbose):
        self.start = time.time()
        self.recipe = dict(defaults)
        self.recipe.update({k: v for k, v in given.items() if v is not None})
        self.recipe["epochs"] = capped_epochs(self.recipe["epochs"])  # KERAS_VIT_MAX_EPOCHS
        _check_recipe(self.recipe)
        self.output_dir = os.fspath(output_dir or default_output_dir(data, command))
        check_output_dir(self.output_dir)
        self.data, self.seed, self.verbose = data, seed, verbose
        self.distribute = bool(distribute)
        self.accumulation = gradient_accumulation_steps
        self.dtype = _policy(mixed_precision)
        self.jit_compile = jit_compile
        seed_everything(seed, deterministic=False)
        _check_accumulation(gradient_accumulation_steps, distribute)
        self.scope, self.replicas = _distribution_scope(distribute, verbose not in (0, False))
        self.record = dict(data=str(data), seed=seed, mixed_precision=bool(mixed_precision),
                           distribute=self.distribute, replicas=self.replicas,
                           gradient_accumulation_steps=gradient_accumulation_steps)

    def load(self, image_size, num_channels=None, data_dir=None, manual_dir=None):
        """The train and test splits (replicas split every batch evenly: a last, partial
        batch is dropped when distributing) and the steps of an epoch."""
        common = dict(image_size=image_size, batch_size=self.recipe["batch_size"],
                      seed=self.seed, data_dir=data_dir, manual_dir=manual_dir,
                      num_channels=num_channels)
        train_ds, info = datasets.load_dataset(
            self.data, "train", augment=self.recipe["augment"],
            drop_remainder=self.distribute, **common)
        test_ds, _ = datasets.load_dataset(self.data, "test", augment=None, **common)
        self.steps = _steps_per_epoch(info, train_ds, self.recipe["batch_size"],
                                      self.distribute)
        return train_ds, test_ds, info

    def schedule(self):
        r = self.recipe
        return make_schedule(r["learning_rate"], r["epochs"], self.steps, r["warmup_epochs"],
                             r["decay"])

    def fit(self, model, optimizer, train_ds, test_ds, info, steps_per_execution, tensorboard,
            overwrite, command):
        if steps_per_execution is None:
            steps_per_execution = (1 if has_accelerator() or self.distribute
                                   else _divisor(self.steps))
        self.record["image_size"] = list(model.config.image_hw)
        with self.scope():  # under the strategy: the XLA policy sees it
            jit = resolve_jit_compile(self.jit_compile, model)
            if self.distribute and not has_accelerator():
                jit = False  # XLA across virtual CPU replicas is not supported by TF
            return _fit(model, optimizer, train_ds, test_ds, info, self.output_dir,
                        self.recipe, self.record, jit_compile=jit,
                        steps_per_execution=steps_per_execution, steps=self.steps,
                        verbose=self.verbose, tensorboard=tensorboard, start=self.start,
                        overwrite=overwrite, command=command)


def _small_folder(data, model, image_size):
    """For `train --data FOLDER` with no model or size: the folder's native size, and
    the small-images recipe where its images are small (<= 64 px)."""
    if model is not None or image_size is not None or not is_image_folder(data):
        return None
    height, width, _ = image_folder_shape(data)
    return (height, width) if max(height, width) <= 64 else None


def train(data="digits", model=None, output_dir=None, epochs=None, batch_size=None,
          learning_rate=None, weight_decay=None, warmup_epochs=None, decay=None,
          label_smoothing=None, dropout_rate=None, drop_path_rate=None, image_size=None,
          augment=None, seed=0, mixed_precision=False, jit_compile="auto",
          distribute=False, gradient_accumulation_steps=None, steps_per_execution=None,
          data_dir=None, manual_dir=None, model_fields=None, tensorboard=True,
          verbose="auto", overwrite=False, command=None):
    """Trains a ViT from scratch with the paper's pre-training recipe.

    Defaults (None) come from `DIGITS_RECIPE` for digits and `PRETRAIN_RECIPE`
    otherwise: AdamW (b1 0.9, b2 0.999) with weight decay on kernels, linear
    warmup then cosine (or linear) decay, global grad-norm clip 1, label
    smoothing, dropout and stochastic depth.

    Args:
        data: a `keras_vit.data.load_dataset` name or image folder. Defaults
            to "digits".
        model: "digits" (the small default), a variant name ("Ti/16") or a
            `ViTConfig` dict. Defaults to the recipe's.
        output_dir: the run's folder (see the module docstring). Defaults
            to "runs/<data>".
        epochs, batch_size, learning_rate, weight_decay, warmup_epochs,
            decay ("cosine" or "linear"), label_smoothing, dropout_rate,
            drop_path_rate, augment: the recipe; None takes its default.
            batch_size is global (split over replicas with `distribute`).
        image_size: None (the data set's) or the training resolution.
        seed: int, for initialisation, shuffling and augmentation. Defaults to 0.
        mixed_precision: bool, mixed_float16 on a GPU, mixed_bfloat16 on a
            CPU. Defaults to False.
        jit_compile: "auto" (`keras_vit.utils.auto_jit_compile`, the policy a
            model's own `compile` follows too), True or False. Defaults to "auto".
        distribute: bool, data-parallel over all devices: MirroredStrategy
            on TensorFlow, keras.distribution.DataParallel on JAX.
        gradient_accumulation_steps: int, apply the summed gradients of this
            many batches at once (batches larger than memory). Defaults to None.
        steps_per_execution: int, batches per compiled call (None: up to 16
            on a CPU, a divisor of the epoch's steps, which hides the per-step overhead of small models; 1 else).
        data_dir, manual_dir: passed to `load_dataset`.
        model_fields: dict of other `ViTConfig` fields, applied before the
            configuration is validated. Defaults to None.
        tensorboard: write TensorBoard logs. Defaults to True.
        verbose: Keras' fit verbosity; "auto" is a progress bar on a terminal
            and one line per epoch otherwise. Defaults to "auto".
        overwrite: bool, start over in an `output_dir` that holds a run made
            with other options (deleting its files) instead of refusing.
            Defaults to False.
        command: str, recorded in metrics.json as how the run was made.
            Defaults to None.

    Returns:
        The metrics dict also written to `output_dir/metrics.json`.

    Example:

    >>> metrics = train("digits", output_dir="runs/digits")
    >>> metrics["test_accuracy"] > 0.98
    True
    """
    native = _small_folder(data, model, image_size)
    if data == "digits":
        defaults = DIGITS_RECIPE
    elif native is not None:
        defaults = dict(SMALL_IMAGES_RECIPE, image_size=list(native))
    else:
        defaults = PRETRAIN_RECIPE
    given = dict(model=model, epochs=epochs, batch_size=batch_size, learning_rate=learning_rate,
                 weight_decay=weight_decay, warmup_epochs=warmup_epochs, decay=decay,
                 label_smoothing=label_smoothing, dropout_rate=dropout_rate,
                 drop_path_rate=drop_path_rate, augment=augment, image_size=image_size)
    run = _Run(defaults, given, data, "train", output_dir, seed, jit_compile, distribute,
               gradient_accumulation_steps, mixed_precision, verbose)
    recipe = run.recipe
    train_ds, test_ds, info = run.load(recipe["image_size"], data_dir=data_dir,
                                       manual_dir=manual_dir)
    with run.scope():
        vit = build_model(recipe["model"], info, image_size=recipe["image_size"],
                          dtype=run.dtype, dropout_rate=recipe["dropout_rate"],
                          drop_path_rate=recipe["drop_path_rate"], **(model_fields or {}))
        optimizer = pretraining_optimizer(
            run.schedule(), weight_decay=recipe["weight_decay"],
            gradient_accumulation_steps=gradient_accumulation_steps, model=vit,
        )
    if native is not None:
        c = vit.config
        _log(f"{data}: {info.num_examples} training images of {native[0]}x{native[1]}x"
             f"{info.num_channels}, {info.num_classes} classes; with no model or image size "
             f"given, training the small-images recipe: {c.num_layers} layers of width "
             f"{c.hidden_size}, {c.patch_size}x{c.patch_size} patches, {recipe['epochs']} "
             f"epochs (keras_vit.training.SMALL_IMAGES_RECIPE).", verbose not in (0, False))
    return run.fit(vit, optimizer, train_ds, test_ds, info, steps_per_execution, tensorboard,
                   overwrite, command)


def load_for_finetuning(weights, num_classes, image_size=None, dtype=None, variant=None,
                        **fields):
    """A model from a `.keras` file, a checkpoint file or a registered name,
    with a zero head for `num_classes`, position embeddings resized to
    `image_size` as the weights' source does and, with `dtype` (a policy such
    as "mixed_bfloat16"), built under it: the checkpoint pipeline's
    `keras_vit.checkpoints.load` with `new_head=True`. `variant` and `fields`
    (ViTConfig fields) give what a checkpoint file does not record."""
    overrides = {"num_classes": num_classes, **fields}
    if image_size is not None:
        overrides["image_size"] = image_size
    return load_checkpoint(os.fspath(weights), dtype=dtype, new_head=True, variant=variant,
                           **overrides)


def finetune(weights, data="digits", output_dir=None, image_size=None, epochs=None,
             batch_size=None, learning_rate=None, warmup_epochs=None, decay=None,
             label_smoothing=None, augment=None, seed=0, mixed_precision=False,
             jit_compile="auto", distribute=False, gradient_accumulation_steps=None,
             steps_per_execution=None, data_dir=None, manual_dir=None, tensorboard=True,
             verbose="auto", overwrite=False, command=None, layer_decay=None, ema=None,
             lora_rank=None, remat=False, variant=None, model_fields=None):
    """Fine-tunes a pre-trained ViT with the paper's fine-tuning recipe.

    SGD with momentum 0.9, cosine decay after a short warmup, global grad-norm
    clip 1, no weight decay; a new zero head for the data set's classes, and
    at a higher resolution (`image_size`) the position embeddings resampled
    in 2-D (`keras_vit.resize_position_embeddings`).

    Args:
        weights: a `.keras` model file, a checkpoint file (.npz, timm or HF
            safetensors) or a registered name such as "B/16:augreg_in21k".
        data: a `load_dataset` name or image folder. Defaults to "digits".
        output_dir: the run's folder. Defaults to "runs/finetune-<data>".
        image_size: None (the model's resolution) or the fine-tuning one,
            e.g. 384. Defaults to None.
        epochs, batch_size (512 in the paper), learning_rate (0.01),
            warmup_epochs, decay, label_smoothing, augment: the recipe; None
            takes `FINETUNE_RECIPE`'s value.
        layer_decay, ema, lora_rank, remat: the fine-tuning kit
            (`keras_vit.training.finetune_kit`): block i learns at rate x
            layer_decay^(L - i); EMA of the weights with that momentum (True:
            0.9999), evaluated and saved; LoRA of that rank on the attention
            and MLP projections, all else frozen but the head (saved merged);
            `keras.RematScope` (less memory, more time). Defaults: off.
        variant, model_fields: what the checkpoint file does not record, e.g.
            variant="B/16" or model_fields={"num_heads": 3} (as `keras-vit
            convert --variant/--set`). Defaults: None.
        Others: as in `train`.

    Returns:
        The metrics dict also written to `output_dir/metrics.json`.
    """
    given = dict(epochs=epochs, batch_size=batch_size, learning_rate=learning_rate,
                 warmup_epochs=warmup_epochs, decay=decay, label_smoothing=label_smoothing,
                 augment=augment)
    run = _Run(FINETUNE_RECIPE, given, data, "finetune", output_dir, seed, jit_compile,
               distribute, gradient_accumulation_steps, mixed_precision, verbose)
    with run.scope():
        # Probe the data set for its classes first, then load at the model's size.
        _, probe = datasets.load_dataset(data, "test", batch_size=1, data_dir=data_dir,
                                manual_dir=manual_dir)
        with finetune_kit.remat_scope(remat):  # fine-tuning kit
            vit = load_for_finetuning(weights, probe.num_classes, image_size, dtype=run.dtype,
                                      variant=variant, **(model_fields or {}))
        if lora_rank:
            vit = finetune_kit.enable_lora(vit, lora_rank)
    # Read at the model's size and channel count (gray and colour converted).
    train_ds, test_ds, info = run.load(vit.config.image_hw, vit.config.num_channels,
                                       data_dir=data_dir, manual_dir=manual_dir)
    with run.scope():
        optimizer = finetuning_optimizer(
            run.schedule(), gradient_accumulation_steps=gradient_accumulation_steps)
        if layer_decay is not None or ema:  # fine-tuning kit
            optimizer = finetune_kit.rebuild_optimizer(optimizer, vit, layer_decay, ema)
    run.record.update(weights=str(weights), variant=variant, model_fields=model_fields or {},
                      layer_decay=layer_decay, ema=ema,
                      lora_rank=lora_rank, remat=remat,
                      trainable_fraction=round(finetune_kit.trainable_fraction(vit), 5))
    return run.fit(vit, optimizer, train_ds, test_ds, info, steps_per_execution, tensorboard,
                   overwrite, command)
