"""Fine-tuning surgery: a new zero head, and position embeddings at a new resolution.

The paper fine-tunes at a higher resolution than it pre-trains (section 3.2):
the patch size stays, so the sequence grows, and the learned position
embeddings are interpolated in 2-D to the new grid. The original code does it
with `scipy.ndimage.zoom(order=1)` (vit_jax `checkpoint.py`); timm and HF use
bicubic `torch.nn.functional.interpolate`. Each is a separable linear map, so
each is one matrix per axis (`interpolation_matrix`), in NumPy.
"""

import numbers

import keras
import numpy as np

from keras_vit.errors import ArgumentError
from keras_vit.models import names as parts
from keras_vit.models.config import RESAMPLE_METHODS
from keras_vit.models.vit import VisionTransformer
from keras_vit.utils import check_choice, check_positive_int, to_hw



def replace_head(model, num_classes, keep_pre_logits=False):
    """A copy of `model` with a new zero-initialised Dense(num_classes) head.

    The paper's fine-tuning recipe (section 3.2): drop the pre-trained head
    (and the pre-logits layer, if any) and attach a D x K Dense with zero
    kernel and bias. Every other weight is copied bit for bit.

    Args:
        model: a `keras_vit.VisionTransformer`.
        num_classes: int, the new number of outputs K.
        keep_pre_logits: bool, keep a pre-logits layer (Dense + tanh of the
            i21k checkpoints) instead of dropping it as the original code's
            fine-tuning does. Defaults to False.

    Returns:
        A new `VisionTransformer` (use the returned model; Keras functional
        graphs cannot swap a layer in place).

    Example:

    >>> model = keras_vit.replace_head(model, num_classes=5)
    """
    num_classes = check_positive_int("num_classes", num_classes)
    config = _config_of(model)
    keep = keep_pre_logits and config.include_top and config.representation_size
    config = config.replace(
        num_classes=num_classes,
        include_top=True,
        head_bias=True,  # a classifier, even in place of CLIP's bias-free projection
        pooling=config.pooling or ("token" if config.class_token else "gap"),
        representation_size=config.representation_size if keep else None,
        class_names=None,  # a new head's classes have no names yet
    )
    new = _rebuild(model, config)
    heads = (parts.HEAD, parts.HEAD_DIST)  # DeiT's distillation head gets a new zero one too
    transfer_weights(model, new, skip=heads if keep else heads + (parts.PRE_LOGITS,))
    return new


