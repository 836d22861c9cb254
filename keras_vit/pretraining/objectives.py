"""The pieces of masked patch prediction (paper section 4.6, App. B.1.2) as functions.

"We corrupt 50 % of patch embeddings by either replacing their embeddings with a
learnable [mask] embedding (80 %), a random other patch embedding (10 %) or just
keeping them as is (10 %). [...] we predict the 3-bit, mean color (i.e., 512
colors in total) of every corrupted patch using their respective patch
representations." The ablation also predicts a 4x4 downsized patch (16 x 512
outputs in parallel) and the full patch (L2).

Each function uses only `keras.ops` and `keras.random`, so it runs on every
backend and inside a compiled train step.
"""

import keras
from keras import ops

from keras_vit.errors import ArgumentError

TARGETS = ("mean_color", "downsampled", "pixels")
COLOR_BITS = 3  # 3-bit colour: 8 levels a channel
DOWNSAMPLED_GRID = 4  # "downsampled": a 4x4 grid of mean colours per patch

# Corruption kinds, as `corrupt_patches` labels each patch.
UNCORRUPTED, MASKED, REPLACED, KEPT = 0, 1, 2, 3


def num_color_classes(num_channels):
    """8 ** C: 512 for RGB, 8 for grayscale."""
    return (2**COLOR_BITS) ** num_channels


def quantize_colors(values):
    """Pixel values in [0, 255] (..., C) to one class in [0, 8 ** C).

    Each channel is cut into 8 equal bins (floor(v / 32)); the class reads the
    channels as base-8 digits, the first channel most significant:
    (r, g, b) -> 64 r + 8 g + b.
    """
    levels = 2**COLOR_BITS
    bins = ops.clip(ops.floor(ops.cast(values, "float32") * (levels / 256.0)), 0, levels - 1)
    channels = values.shape[-1]
    weights = ops.convert_to_tensor([float(levels ** (channels - 1 - c)) for c in range(channels)])
    return ops.cast(ops.sum(bins * weights, axis=-1), "int32")


def patch_targets(patches, target, patch_size, num_channels):
    """The prediction target of every patch.

    Args:
        patches: (B, N, P*P*C) patches flattened as (row, col, channel), as
            `keras_vit.layers.Patches` cuts them: pixel values in [0, 255] for
            "mean_color" and "downsampled", the model's normalised input for
            "pixels".
        target: "mean_color", "downsampled" or "pixels".
        patch_size: P.
        num_channels: C.

    Returns:
        "mean_color": int32 (B, N), the 3-bit mean colour class.
        "downsampled": int32 (B, N, 16), the 3-bit colour class of each cell of
            the patch averaged down to 4x4 (raster order).
        "pixels": float32 (B, N, P*P*C), the patches themselves.
    """
    p, c = patch_size, num_channels
    n = patches.shape[1]
    patches = ops.cast(patches, "float32")
    if target == "pixels":
        return patches
    if target == "mean_color":
        pixels = ops.reshape(patches, (-1, n, p * p, c))  # (B, N, P*P, C)
        return quantize_colors(ops.mean(pixels, axis=2))  # (B, N)
    if target == "downsampled":
        g, s = DOWNSAMPLED_GRID, p // DOWNSAMPLED_GRID
        cells = ops.reshape(patches, (-1, n, g, s, g, s, c))  # (B, N, 4, P/4, 4, P/4, C)
        means = ops.mean(cells, axis=(3, 5))  # (B, N, 4, 4, C)
        return quantize_colors(ops.reshape(means, (-1, n, g * g, c)))  # (B, N, 16)
    raise ArgumentError(
        "Received an invalid value for argument `target`, expected one of "
        f"{', '.join(repr(t) for t in TARGETS)}. Received: target={target!r}"
    )


