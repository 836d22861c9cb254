"""`train` and `finetune`: the library functions behind `keras-vit train|finetune`.

Plain Keras underneath: `model.fit` with Keras optimizers, schedules and
callbacks (TensorBoard), plus `ResumableCheckpoint` for what Keras lacks, in a
run folder that `keras_vit.training.runs` keeps (shared with `pretrain`):

    DIR/model.keras      the trained model (written atomically at the end)
    DIR/metrics.json     test_accuracy, test_top5_accuracy (K > 5), seconds (the
                         total) and segments (one per process that trained),
                         class_names, command, config
    DIR/history.csv      one row per epoch, `epoch` column first (1-based)
    DIR/logs/            TensorBoard
    DIR/checkpoint/      the last completed epoch's weights and optimizer state,
                         with the run's configuration

Started again with the same folder and the same configuration, a run goes on
from the last completed epoch (and says so); a larger `epochs` extends it (its
schedule recomputed over the new total, and the line printed says how the
learning rate moves). A different configuration is refused with one line naming
the differences, and nothing is overwritten unless `overwrite=True`
(`keras-vit train --overwrite`).
"""

import os

import keras

from keras_vit.checkpoints import load as load_checkpoint
from keras_vit import data as datasets  # looked up at call time (tests patch it)
from keras_vit.data.image_folder import image_folder_shape, is_image_folder
from keras_vit.errors import ArgumentError
from keras_vit.evaluation import evaluate
from keras_vit.evaluation.predict import record_background
from keras_vit.models import VisionTransformer, ViTConfig, variant_config
from keras_vit.models.config import check_field_names
from keras_vit.models.variants import unknown_variant
from keras_vit.training import finetune_kit
from keras_vit.training.recipes import (
    DIGITS_MODEL,
    FINETUNE_FIELDS,
    FINETUNE_RECIPE,
    RECIPES,
    check_fields,
    default_recipe,
    finetune_plan,
    get_recipe,
    make_optimizer,
    recipe_fields,
    small_images_model,
)
from keras_vit.training.runs import Run, log


def _to_one_hot(dataset, num_classes, one_hot_labels):
    import tensorflow as tf

    if one_hot_labels:
        return dataset
    return dataset.map(
        lambda x, y: (x, tf.one_hot(y, num_classes)), num_parallel_calls=tf.data.AUTOTUNE
    )


def build_model(model, info, image_size=None, dtype=None, keep_patch=True, **fields):
    """A `VisionTransformer` for a data set: a variant name, "digits" or a ViTConfig dict.

    Every field (`fields`, the data set's shape, `image_size`) is applied before the
    configuration is validated, so `image_size=28, patch_size=4` is one valid request.
    A named variant ("Ti/16") keeps its patch: a size it does not cut into at least 2x2
    patches is refused with the sizes that do (`keep_patch=False`, for a recipe's own
    default variant, picks a patch that does and says so).
    """
    check_field_names(fields, "model_fields")
    fields = {k: v for k, v in fields.items() if v is not None}
    shape = dict(image_size=image_size or info.image_size, num_channels=info.num_channels,
                 num_classes=info.num_classes)
    if model == "digits":
        config = ViTConfig(**{**DIGITS_MODEL, **shape, **fields})
    elif model == "small":
        config = ViTConfig(**{**small_images_model(shape["image_size"]), **shape, **fields})
    elif isinstance(model, str):
        if "patch_size" not in fields and "+" not in model:  # a hybrid's patch is its stem's
            patch = _variant(model, **shape, patch_size=1)
            patch = check_variant_patch(model, _variant(model).patch_size, patch.image_hw,
                                        keep_patch)
            fields["patch_size"] = patch
        config = _variant(model, **shape, **fields)
    elif isinstance(model, dict):
        config = ViTConfig.from_dict({**model, **shape, **fields})
    else:
        raise ArgumentError(
            "Received an invalid value for argument `model`, expected 'digits', 'small', "
            f"a variant name like 'Ti/16' or a ViTConfig dict. Received: model={model!r}"
        )
    return VisionTransformer(config, dtype=dtype, name="vit")


