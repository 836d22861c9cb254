"""`pretrain`: the library function behind `keras-vit pretrain --objective mpp`.

A run folder like `keras_vit.training.train` writes, through the same
machinery (`ResumableCheckpoint`, the recipes, the atomic save):

    DIR/model.keras        the pre-trained backbone (a VisionTransformer with no
                           head): what `keras-vit finetune --weights` takes
    DIR/pretraining.keras  the whole MaskedPatchPrediction model ([mask]
                           embedding and prediction head too)
    DIR/metrics.json       test_loss and test_patch_accuracy on the test split,
                           seconds, config
    DIR/history.csv        one row per epoch, `epoch` column first (1-based)
    DIR/logs/              TensorBoard
    DIR/checkpoint/        the last completed epoch's weights and optimizer state

Started again with the same folder, a run goes on from the last completed epoch.
"""

import json
import os
import time

from keras_vit.errors import ArgumentError
from keras_vit.pretraining.masked_patch_prediction import MaskedPatchPrediction
from keras_vit.training import (
    DIGITS_RECIPE,
    PRETRAIN_RECIPE,
    ResumableCheckpoint,
    TrainingDiverged,
    build_model,
    default_output_dir,
    make_schedule,
    pretraining_optimizer,
    resolve_jit_compile,
)

# Shared with `train` (not yet public in keras_vit.training; see the report of issue 12).
from keras_vit.training.train import (
    _check_recipe,
    _divisor,
    _log,
    _save_model,
    _steps_per_epoch,
    _tensorboard_installed,
)
from keras_vit.utils import has_accelerator

OBJECTIVES = ("mpp",)


