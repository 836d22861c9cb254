"""Attention maps, attention rollout and mean attention distance (paper section 4.5, fig. 6-7).

Everything here runs the model's own layers, looked up by name: a sub-model
(sharing the weights) gives each encoder block its input, and each block is
then called once more with `return_attention_scores=True`, the layers'
explicit path. Nothing is rebuilt or reloaded, and the model's default call
keeps its fused attention kernel.
"""

import keras
import numpy as np

from keras_vit.errors import ArgumentError
from keras_vit.models.feature_extractor import vit_config_and_blocks
from keras_vit.utils import check_positive_int

HEAD_FUSIONS = ("mean", "max", "min")


def attention_maps(model, images, batch_size=32):
    """The attention weights of every head of every encoder block.

    Args:
        model: a `keras_vit.VisionTransformer`.
        images: (B, H, W, C) or one (H, W, C) image, in the units the model
            takes (pixels in [0, 255] for a model with preprocessing).
        batch_size: images per forward pass. Defaults to 32.

    Returns:
        float32 array (layers, B, heads, T, T): row q of [l, b, h] is where
        query token q of head h in block l attends (a distribution over the
        T = num_prefix_tokens + gh*gw keys; the prefix tokens come first).

    Example:

    >>> maps = keras_vit.analysis.attention_maps(model, images)
    >>> maps.sum(-1)  # all ones
    """
    return np.concatenate(list(_attention_batches(model, images, batch_size)), axis=1)


def attention_rollout(model, images, head_fusion="mean", discard_ratio=0.0, batch_size=32):
    """Attention rollout of Abnar & Zuidema (2020): what each patch contributes.

    Per block, the heads are fused (mean, max or min), the lowest
    `discard_ratio` of the fused weights are set to zero (the class token's
    own weight is kept; as in jacobgil's vit-explain), the residual
    connection is modelled as 0.5 A + 0.5 I, and the rows are renormalised;
    the blocks' matrices are multiplied, last block leftmost. The result is
    the class token's row over the patches or, for a model that pools by
    GAP (or has no class token), the mean of the patch rows over the patches.

    Args:
        model: a `keras_vit.VisionTransformer`.
        images: (B, H, W, C) or one (H, W, C) image.
        head_fusion: "mean", "max" or "min". Defaults to "mean".
        discard_ratio: float in [0, 1), the fraction of each block's fused
            weights to drop. Defaults to 0.0.
        batch_size: images per forward pass. Defaults to 32.

    Returns:
        float64 array (B, gh, gw); not rescaled (the class token's row also
        gives weight to the prefix tokens, so a row sums to at most 1).
    """
    if head_fusion not in HEAD_FUSIONS:
        raise ArgumentError(
            "Received an invalid value for argument `head_fusion`, expected one of "
            f"{', '.join(repr(h) for h in HEAD_FUSIONS)}. Received: head_fusion={head_fusion!r}"
        )
    if not 0.0 <= discard_ratio < 1.0:
        raise ArgumentError(
            "Received an invalid value for argument `discard_ratio`, expected a "
            f"float in [0, 1). Received: discard_ratio={discard_ratio!r}"
        )
    config, _ = vit_config_and_blocks(model)
    p, (gh, gw) = config.num_prefix_tokens, config.grid_size
    out = []
    for maps in _attention_batches(model, images, batch_size):  # (L, b, heads, T, T)
        fused = getattr(np, head_fusion)(maps.astype(np.float64), axis=2)  # (L, b, T, T)
        tokens = fused.shape[-1]
        eye = np.eye(tokens)
        rollout = np.broadcast_to(eye, fused.shape[1:]).copy()  # (b, T, T)
        for a in fused:  # (b, T, T), first block first
            if discard_ratio > 0:
                a = _discard_lowest(a, discard_ratio)
            a = 0.5 * a + 0.5 * eye
            a = a / a.sum(axis=-1, keepdims=True)
            rollout = a @ rollout
        if config.class_token and config.pooling != "gap":
            row = rollout[:, 0, p:]  # (b, N): the class token's row
        else:
            row = rollout[:, p:, p:].mean(axis=1)  # (b, N): mean over patch rows
        out.append(row.reshape(-1, gh, gw))
    return np.concatenate(out)