def check_variant_patch(model, patch, image_hw, keep_patch=True):
    """The patch for variant `model` (whose own patch is `patch`) at `image_hw`: its own
    where it cuts both sides into at least 2 patches; else refused (`keep_patch`) naming
    the sizes that work, or replaced by the largest that gives a grid of 4+ (recipe)."""
    h, w = image_hw
    if not (h % patch or w % patch or (h // patch) * (w // patch) < 4):
        return patch
    if keep_patch:
        sizes = ", ".join(str(patch * k) for k in range(2, 6))
        raise ArgumentError(
            f"--model {model} cuts {patch}x{patch} patches, which do not tile {h}x{w} images "
            f"into a grid of at least 2x2; use --image-size {sizes}, ... (multiples of "
            f"{patch}), or ask for another patch with --set patch_size=P")
    smaller = max(1, min(h, w) // 8)
    log(f"{model} at {h}x{w}: {smaller}x{smaller} patches instead of {patch}x{patch} (the "
        "recipe's default model; name --model or --set patch_size to choose).", True)
    return smaller


def _variant(name, **fields):
    try:
        return variant_config(name, **fields)
    except ValueError as error:  # name the argument the user gave
        if "unknown variant" not in str(error):
            raise
        raise unknown_variant(name, "model", ("digits", "small")) from error


def test_metrics(model, dataset, num_classes):
    """A run's test metrics, from `keras_vit.evaluation.evaluate`: top-1 as
    test_accuracy, top-5 as test_top5_accuracy (where K > 5), the cross-entropy as
    test_loss, and test_examples."""
    scores = evaluate(model, dataset, top_k=(1, 5) if num_classes > 5 else (1,), loss=True,
                      num_classes=num_classes)
    metrics = {"test_accuracy": scores["top1"], "test_loss": scores["loss"],
               "test_examples": scores["num_examples"]}
    if "top5" in scores:
        metrics["test_top5_accuracy"] = scores["top5"]
    return metrics


def _fit(run, model, optimizer, train_ds, test_ds, info, steps_per_execution, tensorboard,
         overwrite, command):
    """Compiles the classifier (cross-entropy with the recipe's label smoothing) and
    fits it in the run folder (`Run.fit`); shared by train and finetune."""
    run.record["image_size"] = list(model.config.image_hw)
    record_background(model, info.background)  # saved with it: predict's auto-invert
    with run.scope():  # under the strategy: the XLA policy sees it
        label_smoothing = run.recipe["label_smoothing"]
        run.compile(
            model, optimizer,
            loss=keras.losses.CategoricalCrossentropy(
                from_logits=True, label_smoothing=label_smoothing
            ),
            metrics=["accuracy"], steps_per_execution=steps_per_execution,
        )
        config = run.config(model)
        metrics = run.fit(
            model, _to_one_hot(train_ds, info.num_classes, info.one_hot_labels), config,
            saves={"model.keras": model},
            evaluate=lambda: test_metrics(model, test_ds, info.num_classes),
            extra=dict(class_names=list(info.class_names) if info.class_names else None),
            tensorboard=tensorboard, overwrite=overwrite, command=command)
    log(f"Test accuracy {metrics['test_accuracy']:.4f} on {metrics['test_examples']} "
        f"images; model in {os.path.join(run.output_dir, 'model.keras')}.",
        run.verbose not in (0, False))
    return metrics


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
          augment=None, seed=0, mixed_precision=False, jit_compile=None,
          distribute=False, gradient_accumulation_steps=None, steps_per_execution=None,
          data_dir=None, manual_dir=None, model_fields=None, tensorboard=True,
          verbose="auto", overwrite=False, command=None, model_parallel=None, recipe=None,
          recipe_set=None):
    """Trains a ViT from scratch with the paper's pre-training recipe.

    Defaults (None) come from the recipe (`recipe`, else the preset for the data,
    `default_recipe`): AdamW (b1 0.9, b2 0.999) with weight decay on kernels, linear
    warmup then cosine (or linear) decay, global grad-norm clip 1, label
    smoothing, dropout and stochastic depth; a recipe with optimizer="sgd" trains
    with SGD (`make_optimizer`).

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
            model's own `compile` follows too), True or False. Defaults to None:
            the recipe's ("auto" in every preset).
        distribute: bool, data-parallel over all devices: MirroredStrategy
            on TensorFlow, keras.distribution.DataParallel on JAX; on JAX over
            every process of a multi-process job the environment describes
            (`keras_vit.training.distribution`).
        model_parallel: int, with `distribute` on JAX: this many devices hold
            one model, its q/k/v, output and MLP kernels sharded over them
            (`distribution.vit_layout_map`). Defaults to None (data-parallel).
        gradient_accumulation_steps: int, apply the summed gradients of this
            many batches at once (batches larger than memory). Defaults to None:
            the recipe's (None in every preset: one batch per update).
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
        recipe: a `Recipe` or a preset's name (`keras_vit.training.RECIPES`) giving
            the values the arguments above leave None. Defaults to None: "digits"
            on digits, "small_images" on a folder of images up to 64 px with no
            model or image size, "from_scratch" otherwise.
        recipe_set: dict of `Recipe` fields over the recipe and the arguments above
            (`--recipe-set FIELD=VALUE`), e.g. {"optimizer": "sgd"}. Defaults to None.

    Returns:
        The metrics dict also written to `output_dir/metrics.json`.

    Example:

    >>> metrics = train("digits", output_dir="runs/digits")
    >>> metrics["test_accuracy"] > 0.98
    True
    """
    given = dict(model=model, epochs=epochs, batch_size=batch_size, learning_rate=learning_rate,
                 weight_decay=weight_decay, warmup_epochs=warmup_epochs, decay=decay,
                 label_smoothing=label_smoothing, dropout_rate=dropout_rate,
                 drop_path_rate=drop_path_rate, augment=augment, image_size=image_size,
                 jit_compile=jit_compile,
                 gradient_accumulation_steps=gradient_accumulation_steps)
    recipe_set = checked_recipe_set(recipe_set, recipe_fields())
    asked = {**given, **recipe_set}  # what the caller chose (None: the recipe's)
    native = _small_folder(data, asked["model"], asked["image_size"])
    name = recipe or default_recipe(data, native is not None)
    defaults = get_recipe(name).to_dict()
    if defaults["model"] == "small" and defaults["image_size"] is None and native:
        defaults["image_size"] = list(native)  # the folder's own size
    if defaults["model"] is None and asked["model"] is None:
        raise ArgumentError(
            f"Received an invalid value for argument `model`: the recipe {preset_name(name)!r} "
            "names no model (it fine-tunes the weights' own); pass --model (model=) to "
            "train one from scratch, or run `keras-vit finetune --weights W`. "
            "Received: model=None")
    run = Run(defaults, given, data, "train", output_dir, seed, distribute=distribute,
              mixed_precision=mixed_precision, verbose=verbose,
              model_parallel=model_parallel, recipe_set=recipe_set,
              name=preset_name(name))
    recipe = run.recipe
    train_ds, test_ds, info = run.load(recipe["image_size"], data_dir=data_dir,
                                       manual_dir=manual_dir)
    with run.scope():
        vit = build_model(recipe["model"], info, image_size=recipe["image_size"],
                          dtype=run.dtype, keep_patch=asked["model"] is not None,
                          dropout_rate=recipe["dropout_rate"],
                          drop_path_rate=recipe["drop_path_rate"], **(model_fields or {}))
        optimizer = make_optimizer(recipe, run.schedule(), model=vit)
    if native is not None:
        c = vit.config
        log(f"{data}: {info.num_examples} training images of {native[0]}x{native[1]}x"
             f"{info.num_channels}, {info.num_classes} classes; with no model or image size "
             f"given, training the small-images recipe: {c.num_layers} layers of width "
             f"{c.hidden_size}, {c.patch_size}x{c.patch_size} patches, {recipe['epochs']} "
             f"epochs (keras_vit.training.SMALL_IMAGES_RECIPE).", verbose not in (0, False))
    return _fit(run, vit, optimizer, train_ds, test_ds, info, steps_per_execution, tensorboard,
                overwrite, command)


def checked_recipe_set(recipe_set, allowed):
    """`recipe_set` (a dict of Recipe fields, or None) with every name in `allowed`;
    else one line naming the field."""
    check_fields(recipe_set or {}, allowed, "`recipe_set`")
    return dict(recipe_set or {})


def preset_name(recipe):
    """A recipe's preset name for messages: its name, a preset's value, or None."""
    if isinstance(recipe, str):
        return recipe
    return next((name for name, preset in RECIPES.items() if preset == recipe), None)


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
             jit_compile=None, distribute=False, gradient_accumulation_steps=None,
             steps_per_execution=None, data_dir=None, manual_dir=None, tensorboard=True,
             verbose="auto", overwrite=False, command=None, layer_decay=None, ema=None,
             lora_rank=None, remat=False, variant=None, model_fields=None,
             model_parallel=None, recipe=None, recipe_set=None):
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
        recipe: a `Recipe` or a preset's name whose `FINETUNE_FIELDS` give the
            values the arguments above leave None. Defaults to "finetune", its epochs,
            batch and rate fitted to the training set (`finetune_plan`).
        recipe_set: dict of the `FINETUNE_FIELDS` (and image_size) over the recipe and
            the arguments above (`--recipe-set`), e.g. {"optimizer": "adamw",
            "weight_decay": 0.05}. Defaults to None.
        model_parallel, others: as in `train`.

    Returns:
        The metrics dict also written to `output_dir/metrics.json`.
    """
    given = dict(epochs=epochs, batch_size=batch_size, learning_rate=learning_rate,
                 warmup_epochs=warmup_epochs, decay=decay, label_smoothing=label_smoothing,
                 augment=augment, jit_compile=jit_compile,
                 gradient_accumulation_steps=gradient_accumulation_steps)
    recipe_set = checked_recipe_set(recipe_set, ("image_size", *FINETUNE_FIELDS))
    image_size = recipe_set.pop("image_size", image_size)  # the model's, not the recipe's
    asked = {**given, **recipe_set}
    # Probe the data set for its size and classes first, then load at the model's size.
    _, probe = datasets.load_dataset(data, "train", batch_size=1, data_dir=data_dir,
                                     manual_dir=manual_dir)
    if recipe is None and probe.num_examples:  # "finetune", its steps fitted to the data
        plan, why = finetune_plan(probe.num_examples, probe.image_size)
        defaults = dict(FINETUNE_RECIPE, **plan)
        if not any(asked.get(k) is not None for k in plan):
            log(f"Fine-tuning recipe: {why}.", verbose not in (0, False))
    else:
        plan, defaults = {}, get_recipe(recipe or "finetune").to_dict(FINETUNE_FIELDS)
    run = Run(defaults, given, data, "finetune", output_dir, seed, distribute=distribute,
              mixed_precision=mixed_precision, verbose=verbose,
              model_parallel=model_parallel, recipe_set=recipe_set,
              name=preset_name(recipe or "finetune"),
              planned=[k for k in plan if k not in asked or asked[k] is None])
    with run.scope():
        with finetune_kit.remat_scope(remat):  # fine-tuning kit
            vit = load_for_finetuning(weights, probe.num_classes, image_size, dtype=run.dtype,
                                      variant=variant, **(model_fields or {}))
        finetune_kit.check_remat(vit)
        if lora_rank:
            vit = finetune_kit.enable_lora(vit, lora_rank)
    # Read at the model's size and channel count (gray and colour converted).
    train_ds, test_ds, info = run.load(vit.config.image_hw, vit.config.num_channels,
                                       data_dir=data_dir, manual_dir=manual_dir)
    with run.scope():
        optimizer = make_optimizer(run.recipe, run.schedule(), model=vit)
        if layer_decay is not None or ema:  # fine-tuning kit
            optimizer = finetune_kit.rebuild_optimizer(optimizer, vit, layer_decay, ema)
    run.record.update(weights=str(weights), variant=variant, model_fields=model_fields or {},
                      layer_decay=layer_decay, ema=ema,
                      lora_rank=lora_rank, remat=remat,
                      trainable_fraction=round(finetune_kit.trainable_fraction(vit), 5))
    return _fit(run, vit, optimizer, train_ds, test_ds, info, steps_per_execution, tensorboard,
                overwrite, command)