def resample_position_embeddings(
    posemb, new_grid, num_prefix_tokens=1, method="linear", old_grid=None, antialias=False
):
    """Interpolates a (1, prefix + gh*gw, D) embedding to a new (nh, nw) grid.

    The prefix tokens (the class token) are kept; the rest is reshaped to its
    grid, interpolated in 2-D and flattened back in raster order.

    - "linear": `scipy.ndimage.zoom(grid, (nh/gh, nw/gw, 1), order=1)`, exactly
      the original code's `load_pretrained` (vit_jax `checkpoint.py`).
    - "bicubic", antialias=False: torch `F.interpolate(mode="bicubic",
      align_corners=False)`, HF's `interpolate_pos_encoding`.
    - "bicubic", antialias=True: timm's `resample_abs_pos_embed` as timm runs
      it whenever it changes a model's size (torch's antialiased bicubic).

    Args:
        posemb: array (1, num_prefix_tokens + gh*gw, D).
        new_grid: int or (nh, nw), the new grid.
        num_prefix_tokens: tokens before the grid. Defaults to 1.
        method: "linear" or "bicubic". Defaults to "linear".
        old_grid: (gh, gw) of `posemb`; None means square. Defaults to None.
        antialias: bool, torch's antialiased bicubic (timm's choice).
            Defaults to False.

    Returns:
        float32 array (1, num_prefix_tokens + nh*nw, D) (float64 input stays
        float64).

    Example:

    >>> pe = np.random.randn(1, 1 + 14 * 14, 768)
    >>> resample_position_embeddings(pe, (24, 24)).shape
    (1, 577, 768)
    """
    check_choice("method", method, RESAMPLE_METHODS)
    interpolation_matrix(1, 1, method, antialias)  # checks the pair
    posemb = np.asarray(posemb)
    if posemb.ndim != 3 or posemb.shape[0] != 1:
        raise ArgumentError(
            "Received an invalid value for argument `posemb`, expected an array "
            f"of shape (1, tokens, D). Received: posemb.shape={posemb.shape}"
        )
    if (isinstance(num_prefix_tokens, bool) or not isinstance(num_prefix_tokens, numbers.Integral)
            or num_prefix_tokens < 0):
        raise ArgumentError(
            "Received an invalid value for argument `num_prefix_tokens`, expected "
            f"an int >= 0. Received: num_prefix_tokens={num_prefix_tokens!r}"
        )
    nh, nw = to_hw("new_grid", new_grid)
    n = posemb.shape[1] - num_prefix_tokens
    if old_grid is None:
        side = int(round(np.sqrt(max(n, 0))))
        if side * side != n:
            raise ArgumentError(
                f"Cannot infer the grid of a position embedding with {n} patch "
                f"tokens (not a square); pass `old_grid=(gh, gw)`. Received: "
                f"posemb.shape={posemb.shape}, num_prefix_tokens={num_prefix_tokens}"
            )
        old_grid = (side, side)
    gh, gw = to_hw("old_grid", old_grid)
    if gh * gw != n:
        raise ArgumentError(
            f"Received an invalid value for argument `old_grid`: {gh}x{gw} = "
            f"{gh * gw} patches, but the embedding has {n} after "
            f"{num_prefix_tokens} prefix token(s). Received: old_grid={old_grid}, "
            f"posemb.shape={posemb.shape}"
        )
    dtype = posemb.dtype if posemb.dtype == np.float64 else np.float32
    prefix = posemb[:, :num_prefix_tokens].astype(dtype)
    grid = posemb[0, num_prefix_tokens:].reshape(gh, gw, -1)  # (gh, gw, D)
    if (gh, gw) == (nh, nw):
        new = grid.astype(dtype)
    else:
        rows = interpolation_matrix(gh, nh, method, antialias)  # (nh, gh)
        cols = interpolation_matrix(gw, nw, method, antialias)  # (nw, gw)
        # A_h @ grid @ A_w^T per channel, summed in float64.
        new = np.einsum("ih,jw,hwd->ijd", rows, cols, grid.astype(np.float64))
        new = new.astype(dtype)
    new = new.reshape(1, nh * nw, -1)  # (1, nh*nw, D)
    return np.concatenate([prefix, new], axis=1)


def interpolation_matrix(in_size, out_size, method="linear", antialias=False):
    """The (out_size, in_size) weights of a 1-D resize, as a matrix.

    Every resize here is separable and linear in its input, so a 2-D resize of
    a (h, w) grid is `A_h @ grid @ A_w.T` with `A_h = interpolation_matrix(h,
    new_h, ...)` and `A_w = interpolation_matrix(w, new_w, ...)`. The matrices
    reproduce, to float64 precision:

    - "linear": `scipy.ndimage.zoom(..., order=1)`, the original code's resize
      (vit_jax `checkpoint.py`): output i samples input x = i * (in-1)/(out-1),
      corners aligned.
    - "bicubic", antialias=False: torch `F.interpolate(mode="bicubic",
      align_corners=False)`: x = (i + 0.5) * in/out - 0.5, Keys' cubic with
      a = -0.75 on 4 neighbours, indices clamped to the border. HF's
      `interpolate_pos_encoding`.
    - "bicubic", antialias=True: torch's antialiased bicubic (timm's
      `resample_abs_pos_embed`): Keys' cubic with a = -0.5, its support
      stretched by in/out when down-sampling, the weights of each output
      normalised to sum to 1 (also when up-sampling, where it still differs
      from the plain kernel).

    Args:
        in_size: int, the input length.
        out_size: int, the output length.
        method: "linear" or "bicubic". Defaults to "linear".
        antialias: bool, torch's antialiased kernel ("bicubic" only).
            Defaults to False.

    Returns:
        float64 array (out_size, in_size).

    Example:

    >>> A = interpolation_matrix(14, 24, "bicubic", antialias=True)
    >>> A.shape
    (24, 14)
    """
    in_size = check_positive_int("in_size", in_size)
    out_size = check_positive_int("out_size", out_size)
    check_choice("method", method, RESAMPLE_METHODS)
    if not isinstance(antialias, bool):
        raise ArgumentError(
            "Received an invalid value for argument `antialias`, expected a bool. "
            f"Received: antialias={antialias!r}"
        )
    if method == "linear":
        if antialias:
            raise ArgumentError(
                "Received an invalid value for argument `antialias`: the "
                "'linear' resize is scipy.ndimage.zoom(order=1), which has no "
                "antialiased form. Received: method='linear', antialias=True"
            )
        return _linear_matrix(in_size, out_size)
    if antialias:
        return _bicubic_aa_matrix(in_size, out_size)
    return _bicubic_matrix(in_size, out_size)


