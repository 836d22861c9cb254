"""`pretrain`: the library function behind `keras-vit pretrain --objective mpp`.

A run folder kept as `keras_vit.training.train` keeps it, by the same
`keras_vit.training.Run` (resume, extend, refuse a rerun with other options,
never overwrite without `overwrite=True`):

    DIR/model.keras        the pre-trained backbone (a VisionTransformer with no
                           head): what `keras-vit finetune --weights` takes
    DIR/pretraining.keras  the whole MaskedPatchPrediction model ([mask]
                           embedding and prediction head too)
    DIR/metrics.json       test_loss and test_patch_accuracy on the test split,
                           seconds and segments, command, config
    DIR/history.csv        one row per epoch, `epoch` column first (1-based)
    DIR/logs/              TensorBoard
    DIR/checkpoint/        the last completed epoch's weights and optimizer state,
                           with the run's configuration

Started again with the same folder and options, a run goes on from the last
completed epoch; other options are refused in one line (the folder, each
difference old -> new, and the ways out: `--output-dir NEW` or `--overwrite`).
"""

import os

import keras

from keras_vit.errors import ArgumentError
from keras_vit.pretraining.masked_patch_prediction import MaskedPatchPrediction
from keras_vit.training import (
    Run,
    build_model,
    default_recipe,
    get_recipe,
    make_optimizer,
)
from keras_vit.training.recipes import pretrain_fields
from keras_vit.training.train import checked_recipe_set, preset_name
from keras_vit.training.runs import log

OBJECTIVES = ("mpp",)


