"""The paper's two recipes (App. B) as optimizers, plus the digits defaults.

Pre-training: AdamW (b1 0.9, b2 0.999), weight decay on kernels only, linear
warmup then cosine or linear decay, global grad-norm clip 1, label smoothing,
dropout and stochastic depth. Fine-tuning: SGD with momentum 0.9, cosine
decay, grad-norm clip 1, no weight decay, at a higher resolution.
"""

import keras

from keras_vit.training.schedules import WarmupDecay
from keras_vit.errors import ArgumentError

# `keras-vit train` with no arguments: a 4-layer, width-64 ViT on the 8x8
# digits upscaled (bilinear) to 16x16 and cut into 4x4 patches (16 tokens +
# class token). Upscaling makes neighbouring patches share pixels, an overlap
# that measured 96.4 % -> 98.1 % against 2x2 patches of the 8x8 images at the
# same cost. Chosen by measurement on a 2-core CPU (README, "Training on digits").
DIGITS_MODEL = dict(
    patch_size=4, hidden_size=64, num_layers=4, num_heads=4, mlp_dim=128,
)
DIGITS_RECIPE = dict(
    model="digits", image_size=16, epochs=60, batch_size=32, learning_rate=2e-3,
    weight_decay=0.05,
    warmup_epochs=3, decay="cosine", label_smoothing=0.1, dropout_rate=0.0,
    drop_path_rate=0.0, augment="auto",
)
# `keras-vit train --data FOLDER` of small images (<= 64 px) with no --model or
# --image-size: the digits model at the images' own size, cut into a grid of about
# 7x7 to 8x8 patches (`small_images_model`). Measured in the README ("Your own images").
SMALL_IMAGES_RECIPE = dict(
    model="small", image_size=None, epochs=30, batch_size=64, learning_rate=2e-3,
    weight_decay=0.05, warmup_epochs=3, decay="cosine", label_smoothing=0.1,
    dropout_rate=0.0, drop_path_rate=0.0, augment="translate",
)
# From scratch on anything else: the paper's optimiser at a small-data scale.
PRETRAIN_RECIPE = dict(
    model="Ti/16", image_size=None, epochs=100, batch_size=128, learning_rate=1e-3, weight_decay=0.05,
    warmup_epochs=5, decay="cosine", label_smoothing=0.1, dropout_rate=0.0,
    drop_path_rate=0.1, augment="auto",
)
# Paper App. B.1.1: SGD momentum 0.9, batch 512, cosine decay, no weight decay,
# clip 1; the learning rate is swept over {0.001, 0.003, 0.01, 0.03}.
FINETUNE_RECIPE = dict(
    epochs=10, batch_size=512, learning_rate=0.01, warmup_epochs=1, decay="cosine",
    label_smoothing=0.0, augment="auto",
)


def small_images_model(image_size):
    """`DIGITS_MODEL` with the patch that cuts `image_size` into about 7-8 patches a side
    (the largest patch dividing both sides that is at most 1/7 of the shorter one)."""
    height, width = (image_size, image_size) if isinstance(image_size, int) else image_size
    most = max(1, min(height, width) // 7)
    patch = max(p for p in range(1, most + 1) if height % p == 0 and width % p == 0)
    return dict(DIGITS_MODEL, patch_size=patch)


def pretraining_optimizer(schedule, weight_decay=0.05, global_clipnorm=1.0,
                          gradient_accumulation_steps=None, model=None):
    """AdamW(b1 0.9, b2 0.999) with global-norm clipping, as the paper pre-trains.

    With `model`, only kernels (Dense, patch embedding) are decayed: biases,
    LayerNorm scales, the class token and position embeddings are not (as
    big_vision does).
    """
    optimizer = keras.optimizers.AdamW(
        learning_rate=schedule,
        weight_decay=weight_decay,
        beta_1=0.9,
        beta_2=0.999,
        global_clipnorm=global_clipnorm,
        gradient_accumulation_steps=_accumulation(gradient_accumulation_steps),
    )
    if model is not None and weight_decay:
        skip = sorted({v.name for v in model.trainable_variables if v.name != "kernel"})
        if skip:
            optimizer.exclude_from_weight_decay(var_names=skip)
    return optimizer


def finetuning_optimizer(schedule, momentum=0.9, global_clipnorm=1.0,
                         gradient_accumulation_steps=None):
    """SGD with momentum 0.9, global-norm clip 1 and no weight decay (fine-tuning)."""
    return keras.optimizers.SGD(
        learning_rate=schedule,
        momentum=momentum,
        global_clipnorm=global_clipnorm,
        gradient_accumulation_steps=_accumulation(gradient_accumulation_steps),
    )


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
    if isinstance(steps, bool) or not isinstance(steps, int) or steps < 1:
        raise ArgumentError(
            "Received an invalid value for argument `gradient_accumulation_steps`, "
            f"expected a positive integer. Received: gradient_accumulation_steps={steps!r}"
        )
    return steps