def _linear_matrix(in_size, out_size):
    """(out, in) weights of `scipy.ndimage.zoom(order=1)` (grid_mode=False).

    zoom maps output i to input x = i * (in-1)/(out-1) (x = 0 when out = 1)
    and interpolates linearly between floor(x) and floor(x)+1.
    """
    step = (in_size - 1) / (out_size - 1) if out_size > 1 else 1.0
    out = np.zeros((out_size, in_size), np.float64)
    for i in range(out_size):
        x = min(i * step, in_size - 1)
        x0 = min(int(np.floor(x)), in_size - 1)
        t = x - x0
        out[i, x0] += 1.0 - t
        if t > 0:
            out[i, x0 + 1] += t
    return out


def _bicubic_matrix(in_size, out_size, a=-0.75):
    """(out, in) weights of torch's bicubic upsample (align_corners=False).

    torch's `upsample_bicubic2d`: source x = (i + 0.5) * in/out - 0.5, Keys'
    cubic convolution with a = -0.75 on the 4 neighbours floor(x)-1 .. +2,
    indices clamped to the border. Without antialiasing the same formula
    serves down-sampling.
    """
    scale = in_size / out_size
    out = np.zeros((out_size, in_size), np.float64)
    for i in range(out_size):
        x = (i + 0.5) * scale - 0.5
        x0 = int(np.floor(x))
        t = x - x0
        weights = (
            ((a * (t + 1) - 5 * a) * (t + 1) + 8 * a) * (t + 1) - 4 * a,
            ((a + 2) * t - (a + 3)) * t * t + 1,
            ((a + 2) * (1 - t) - (a + 3)) * (1 - t) * (1 - t) + 1,
            ((a * (2 - t) - 5 * a) * (2 - t) + 8 * a) * (2 - t) - 4 * a,
        )
        for k, w in zip(range(-1, 3), weights):
            out[i, min(max(x0 + k, 0), in_size - 1)] += w
    return out


def _keys_cubic(x, a):
    x = abs(x)
    if x < 1.0:
        return ((a + 2) * x - (a + 3)) * x * x + 1
    if x < 2.0:
        return ((a * x - 5 * a) * x + 8 * a) * x - 4 * a
    return 0.0


def _bicubic_aa_matrix(in_size, out_size, a=-0.5):
    """(out, in) weights of torch's antialiased bicubic (align_corners=False).

    torch's `_compute_indices_min_size_weights_aa` (UpSampleKernel.cpp):
    scale = in/out, support = 2 * max(scale, 1), centre = (i + 0.5) * scale;
    inputs j in [int(centre - support + 0.5), int(centre + support + 0.5))
    (clipped to the input) weigh cubic((j - centre + 0.5) / max(scale, 1))
    with Keys' a = -0.5, normalised to sum 1. No border clamping: weights
    outside the input are dropped before normalising.
    """
    scale = in_size / out_size
    support = 2.0 * scale if scale >= 1.0 else 2.0
    invscale = 1.0 / scale if scale >= 1.0 else 1.0
    max_size = int(np.ceil(support)) * 2 + 1
    out = np.zeros((out_size, in_size), np.float64)
    for i in range(out_size):
        center = scale * (i + 0.5)
        xmin = max(int(center - support + 0.5), 0)  # int() truncates, like C++
        xsize = min(int(center + support + 0.5), in_size) - xmin
        xsize = min(max(xsize, 0), max_size)
        w = np.array([_keys_cubic((j + xmin - center + 0.5) * invscale, a)
                      for j in range(xsize)])
        total = w.sum()
        if total != 0.0:
            w = w / total
        out[i, xmin:xmin + xsize] = w
    return out


