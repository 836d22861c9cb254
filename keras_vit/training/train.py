"""`train` and `finetune`: the library functions behind `keras-vit train|finetune`.

Plain Keras underneath: `model.fit` with Keras optimizers, schedules and
callbacks (TensorBoard), plus `ResumableCheckpoint` for what Keras lacks.
An output folder holds everything of one run:

    DIR/model.keras      the trained model (written atomically at the end)
    DIR/metrics.json     test_accuracy, test_top5_accuracy (K > 5), seconds, config
    DIR/history.csv      one row per epoch, `epoch` column first (1-based)
    DIR/logs/            TensorBoard
    DIR/checkpoint/      the last completed epoch's weights and optimizer state

Started again with the same folder, a run goes on from the last completed
epoch (and says so).
"""

import json
import math
import os
import sys
import time

import numpy as np

from keras_vit.checkpoints import load as load_checkpoint
from keras_vit.training import finetune_kit
from keras_vit.training.callbacks import ResumableCheckpoint, TrainingDiverged
from keras_vit.training.recipes import (
    DIGITS_MODEL,
    DIGITS_RECIPE,
    FINETUNE_RECIPE,
    PRETRAIN_RECIPE,
    finetuning_optimizer,
    make_schedule,
    pretraining_optimizer,
)


def _log(message, verbose):
    if verbose:
        print(message, file=sys.stderr, flush=True)


def _has_accelerator():
    import keras

    if keras.backend.backend() == "tensorflow":
        import tensorflow as tf

        return bool(tf.config.list_logical_devices("GPU") or tf.config.list_logical_devices("TPU"))
    if keras.backend.backend() == "jax":
        import jax

        return jax.default_backend() != "cpu"
    if keras.backend.backend() == "torch":
        import torch

        return torch.cuda.is_available()
    return False


