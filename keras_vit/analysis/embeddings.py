"""What the embeddings learn: position-embedding similarity and the patch-embedding
filters' principal components (paper fig. 7 left and centre, App. D.4)."""

import keras
import numpy as np

from keras_vit.errors import ArgumentError
from keras_vit.models import names as parts
from keras_vit.models.feature_extractor import vit_config_and_blocks
from keras_vit.utils import check_positive_int


def position_embedding_similarity(model):
    """Cosine similarity between the position embeddings of every pair of patches.

    Uses the absolute embedding the model adds ("learned" 1-D, "learned_2d"
    or the fixed "sincos_2d"); with `position_embedding_placement=
    "every_layer"` the first block's. The `config.num_prefix_tokens` prefix
    embeddings are left out.

    Args:
        model: a `keras_vit.VisionTransformer`.

    Returns:
        float64 array (gh, gw, gh, gw): [i, j] is the similarity map of patch
        (i, j) to every patch (a unit diagonal).

    Raises:
        ValueError: the model has no absolute position embedding
            ("relative" or "none").
    """
    config, _ = vit_config_and_blocks(model)
    if config.position_embedding in ("relative", "none"):
        raise ArgumentError(
            "Received an invalid value for argument `model`: it has no absolute "
            "position embedding to compare (position_embedding="
            f"{config.position_embedding!r}); expected 'learned', 'learned_2d' or 'sincos_2d'."
        )
    layer = {
        "stem": lambda: model.get_layer(parts.PATCH_ENCODER).position_embedding_layer,
        "every_layer": lambda: model.get_layer(parts.position_embedding_name(0)),
        "every_layer_shared": lambda: model.get_layer(parts.SHARED_POSITION_EMBEDDING),
    }[config.position_embedding_placement]()
    table = keras.ops.convert_to_numpy(layer.embedding())[0].astype(np.float64)  # (T, D)
    gh, gw = config.grid_size
    p = config.num_prefix_tokens
    if table.shape[0] != p + gh * gw:
        raise ValueError(
            f"The position embedding of {model.name!r} has {table.shape[0]} rows; "
            f"expected num_prefix_tokens + gh*gw = {p} + {gh}*{gw} = {p + gh * gw}."
        )
    table = table[p:]  # (N, D)
    unit = table / np.linalg.norm(table, axis=-1, keepdims=True)
    return (unit @ unit.T).reshape(gh, gw, gh, gw)


def embedding_filters(model, n=28):
    """The first principal components of the patch-embedding filters (fig. 7 left).

    Each of the D columns of the patch embedding E (P*P*C, D) is a filter
    (P, P, C), flattened in Conv2D kernel order. The filters are centred
    (their mean filter subtracted) and decomposed with an SVD; the right
    singular vectors, largest singular value first, are the components. Each
    is signed so that its largest-magnitude entry is positive (an SVD's
    signs are arbitrary). For a hybrid, P is 1 and C the stem's channels.

    Args:
        model: a `keras_vit.VisionTransformer`.
        n: how many components, at most min(D, P*P*C). Defaults to 28 (as
            the paper's figure).

    Returns:
        float64 array (n, P, P, C).
    """
    config, _ = vit_config_and_blocks(model)
    n = check_positive_int("n", n)
    kernel = keras.ops.convert_to_numpy(model.get_layer(parts.PATCH_EMBEDDING).kernel)
    filters = kernel.astype(np.float64).T  # (D, P*P*C)
    limit = min(filters.shape)
    if n > limit:
        raise ArgumentError(
            f"Received an invalid value for argument `n`, expected at most {limit} "
            f"(the filters are {filters.shape[0]} vectors of {filters.shape[1]} values). "
            f"Received: n={n}"
        )
    centred = filters - filters.mean(axis=0, keepdims=True)
    _, _, vt = np.linalg.svd(centred, full_matrices=False)
    components = vt[:n]  # (n, P*P*C)
    peak = np.abs(components).argmax(axis=-1)
    components = components * np.sign(components[np.arange(n), peak])[:, None]
    size = config.patch_size
    return components.reshape(n, size, size, -1)