def mean_attention_distance(model, images, batch_size=32):
    """Mean attention distance per block and head, in input pixels (paper fig. 7 right).

    For each patch query, the distance between its patch centre and each
    key patch's centre, weighted by the attention it gives that key, then
    averaged over queries and images: the "receptive field size" of a head.
    Only patch-to-patch attention counts: the weights a patch gives prefix
    tokens (which have no position) are dropped and the rest renormalised.
    A patch covers `patch_size * stem_stride` pixels, so for a hybrid a
    1x1 patch of a stride-16 stem is 16 pixels wide.

    Args:
        model: a `keras_vit.VisionTransformer`.
        images: (B, H, W, C) or one (H, W, C) image.
        batch_size: images per forward pass. Defaults to 32.

    Returns:
        float64 array (layers, heads) in pixels.
    """
    config, _ = vit_config_and_blocks(model)
    p = config.num_prefix_tokens
    distance = patch_distances(config.grid_size, config.patch_size * config.stem_stride)
    total, count = 0.0, 0
    for maps in _attention_batches(model, images, batch_size):  # (L, b, heads, T, T)
        w = maps[..., p:, p:].astype(np.float64)  # (L, b, heads, N, N)
        w = w / w.sum(axis=-1, keepdims=True)
        per_query = (w * distance).sum(axis=-1)  # (L, b, heads, N)
        total = total + per_query.sum(axis=(1, 3))  # (L, heads)
        count += per_query.shape[1] * per_query.shape[3]
    return total / count


def patch_distances(grid_size, patch_pixels):
    """(N, N) Euclidean distances in pixels between the centres of a grid's patches."""
    gh, gw = grid_size
    centres = np.stack(np.mgrid[:gh, :gw], axis=-1).reshape(-1, 2) * float(patch_pixels)
    return np.linalg.norm(centres[:, None, :] - centres[None, :, :], axis=-1)


def _discard_lowest(a, ratio):
    """Zeroes the lowest `ratio` of each (T, T) matrix's entries, entry (0, 0) kept."""
    b, t, _ = a.shape
    flat = a.reshape(b, t * t).copy()
    k = int(t * t * ratio)
    order = np.argsort(flat, axis=-1, kind="stable")[:, :k]  # (b, k)
    for i in range(b):
        drop = order[i][order[i] != 0]
        flat[i, drop] = 0.0
    return flat.reshape(b, t, t)


def _attention_batches(model, images, batch_size):
    """Yields the (layers, b, heads, T, T) attention weights batch by batch."""
    config, blocks = vit_config_and_blocks(model)
    batch_size = check_positive_int("batch_size", batch_size)
    images = _check_images(model, images)
    block_inputs = keras.Model(model.input, [block.input for block in blocks])
    for start in range(0, len(images), batch_size):
        inputs = block_inputs(images[start : start + batch_size], training=False)
        if not isinstance(inputs, (list, tuple)):
            inputs = [inputs]
        maps = []
        for block, x in zip(blocks, inputs):
            _, weights = block(x, training=False, return_attention_scores=True)
            maps.append(keras.ops.convert_to_numpy(keras.ops.cast(weights, "float32")))
        yield np.stack(maps)  # (L, b, heads, T, T)


def _check_images(model, images):
    images = np.asarray(keras.ops.convert_to_numpy(images), dtype=np.float32)
    expected = tuple(model.inputs[0].shape[1:])
    if images.ndim == len(expected):
        images = images[None]
    if images.ndim != len(expected) + 1 or any(
        e is not None and e != g for e, g in zip(expected, images.shape[1:])
    ):
        raise ArgumentError(
            "Received an invalid value for argument `images`, expected an array "
            f"(B, {', '.join(str(e) for e in expected)}) or one image "
            f"({', '.join(str(e) for e in expected)}) for this model. "
            f"Received: images.shape={images.shape}"
        )
    if len(images) == 0:
        raise ArgumentError("Received an invalid value for argument `images`: no images.")
    return images
