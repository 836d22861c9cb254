"""The paper's two recipes (App. B) as optimizers and schedules. The recipes themselves
(`Recipe`, the presets in `RECIPES`, the defaults) are data in `keras_vit.recipes`, which
imports no Keras, and are re-exported here.

Pre-training: AdamW (b1 0.9, b2 0.999), weight decay on kernels only, linear
warmup then cosine or linear decay, global grad-norm clip 1, label smoothing,
dropout and stochastic depth. Fine-tuning: SGD with momentum 0.9, cosine
decay, grad-norm clip 1, no weight decay, at a higher resolution.
"""

import keras

from keras_vit.errors import ArgumentError
from keras_vit.recipes import (  # noqa: F401  (the presets, defined without Keras)
    Recipe,
    recipe_fields,
    pretrain_fields,
    check_fields,
    DIGITS_MODEL,
    DIGITS,
    SMALL_IMAGES,
    FROM_SCRATCH,
    FINETUNE,
    FINETUNE_FIELDS,
    IMPLIED_BEFORE_RECIPE,
    OPTIMIZERS,
    VTAB,
    MPP,
    RECIPES,
    default_recipe,
    DIGITS_RECIPE,
    SMALL_IMAGES_RECIPE,
    PRETRAIN_RECIPE,
    FINETUNE_RECIPE,
    PAPER_FINETUNE_BATCH,
    PAPER_FINETUNE_STEPS,
    SMALL_DATA_EPOCHS,
    SMALL_DATA_LEARNING_RATE,
    SMALL_IMAGE_SIDE,
    finetune_plan,
    get_recipe,
    small_images_model,
)
from keras_vit.training.schedules import WarmupDecay
from keras_vit.utils import check_positive_int


def make_optimizer(recipe, schedule, model=None):
    """The optimizer a recipe names, over `schedule` (a rate or a `WarmupDecay`):
    "adamw" is `pretraining_optimizer`, "sgd" `finetuning_optimizer`, each with the
    recipe's momentum (AdamW's beta_1), global_clipnorm, gradient_accumulation_steps
    and weight_decay (kernels only, with `model`).

    Args:
        recipe: a `Recipe` or a dict of its fields (as `Run.recipe`); a field it lacks
            takes `Recipe`'s default.
        schedule: the learning rate or schedule.
        model: the model to train, for the weight-decay exclusions. Defaults to None.
    """
    r = {**Recipe().to_dict(), **(recipe.to_dict() if isinstance(recipe, Recipe) else recipe)}
    common = dict(global_clipnorm=r["global_clipnorm"], model=model,
                  gradient_accumulation_steps=r["gradient_accumulation_steps"])
    if r["optimizer"] == "adamw":
        return pretraining_optimizer(schedule, weight_decay=r["weight_decay"],
                                     beta_1=r["momentum"], **common)
    if r["optimizer"] == "sgd":
        return finetuning_optimizer(schedule, momentum=r["momentum"],
                                    weight_decay=r["weight_decay"], **common)
    raise ArgumentError(
        f"Received an invalid value for argument `optimizer`, expected one of "
        f"{', '.join(OPTIMIZERS)}. Received: optimizer={r['optimizer']!r}")


def pretraining_optimizer(schedule, weight_decay=0.05, global_clipnorm=1.0,
                          gradient_accumulation_steps=None, model=None, beta_1=0.9):
    """AdamW(b1 0.9, b2 0.999) with global-norm clipping, as the paper pre-trains.

    With `model`, only kernels (Dense, patch embedding) are decayed: biases,
    LayerNorm scales, the class token and position embeddings are not (as
    big_vision does).
    """
    optimizer = keras.optimizers.AdamW(
        learning_rate=schedule,
        weight_decay=weight_decay,
        beta_1=beta_1,
        beta_2=0.999,
        global_clipnorm=global_clipnorm,
        gradient_accumulation_steps=_accumulation(gradient_accumulation_steps),
    )
    return _decay_kernels_only(optimizer, model)


def finetuning_optimizer(schedule, momentum=0.9, global_clipnorm=1.0,
                         gradient_accumulation_steps=None, weight_decay=None, model=None):
    """SGD with momentum 0.9, global-norm clip 1 and no weight decay (fine-tuning);
    a `weight_decay` is applied to kernels only where `model` is given, as AdamW's."""
    optimizer = keras.optimizers.SGD(
        learning_rate=schedule,
        momentum=momentum,
        global_clipnorm=global_clipnorm,
        weight_decay=weight_decay or None,
        gradient_accumulation_steps=_accumulation(gradient_accumulation_steps),
    )
    return _decay_kernels_only(optimizer, model)


def _decay_kernels_only(optimizer, model):
    if model is not None and optimizer.weight_decay:
        skip = sorted({v.name for v in model.trainable_variables if v.name != "kernel"})
        if skip:
            optimizer.exclude_from_weight_decay(var_names=skip)
    return optimizer


def schedule_steps(epochs, steps_per_epoch, warmup_epochs=0):
    """(total_steps, warmup_steps) of a schedule over `epochs` x `steps_per_epoch`
    optimizer calls, warmup rounded to whole steps and shorter than the run."""
    total = max(int(epochs * steps_per_epoch), 1)
    warmup = min(int(round(warmup_epochs * steps_per_epoch)), total - 1)
    return total, max(warmup, 0)


def make_schedule(learning_rate, epochs, steps_per_epoch, warmup_epochs=0, decay="cosine"):
    """A `WarmupDecay` over `epochs` x `steps_per_epoch` optimizer calls."""
    total, warmup = schedule_steps(epochs, steps_per_epoch, warmup_epochs)
    return WarmupDecay(learning_rate, total_steps=total, warmup_steps=warmup, decay=decay)


def _accumulation(steps):
    if steps is None or steps == 1:
        return None
    return check_positive_int("gradient_accumulation_steps", steps)