def resolve_jit_compile(jit_compile, cpu_default=False):
    """`"auto"`: on for GPU/TPU; on a CPU only where measured faster (`cpu_default`)."""
    if jit_compile == "auto" or jit_compile is None:
        return True if _has_accelerator() else bool(cpu_default)
    if isinstance(jit_compile, str):
        if jit_compile.lower() in ("on", "true", "1", "yes"):
            return True
        if jit_compile.lower() in ("off", "false", "0", "no"):
            return False
        raise ValueError(
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
            raise ValueError(
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
    raise ValueError(
        "Received an invalid value for argument `distribute`: data-parallel "
        "training is supported on the tensorflow and jax backends. "
        f"Received: distribute=True with backend {backend!r}"
    )


def _policy(mixed_precision):
    if not mixed_precision:
        return None
    return "mixed_float16" if _has_accelerator() else "mixed_bfloat16"


def _to_one_hot(dataset, num_classes, one_hot_labels):
    import tensorflow as tf

    if one_hot_labels:
        return dataset
    return dataset.map(
        lambda x, y: (x, tf.one_hot(y, num_classes)), num_parallel_calls=tf.data.AUTOTUNE
    )


def _match_channels(dataset, data_channels, model_channels):
    """Grayscale data for an RGB model: repeat the channel (e.g. digits to a checkpoint)."""
    import tensorflow as tf

    if data_channels == model_channels:
        return dataset
    if data_channels == 1:
        return dataset.map(lambda x, y: (tf.repeat(x, model_channels, axis=-1), y))
    raise ValueError(
        f"Received an invalid value for argument `data`: it has {data_channels} "
        f"channels but the model takes {model_channels}."
    )


def build_model(model, info, image_size=None, dtype=None, **fields):
    """A `VisionTransformer` for a data set: a variant name, "digits" or a ViTConfig dict."""
    import keras_vit

    shape = dict(image_size=image_size or info.image_size, num_channels=info.num_channels,
                 num_classes=info.num_classes)
    if model == "digits":
        config = keras_vit.ViTConfig(**DIGITS_MODEL, **shape)
    elif isinstance(model, str):
        try:
            config = keras_vit.variant_config(model, **shape)
        except ValueError as error:  # name the argument the user gave
            raise ValueError(str(error).replace("`config`", "`model`").replace(
                "config=", "model=")) from None
        h, w = config.image_hw
        if h % config.patch_size or w % config.patch_size or config.num_patches < 4:
            # A 16 px patch on a 32 px image leaves 4 tokens: use 4 px patches.
            config = config.replace(patch_size=max(1, min(h, w) // 8))
    elif isinstance(model, dict):
        config = keras_vit.ViTConfig.from_dict({**model, **shape})
    else:
        raise ValueError(
            "Received an invalid value for argument `model`, expected 'digits', a "
            f"variant name like 'Ti/16' or a ViTConfig dict. Received: model={model!r}"
        )
    from keras_vit.models.config import field_names

    unknown = sorted(set(fields) - set(field_names()))
    if unknown:
        raise ValueError(
            "Received an invalid value for argument `model_fields`: unknown ViTConfig "
            f"field(s) {', '.join(unknown)}. Known: {', '.join(field_names())}"
        )
    config = config.replace(**{k: v for k, v in fields.items() if v is not None})
    return keras_vit.VisionTransformer(config, dtype=dtype, name="vit")


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


def _save_atomic(model, path):
    tmp = os.path.join(os.path.dirname(path) or ".", ".tmp-" + os.path.basename(path))
    model.save(tmp)
    os.replace(tmp, path)


def _check_recipe(recipe):
    for name in ("epochs", "batch_size"):
        value = recipe[name]
        if isinstance(value, bool) or not isinstance(value, int) or value <= 0:
            raise ValueError(
                f"Received an invalid value for argument `{name}`, expected a "
                f"positive integer. Received: {name}={value!r}"
            )
    rate = recipe["learning_rate"]
    if isinstance(rate, bool) or not isinstance(rate, (int, float)) or not rate > 0:
        raise ValueError(
            "Received an invalid value for argument `learning_rate`, expected a "
            f"positive number. Received: learning_rate={rate!r}"
        )


def _fit(model, optimizer, train_ds, test_ds, info, output_dir, recipe, record, *,
         jit_compile, steps_per_execution, steps, verbose, tensorboard, start):
    """Compiles, resumes, fits, saves and evaluates; shared by train and finetune.

    `metrics.json`'s config is the recipe, the run's `record` (data, seed,
    image size, ...) and what was resolved here (XLA, steps, the model).
    """
    import keras

    epochs, label_smoothing = recipe["epochs"], recipe["label_smoothing"]
    config = dict(
        recipe, **record, jit_compile=jit_compile, steps_per_execution=steps_per_execution,
        steps_per_epoch=steps, model_config=model.config.to_dict(),
        parameters=int(model.count_params()),
    )
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
        os.path.join(output_dir, "checkpoint"), os.path.join(output_dir, "history.csv")
    )
    done = checkpoint.restore(model)
    if done:
        _log(f"Resuming from epoch {done} of {epochs} "
             f"(state in {os.path.join(output_dir, 'checkpoint')}).", verbose)
    callbacks = [checkpoint]
    if tensorboard and not _tensorboard_installed():
        _log("TensorBoard logs skipped: `pip install tensorboard` to have them.", verbose)
        tensorboard = False
    if tensorboard:
        callbacks.append(keras.callbacks.TensorBoard(
            os.path.join(output_dir, "logs"), write_graph=False, update_freq="epoch"
        ))
    if done < epochs:
        model.fit(train_ds, epochs=epochs, initial_epoch=done, callbacks=callbacks,
                  verbose=verbose, shuffle=False)  # tf.data shuffles already
    else:
        _log(f"All {epochs} epochs were already done; evaluating the saved state.", verbose)
    model_path = os.path.join(output_dir, "model.keras")
    if checkpoint.diverged is not None:
        epoch, batch = checkpoint.diverged
        good = checkpoint.restore(model)  # the last committed (finite) state
        where = f"epoch {epoch}" + (f", batch {batch}" if batch else "")
        if good:
            _save_atomic(model, model_path)
            kept = f"the last good model (epoch {good}) is in {model_path}"
        else:
            kept = "no epoch had completed, so no model was saved"
        raise TrainingDiverged(
            f"the loss became NaN or infinite at {where}; training stopped and "
            f"{kept}. Lower the learning rate or check the data."
        )
    _save_atomic(model, model_path)
    metrics = test_metrics(model, test_ds, info.num_classes)
    metrics.update(
        seconds=round(time.time() - start, 2),
        epochs=int(epochs),
        resumed_from_epoch=int(done),
        backend=keras.backend.backend(),
        config=config,
    )
    with open(os.path.join(output_dir, "metrics.json.tmp"), "w") as f:
        json.dump(metrics, f, indent=2, sort_keys=False, default=str)
    os.replace(os.path.join(output_dir, "metrics.json.tmp"),
               os.path.join(output_dir, "metrics.json"))
    _log(f"Test accuracy {metrics['test_accuracy']:.4f} on {metrics['test_examples']} "
         f"images; model in {model_path}.", verbose)
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


def train(data="digits", model=None, output_dir=None, epochs=None, batch_size=None,
          learning_rate=None, weight_decay=None, warmup_epochs=None, decay=None,
          label_smoothing=None, dropout_rate=None, drop_path_rate=None, image_size=None,
          augment=None, seed=0, mixed_precision=False, jit_compile="auto",
          distribute=False, gradient_accumulation_steps=None, steps_per_execution=None,
          data_dir=None, manual_dir=None, model_fields=None, tensorboard=True,
          verbose="auto"):
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
        jit_compile: "auto" (XLA on GPU/TPU; on a CPU only where the recipe
            measured it faster), True or False. Defaults to "auto".
        distribute: bool, data-parallel over all devices: MirroredStrategy
            on TensorFlow, keras.distribution.DataParallel on JAX.
        gradient_accumulation_steps: int, apply the summed gradients of this
            many batches at once (batches larger than memory). Defaults to None.
        steps_per_execution: int, batches per compiled call (None: up to 16
            on a CPU, a divisor of the epoch's steps, which hides the per-step overhead of small models; 1 else).
        data_dir, manual_dir: passed to `load_dataset`.
        model_fields: dict of other `ViTConfig` fields. Defaults to None.
        tensorboard: write TensorBoard logs. Defaults to True.
        verbose: Keras' fit verbosity. Defaults to "auto".

    Returns:
        The metrics dict also written to `output_dir/metrics.json`.

    Example:

    >>> metrics = train("digits", output_dir="runs/digits")
    >>> metrics["test_accuracy"] > 0.98
    True
    """
    import keras

    from keras_vit.data import load_dataset

    start = time.time()
    recipe = dict(DIGITS_RECIPE if data == "digits" else PRETRAIN_RECIPE)
    given = dict(model=model, epochs=epochs, batch_size=batch_size, learning_rate=learning_rate,
                 weight_decay=weight_decay, warmup_epochs=warmup_epochs, decay=decay,
                 label_smoothing=label_smoothing, dropout_rate=dropout_rate,
                 drop_path_rate=drop_path_rate, augment=augment, image_size=image_size)
    recipe.update({k: v for k, v in given.items() if v is not None})
    _check_recipe(recipe)
    output_dir = output_dir or default_output_dir(data, "train")
    verbose_log = verbose not in (0, False)
    jit = resolve_jit_compile(jit_compile, recipe.pop("jit_compile_cpu"))
    keras.utils.set_random_seed(seed)
    _check_accumulation(gradient_accumulation_steps, distribute)
    scope, replicas = _distribution_scope(distribute, verbose_log)
    if distribute and jit and not _has_accelerator():
        jit = False  # XLA across virtual CPU replicas is not supported by TF
    image_size = recipe["image_size"]
    common = dict(image_size=image_size, batch_size=recipe["batch_size"], seed=seed,
                  data_dir=data_dir, manual_dir=manual_dir)
    # Replicas split every batch evenly: drop a last, partial one when distributing.
    train_ds, info = load_dataset(data, "train", augment=recipe["augment"],
                                  drop_remainder=bool(distribute), **common)
    test_ds, _ = load_dataset(data, "test", augment=None, **common)
    steps = _steps_per_epoch(info, train_ds, recipe["batch_size"], bool(distribute))
    if steps_per_execution is None:
        steps_per_execution = 1 if _has_accelerator() or distribute else _divisor(steps)
    with scope():
        vit = build_model(recipe["model"], info, image_size=image_size,
                          dtype=_policy(mixed_precision),
                          dropout_rate=recipe["dropout_rate"],
                          drop_path_rate=recipe["drop_path_rate"], **(model_fields or {}))
        schedule = make_schedule(recipe["learning_rate"], recipe["epochs"], steps,
                                 recipe["warmup_epochs"], recipe["decay"])
        optimizer = pretraining_optimizer(
            schedule, weight_decay=recipe["weight_decay"],
            gradient_accumulation_steps=gradient_accumulation_steps, model=vit,
        )
    record = dict(data=str(data), seed=seed, image_size=list(info.image_size),
                  mixed_precision=bool(mixed_precision), distribute=bool(distribute),
                  replicas=replicas, gradient_accumulation_steps=gradient_accumulation_steps)
    with scope():
        return _fit(vit, optimizer, train_ds, test_ds, info, output_dir, recipe, record,
                    jit_compile=jit, steps_per_execution=steps_per_execution, steps=steps,
                    verbose=verbose, tensorboard=tensorboard, start=start)


def load_for_finetuning(weights, num_classes, image_size=None, dtype=None):
    """A model from a `.keras` file, a checkpoint file or a registered name,
    with a zero head for `num_classes`, position embeddings resized to
    `image_size` as the weights' source does and, with `dtype` (a policy such
    as "mixed_bfloat16"), built under it: the checkpoint pipeline's
    `keras_vit.checkpoints.load` with `new_head=True`."""
    overrides = {"num_classes": num_classes}
    if image_size is not None:
        overrides["image_size"] = image_size
    return load_checkpoint(os.fspath(weights), dtype=dtype, new_head=True, **overrides)


def finetune(weights, data="digits", output_dir=None, image_size=None, epochs=None,
             batch_size=None, learning_rate=None, warmup_epochs=None, decay=None,
             label_smoothing=None, augment=None, seed=0, mixed_precision=False,
             jit_compile="auto", distribute=False, gradient_accumulation_steps=None,
             steps_per_execution=None, data_dir=None, manual_dir=None, tensorboard=True,
             verbose="auto", layer_decay=None, ema=None, lora_rank=None, remat=False):
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
        Others: as in `train`.

    Returns:
        The metrics dict also written to `output_dir/metrics.json`.
    """
    import keras

    from keras_vit.data import load_dataset

    start = time.time()
    recipe = dict(FINETUNE_RECIPE)
    given = dict(epochs=epochs, batch_size=batch_size, learning_rate=learning_rate,
                 warmup_epochs=warmup_epochs, decay=decay, label_smoothing=label_smoothing,
                 augment=augment)
    recipe.update({k: v for k, v in given.items() if v is not None})
    _check_recipe(recipe)
    output_dir = output_dir or default_output_dir(data, "finetune")
    verbose_log = verbose not in (0, False)
    jit = resolve_jit_compile(jit_compile, False)
    keras.utils.set_random_seed(seed)
    _check_accumulation(gradient_accumulation_steps, distribute)
    scope, replicas = _distribution_scope(distribute, verbose_log)
    if distribute and jit and not _has_accelerator():
        jit = False  # XLA across virtual CPU replicas is not supported by TF
    with scope():
        # Probe the data set for its classes first, then load at the model's size.
        _, probe = load_dataset(data, "test", batch_size=1, data_dir=data_dir,
                                manual_dir=manual_dir)
        with finetune_kit.remat_scope(remat):  # fine-tuning kit
            vit = load_for_finetuning(weights, probe.num_classes, image_size,
                                      dtype=_policy(mixed_precision))
        if lora_rank:
            vit = finetune_kit.enable_lora(vit, lora_rank)
    size = vit.config.image_hw
    common = dict(image_size=size, batch_size=recipe["batch_size"], seed=seed,
                  data_dir=data_dir, manual_dir=manual_dir)
    # Replicas split every batch evenly: drop a last, partial one when distributing.
    train_ds, info = load_dataset(data, "train", augment=recipe["augment"],
                                  drop_remainder=bool(distribute), **common)
    test_ds, _ = load_dataset(data, "test", augment=None, **common)
    train_ds = _match_channels(train_ds, info.num_channels, vit.config.num_channels)
    test_ds = _match_channels(test_ds, info.num_channels, vit.config.num_channels)
    steps = _steps_per_epoch(info, train_ds, recipe["batch_size"], bool(distribute))
    if steps_per_execution is None:
        steps_per_execution = 1 if _has_accelerator() or distribute else _divisor(steps)
    with scope():
        schedule = make_schedule(recipe["learning_rate"], recipe["epochs"], steps,
                                 recipe["warmup_epochs"], recipe["decay"])
        optimizer = finetuning_optimizer(
            schedule, gradient_accumulation_steps=gradient_accumulation_steps)
        if layer_decay is not None or ema:  # fine-tuning kit
            optimizer = finetune_kit.rebuild_optimizer(optimizer, vit, layer_decay, ema)
    record = dict(weights=str(weights), data=str(data), seed=seed, image_size=list(size),
                  layer_decay=layer_decay, ema=ema, lora_rank=lora_rank, remat=remat,
                  trainable_fraction=round(finetune_kit.trainable_fraction(vit), 5),
                  mixed_precision=bool(mixed_precision), distribute=bool(distribute),
                  replicas=replicas, gradient_accumulation_steps=gradient_accumulation_steps)
    with scope():
        return _fit(vit, optimizer, train_ds, test_ds, info, output_dir, recipe, record,
                    jit_compile=jit, steps_per_execution=steps_per_execution, steps=steps,
                    verbose=verbose, tensorboard=tensorboard, start=start)