def pretrain(data="digits", objective="mpp", target="mean_color", model=None, output_dir=None,
             epochs=None, batch_size=None, learning_rate=None, weight_decay=None,
             warmup_epochs=None, decay=None, dropout_rate=None, drop_path_rate=None,
             image_size=None, augment=None, corruption_rate=0.5, mask_rate=0.8,
             random_rate=0.1, seed=0, jit_compile="auto", steps_per_execution=None,
             data_dir=None, manual_dir=None, model_fields=None, tensorboard=True,
             verbose="auto"):
    """Pre-trains a ViT backbone by masked patch prediction on unlabeled images.

    The labels of `data` are ignored. The optimiser is the paper's
    pre-training one (AdamW b1 0.9, b2 0.999, weight decay on kernels, warmup
    then cosine decay, grad-norm clip 1); defaults come from `DIGITS_RECIPE`
    for digits and `PRETRAIN_RECIPE` otherwise.

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
        jit_compile: "auto" (XLA on GPU/TPU, off on a CPU), True or False.
        steps_per_execution: batches per compiled call (None: up to 16 on a CPU).
        data_dir, manual_dir: passed to `load_dataset`.
        model_fields: dict of other `ViTConfig` fields.
        tensorboard: write TensorBoard logs. Defaults to True.
        verbose: Keras' fit verbosity. Defaults to "auto".

    Returns:
        The metrics dict also written to `output_dir/metrics.json`.

    Example:

    >>> pretrain("digits", target="mean_color", output_dir="runs/mpp", epochs=20)
    >>> finetune("runs/mpp/model.keras", "digits", output_dir="runs/mpp-finetune")
    """
    import keras

    from keras_vit.data import load_dataset

    start = time.time()
    if objective not in OBJECTIVES:
        raise ArgumentError(
            "Received an invalid value for argument `objective`, expected one of "
            f"{', '.join(repr(o) for o in OBJECTIVES)}. Received: objective={objective!r}"
        )
    recipe = dict(DIGITS_RECIPE if data == "digits" else PRETRAIN_RECIPE)
    recipe.pop("label_smoothing")  # no labels here
    recipe.pop("jit_compile_cpu", None)  # measured for the classifier, not for this objective
    given = dict(model=model, epochs=epochs, batch_size=batch_size, learning_rate=learning_rate,
                 weight_decay=weight_decay, warmup_epochs=warmup_epochs, decay=decay,
                 dropout_rate=dropout_rate, drop_path_rate=drop_path_rate, augment=augment,
                 image_size=image_size)
    recipe.update({k: v for k, v in given.items() if v is not None})
    _check_recipe(recipe)
    output_dir = output_dir or default_output_dir(data, "pretrain")
    # XLA off on a CPU: compiling the sort and gathers of the corruption cost
    # more than it saved in short runs here.
    auto = jit_compile in ("auto", None)
    jit = False if auto and not has_accelerator() else resolve_jit_compile(jit_compile)
    keras.utils.set_random_seed(seed)
    common = dict(image_size=recipe["image_size"], batch_size=recipe["batch_size"], seed=seed,
                  data_dir=data_dir, manual_dir=manual_dir)
    train_ds, info = load_dataset(data, "train", augment=recipe["augment"], **common)
    test_ds, _ = load_dataset(data, "test", augment=None, **common)
    train_images = train_ds.map(lambda images, labels: images)
    test_images = test_ds.map(lambda images, labels: images)
    steps = _steps_per_epoch(info, train_ds, recipe["batch_size"])
    if steps_per_execution is None:
        steps_per_execution = _divisor(steps)
    backbone = build_model(recipe["model"], info, image_size=recipe["image_size"],
                           dropout_rate=recipe["dropout_rate"],
                           drop_path_rate=recipe["drop_path_rate"], include_top=False,
                           **(model_fields or {}))
    mpp = MaskedPatchPrediction(backbone, target=target, corruption_rate=corruption_rate,
                                mask_rate=mask_rate, random_rate=random_rate, seed=seed)
    schedule = make_schedule(recipe["learning_rate"], recipe["epochs"], steps,
                             recipe["warmup_epochs"], recipe["decay"])
    optimizer = pretraining_optimizer(schedule, weight_decay=recipe["weight_decay"], model=mpp)
    mpp.compile(optimizer=optimizer, jit_compile=jit, steps_per_execution=steps_per_execution)

    os.makedirs(output_dir, exist_ok=True)
    checkpoint = ResumableCheckpoint(
        os.path.join(output_dir, "checkpoint"), os.path.join(output_dir, "history.csv")
    )
    done = checkpoint.restore(mpp)
    epochs = recipe["epochs"]
    if done:
        _log(f"Resuming from epoch {done} of {epochs} "
             f"(state in {os.path.join(output_dir, 'checkpoint')}).", verbose not in (0, False))
    callbacks = [checkpoint]
    if tensorboard and _tensorboard_installed():
        callbacks.append(keras.callbacks.TensorBoard(
            os.path.join(output_dir, "logs"), write_graph=False, update_freq="epoch"
        ))
    if done < epochs:
        mpp.fit(train_images, epochs=epochs, initial_epoch=done, callbacks=callbacks,
                verbose=verbose, shuffle=False)  # tf.data shuffles already
    model_path = os.path.join(output_dir, "model.keras")
    pretraining_path = os.path.join(output_dir, "pretraining.keras")
    if checkpoint.diverged is not None:
        epoch, batch = checkpoint.diverged
        good = checkpoint.restore(mpp)
        where = f"epoch {epoch}" + (f", batch {batch}" if batch else "")
        if good:
            _save_model(backbone, model_path)
            _save_model(mpp, pretraining_path)
            kept = f"the last good backbone (epoch {good}) is in {model_path}"
        else:
            kept = "no epoch had completed, so no model was saved"
        raise TrainingDiverged(
            f"the loss became NaN or infinite at {where}; pre-training stopped and "
            f"{kept}. Lower the learning rate or check the data."
        )
    _save_model(backbone, model_path)
    _save_model(mpp, pretraining_path)
    scores = mpp.evaluate(test_images, verbose=0, return_dict=True)
    metrics = {f"test_{k}": float(v) for k, v in scores.items()}
    metrics.update(
        objective=objective,
        target=target,
        seconds=round(time.time() - start, 2),
        epochs=int(epochs),
        resumed_from_epoch=int(done),
        backend=keras.backend.backend(),
        config=dict(recipe, data=str(data), seed=seed, target=target,
                    corruption_rate=corruption_rate, mask_rate=mask_rate,
                    random_rate=random_rate, jit_compile=jit,
                    steps_per_execution=steps_per_execution, steps_per_epoch=steps,
                    image_size=list(info.image_size) if recipe["image_size"] is None
                    else recipe["image_size"],
                    model_config=backbone.config.to_dict(),
                    parameters=int(backbone.count_params())),
    )
    tmp = os.path.join(output_dir, "metrics.json.tmp")
    with open(tmp, "w") as f:
        json.dump(metrics, f, indent=2, default=str)
    os.replace(tmp, os.path.join(output_dir, "metrics.json"))
    _log(f"Test masked-patch loss {metrics['test_loss']:.4f}; backbone in {model_path} "
         f"(keras-vit finetune --weights {model_path}).", verbose not in (0, False))
    return metrics