def whole_batches(images, examples, batch_size, replicas):
    """A batched image set re-batched for a distributed test pass, whose batch must be
    static and split evenly over `replicas`: in the largest batch up to `batch_size`
    that divides both `examples` and by `replicas` (every image is evaluated), or
    where none does (or `examples` is None: unknown), in whole batches of `batch_size`
    (the rest left out). Returns (dataset, images evaluated or None where unknown)."""
    sizes = [b for b in range(batch_size, replicas - 1, -1)
             if b % replicas == 0 and examples and examples % b == 0]
    batch = sizes[0] if sizes else batch_size
    evaluated = examples if sizes else (examples // batch * batch if examples else None)
    return images.unbatch().batch(batch, drop_remainder=True), evaluated


def pretrain(data="digits", objective="mpp", target="mean_color", model=None, output_dir=None,
             epochs=None, batch_size=None, learning_rate=None, weight_decay=None,
             warmup_epochs=None, decay=None, dropout_rate=None, drop_path_rate=None,
             image_size=None, augment=None, corruption_rate=0.5, mask_rate=0.8,
             random_rate=0.1, seed=0, jit_compile=None, steps_per_execution=None,
             data_dir=None, manual_dir=None, model_fields=None, tensorboard=True,
             verbose="auto", overwrite=False, command=None, distribute=False,
             model_parallel=None, gradient_accumulation_steps=None, recipe=None,
             recipe_set=None):
    """Pre-trains a ViT backbone by masked patch prediction on unlabeled images.

    The labels of `data` are ignored. The optimiser is the paper's
    pre-training one (AdamW b1 0.9, b2 0.999, weight decay on kernels, warmup
    then cosine decay, grad-norm clip 1); defaults come from the recipe: the
    "digits" preset on digits and "mpp" otherwise (`default_recipe`), or `recipe`.

    Args:
        data: a `keras_vit.data.load_dataset` name or image folder. Defaults
            to "digits".
        objective: "mpp" (masked patch prediction, paper section 4.6).
        target: "mean_color", "downsampled" or "pixels" (see
            `MaskedPatchPrediction`). Defaults to "mean_color".
        model: "digits", a variant name ("Ti/16") or a `ViTConfig` dict.
            Defaults to the recipe's.
        output_dir: the run's folder (see the module docstring). Defaults to
            "runs/pretrain-<data>".
        epochs, batch_size, learning_rate, weight_decay, warmup_epochs, decay,
            dropout_rate, drop_path_rate, augment, image_size: the recipe;
            None takes its default.
        corruption_rate, mask_rate, random_rate: the corruption (0.5, 0.8, 0.1).
        seed: int, for initialisation, shuffling, augmentation and corruption.
        jit_compile: "auto" (XLA on GPU/TPU, off on a CPU), True or False; None
            takes the recipe's ("auto" in every preset).
        steps_per_execution: batches per compiled call (None: up to 16 on a CPU).
        data_dir, manual_dir: passed to `load_dataset`.
        model_fields: dict of other `ViTConfig` fields.
        tensorboard: write TensorBoard logs. Defaults to True.
        verbose: Keras' fit verbosity; "auto" is a progress bar on a terminal
            and one line per epoch otherwise. Defaults to "auto".
        overwrite: bool, start over in an `output_dir` that holds a run made
            with other options (deleting its files) instead of refusing.
            Defaults to False.
        command: str, recorded in metrics.json as how the run was made.
            Defaults to None.
        distribute, model_parallel, gradient_accumulation_steps: as in
            `keras_vit.training.train` (data-parallel over all devices, on JAX over
            every process of a multi-process job the environment describes; process 0
            alone writes the run folder). Defaults: off.
        recipe: a `Recipe` or a preset's name (`keras_vit.training.RECIPES`) giving
            the values the arguments above leave None (its label_smoothing is not
            used: there are no labels). Defaults to None: "digits" on digits, "mpp"
            otherwise.
        recipe_set: dict of `Recipe` fields (all but label_smoothing) over the recipe
            and the arguments above (`--recipe-set`). Defaults to None.

    Returns:
        The metrics dict also written to `output_dir/metrics.json`.

    Example:

    >>> pretrain("digits", target="mean_color", output_dir="runs/mpp", epochs=20)
    >>> finetune("runs/mpp/model.keras", "digits", output_dir="runs/mpp-finetune")
    """
    if objective not in OBJECTIVES:
        raise ArgumentError(
            "Received an invalid value for argument `objective`, expected one of "
            f"{', '.join(repr(o) for o in OBJECTIVES)}. Received: objective={objective!r}"
        )
    if distribute and keras.backend.backend() == "tensorflow":
        # Keras scales a loss by the replicas only inside keras.losses.Loss; the masked
        # patch loss is the model's own (`compute_loss`), so MirroredStrategy would sum
        # the replicas' gradients instead of averaging them.
        raise ArgumentError(
            "Received an invalid value for argument `distribute`: masked patch prediction "
            "is distributed through keras.distribution on the jax backend (set "
            "KERAS_BACKEND=jax); under tf.distribute.MirroredStrategy its own loss would "
            "not be averaged over the replicas. Received: distribute=True with backend "
            "'tensorflow'")
    name = recipe or default_recipe(data, command="pretrain")
    defaults = get_recipe(name).to_dict(pretrain_fields())  # no labels: no smoothing
    given = dict(model=model, epochs=epochs, batch_size=batch_size, learning_rate=learning_rate,
                 weight_decay=weight_decay, warmup_epochs=warmup_epochs, decay=decay,
                 dropout_rate=dropout_rate, drop_path_rate=drop_path_rate, augment=augment,
                 image_size=image_size, jit_compile=jit_compile,
                 gradient_accumulation_steps=gradient_accumulation_steps)
    recipe_set = checked_recipe_set(recipe_set, pretrain_fields())
    run = Run(defaults, given, data, "pretrain", output_dir, seed, distribute=distribute,
              verbose=verbose, model_parallel=model_parallel, recipe_set=recipe_set,
              name=preset_name(name))
    recipe = run.recipe
    train_ds, test_ds, info = run.load(recipe["image_size"], data_dir=data_dir,
                                       manual_dir=manual_dir)
    train_images = train_ds.map(lambda images, labels: images)
    test_images = test_ds.map(lambda images, labels: images)
    with run.scope():  # under the strategy: the model, its optimizer and the compile
        backbone = build_model(recipe["model"], info, image_size=recipe["image_size"],
                               keep_patch={**given, **recipe_set}.get("model") is not None,
                               dropout_rate=recipe["dropout_rate"],
                               drop_path_rate=recipe["drop_path_rate"], include_top=False,
                               **(model_fields or {}))
        mpp = MaskedPatchPrediction(backbone, target=target, corruption_rate=corruption_rate,
                                    mask_rate=mask_rate, random_rate=random_rate, seed=seed)
        optimizer = make_optimizer(recipe, run.schedule(), model=mpp)
        # XLA: the run's policy, told that this objective measured slower with XLA on a CPU.
        run.compile(mpp, optimizer, steps_per_execution=steps_per_execution, xla_on_cpu=False)
        run.record["image_size"] = list(backbone.config.image_hw)
        config = run.config(backbone, objective=objective, target=target,
                            corruption_rate=corruption_rate, mask_rate=mask_rate,
                            random_rate=random_rate)

    evaluated = run.test_examples
    if run.distribute:  # keras.distribution needs a static batch its replicas split
        test_images, evaluated = whole_batches(test_images, run.test_examples,
                                               recipe["batch_size"], run.replicas)
        if evaluated != run.test_examples:
            log(f"The test pass takes whole batches of {recipe['batch_size']} when "
                f"distributing: {evaluated if evaluated is not None else 'all but the last'}"
                f" of {run.test_examples or 'the'} test images.", run.verbose not in (0, False))

    def evaluate():
        scores = mpp.evaluate(test_images, verbose=0, return_dict=True)
        return {**{f"test_{k}": float(v) for k, v in scores.items()},
                "test_examples": evaluated}

    with run.scope():
        metrics = run.fit(mpp, train_images, config,
                          saves={"model.keras": backbone, "pretraining.keras": mpp},
                          evaluate=evaluate, extra=dict(objective=objective, target=target),
                          tensorboard=tensorboard, overwrite=overwrite, command=command,
                          what="pre-training")
    model_path = os.path.join(run.output_dir, "model.keras")
    log(f"Test masked-patch loss {metrics['test_loss']:.4f}; backbone in {model_path} "
        f"(keras-vit finetune --weights {model_path}).", run.verbose not in (0, False))
    return metrics