def resize_position_embeddings(model, image_size, method=None, antialias=None):
    """A copy of `model` for a new image size, position embeddings resampled.

    The patch size stays; the grid grows or shrinks (height and width each),
    and every weight is carried over: learned embeddings are interpolated
    with `resample_position_embeddings` ("learned_2d" row and column tables
    each in 1-D), fixed sine-cosine ones are recomputed for the new grid.

    Args:
        model: a `keras_vit.VisionTransformer`.
        image_size: int or (height, width), the new input size in pixels.
        method: None, "linear" (the original code's) or "bicubic" (timm's
            and HF's). None takes the model's `config.resample_method`, the
            way its weights' source resizes (a converted model records it;
            "linear" for a model built here). Defaults to None.
        antialias: None or bool, torch's antialiased bicubic (timm's choice).
            None takes `config.resample_antialias` when `method` is None or
            the recorded one, else False. Defaults to None.

    Returns:
        A new `VisionTransformer` taking (B, height, width, C) images.

    Example:

    >>> model = keras_vit.resize_position_embeddings(model, image_size=384)
    """
    old = _config_of(model)
    if method is None:
        method = old.resample_method
    if antialias is None:
        antialias = old.resample_antialias and method == old.resample_method
    check_choice("method", method, RESAMPLE_METHODS)
    interpolation_matrix(1, 1, method, antialias)  # checks the pair
    config = old.replace(image_size=image_size)
    if config.position_embedding == "relative" and config.grid_size != old.grid_size:
        raise ArgumentError(
            "resize_position_embeddings does not resample 'relative' position "
            "biases (their table size depends on the grid). Received: "
            f"position_embedding='relative', image_size={image_size!r}"
        )
    new = _rebuild(model, config)
    transfer_weights(
        model, new, posemb_grids=(old.grid_size, config.grid_size), method=method,
        antialias=antialias,
    )
    return new


def _config_of(model):
    config = getattr(model, "config", None)
    if config is None or not hasattr(config, "replace"):
        raise ArgumentError(
            "Received an invalid value for argument `model`, expected a "
            f"keras_vit.VisionTransformer. Received: model={type(model).__name__}"
        )
    return config


def _rebuild(model, config):
    policy = model.get_config().get("dtype")  # the policy it was built with
    if isinstance(policy, dict):
        policy = keras.dtype_policies.deserialize(policy)
    return VisionTransformer(config, dtype=policy, name=model.name)


def transfer_weights(source, target, skip=(), posemb_grids=None, method="linear",
                     antialias=False):
    """Copies every weight of `source` into `target`, matched by variable path.

    Layers named in `skip` are left as `target` built them. Position
    embeddings are resampled from `posemb_grids[0]` to `posemb_grids[1]`
    with `method` and `antialias` (see `interpolation_matrix`).
    Any other difference in names or shapes is an error.
    """
    src = {v.path: v for v in source.weights if v.path.split("/")[0] not in skip}
    dst = {v.path: v for v in target.weights if v.path.split("/")[0] not in skip}
    if set(src) != set(dst):
        raise ValueError(
            "The models' weights differ beyond the resized or replaced layers: "
            f"only in the source {sorted(set(src) - set(dst))}, only in the "
            f"target {sorted(set(dst) - set(src))}."
        )
    prefix = _config_of(target).num_prefix_tokens
    for path, variable in dst.items():
        value = np.asarray(src[path].numpy() if hasattr(src[path], "numpy") else src[path])
        leaf = path.split("/")[-1]
        if tuple(value.shape) != tuple(variable.shape) and posemb_grids is not None:
            (gh, gw), (nh, nw) = posemb_grids
            if leaf == "embeddings":
                value = resample_position_embeddings(
                    value, (nh, nw), prefix, method, old_grid=(gh, gw), antialias=antialias
                )
            elif leaf in ("row_embeddings", "column_embeddings"):
                old_n, new_n = (gh, nh) if leaf == "row_embeddings" else (gw, nw)
                value = resample_position_embeddings(
                    value[None], (new_n, 1), 0, method, old_grid=(old_n, 1),
                    antialias=antialias,
                )[0]
        if tuple(value.shape) != tuple(variable.shape):
            raise ValueError(
                f"Weight `{path}` has shape {tuple(value.shape)} in the source "
                f"model and {tuple(variable.shape)} in the target."
            )
        variable.assign(value)