def corrupt_patches(embeddings, mask_token, seed, corruption_rate=0.5, mask_rate=0.8,
                    random_rate=0.1):
    """Corrupts a fraction of patch embeddings the way the paper does.

    In every image exactly round(corruption_rate * N) patches (at least one)
    are chosen uniformly; each chosen patch is independently replaced by
    `mask_token` (probability `mask_rate`), by the embedding of a different
    patch drawn uniformly from the whole batch (`random_rate`), or kept as is
    (the rest). Kept patches still count as corrupted: the loss asks for them.

    Args:
        embeddings: (B, N, D) patch embeddings x_p E (before the class token
            and position embedding).
        mask_token: (1, 1, D) the learnable [mask] embedding.
        seed: a `keras.random.SeedGenerator` or an int (the same int gives the
            same corruption; its three random draws still differ).
        corruption_rate: fraction of patches corrupted. Defaults to 0.5.
        mask_rate: of those, the fraction masked. Defaults to 0.8.
        random_rate: of those, the fraction swapped for another patch.
            Defaults to 0.1.

    Returns:
        (corrupted embeddings (B, N, D), kinds int32 (B, N)) where kinds are
        UNCORRUPTED 0, MASKED 1, REPLACED 2, KEPT 3.
    """
    x = embeddings
    n, width = x.shape[1], x.shape[2]
    batch = ops.shape(x)[0]
    count = max(1, int(round(corruption_rate * n))) if corruption_rate > 0 else 0
    choose_seed, kind_seed, shift_seed = _three_seeds(seed)
    scores = keras.random.uniform((batch, n), seed=choose_seed)
    if count:
        kth = ops.sort(scores, axis=-1)[:, count - 1 : count]  # (B, 1)
        corrupted = ops.less_equal(scores, kth)  # exactly `count` a row
    else:
        corrupted = ops.zeros((batch, n), "bool")
    draw = keras.random.uniform((batch, n), seed=kind_seed)
    masked = ops.logical_and(corrupted, ops.less(draw, mask_rate))
    replaced = ops.logical_and(
        corrupted,
        ops.logical_and(ops.greater_equal(draw, mask_rate), ops.less(draw, mask_rate + random_rate)),
    )
    kept = ops.logical_and(corrupted, ops.logical_not(ops.logical_or(masked, replaced)))
    # A different patch of the batch: shift each flat index by 1 .. total - 1.
    total = batch * n
    span = ops.cast(total - 1, "float32")
    shift = ops.floor(keras.random.uniform((batch, n), seed=shift_seed) * span)
    shift = ops.cast(ops.minimum(shift, ops.maximum(span - 1.0, 0.0)), "int32") + 1
    index = ops.reshape(ops.arange(total, dtype="int32"), (batch, n))
    source = ops.reshape(ops.mod(index + shift, total), (-1,))
    others = ops.reshape(ops.take(ops.reshape(x, (-1, width)), source, axis=0), ops.shape(x))
    mask_token = ops.cast(mask_token, x.dtype)
    out = ops.where(masked[..., None], mask_token, ops.where(replaced[..., None], others, x))
    kinds = (ops.cast(masked, "int32") * MASKED + ops.cast(replaced, "int32") * REPLACED
             + ops.cast(kept, "int32") * KEPT)
    return out, kinds


def _three_seeds(seed):
    """Seeds for corrupt_patches' three draws (which patches, what kind, which other).

    A SeedGenerator advances by itself between draws. A stateless int would give
    the three draws the same numbers (every chosen patch has a low score, hence a
    low kind draw: all masked), so each draw gets its own int derived from it,
    mixed so that nearby user seeds (1, 2, ...) do not share streams.
    """
    if not isinstance(seed, int):
        return seed, seed, seed
    return tuple((seed * 0x9E3779B1 + k * 0x85EBCA77) % 2**31 for k in (1, 2, 3))


def masked_patch_loss(targets, predictions, corrupted, target):
    """The loss over corrupted patches only (mean over them).

    Args:
        targets: from `patch_targets`.
        predictions: logits (B, N, 8 ** C) for "mean_color", (B, N, 16, 8 ** C)
            for "downsampled"; (B, N, P*P*C) values for "pixels".
        corrupted: bool (B, N), the patches the loss is taken on.
        target: "mean_color", "downsampled" or "pixels".

    Returns:
        A float32 scalar: the mean cross-entropy (the downsampled cells
        averaged within a patch) or the mean squared error per patch (L2,
        averaged over the patch's values), over corrupted patches. Patches not
        corrupted contribute nothing, not even to the gradient.
    """
    predictions = ops.cast(predictions, "float32")
    if target == "pixels":
        per_patch = ops.mean(ops.square(predictions - ops.cast(targets, "float32")), axis=-1)
    else:
        per_patch = ops.sparse_categorical_crossentropy(targets, predictions, from_logits=True)
        if target == "downsampled":
            per_patch = ops.mean(per_patch, axis=-1)  # (B, N, 16) -> (B, N)
    per_patch = ops.where(corrupted, per_patch, ops.zeros_like(per_patch))  # (B, N)
    count = ops.sum(ops.cast(corrupted, "float32"))
    return ops.sum(per_patch) / ops.maximum(count, 1.0)
