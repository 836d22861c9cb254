"""The whole forward pass against a NumPy reference, for each position embedding.

The reference below is written from the paper (eq. 1-4, App. D.4) and the
original code, not from keras_vit: patches in raster order flattened as
(row, col, channel), the class token first, pre-norm blocks with exact GELU,
the position embedding added once at the stem, before every block (one table
each), or one shared table before every block; the 2-D relative bias added to
the attention logits of patch pairs. Every weight is random (LayerNorm scales
around 1, non-zero biases and head), on a non-square grid so a transposed
axis shows. Portable: under JAX and torch the attention takes the fused
kernel, whose bias argument the "relative" cases check.
"""

import keras
import numpy as np
import pytest
from scipy.special import erf

import keras_vit

pytestmark = pytest.mark.portable

IMAGE, PATCH, WIDTH, HEADS, MLP, LAYERS, CLASSES = (16, 24), 4, 16, 2, 32, 2, 3
GH, GW = IMAGE[0] // PATCH, IMAGE[1] // PATCH  # a 4x6 grid
EPS = 1e-6


def layer_norm(x, gamma, beta):
    mean = x.mean(-1, keepdims=True)
    var = ((x - mean) ** 2).mean(-1, keepdims=True)
    return (x - mean) / np.sqrt(var + EPS) * gamma + beta


def sincos_table(width):
    """big_vision's posemb_sincos_2d: sin x, cos x, sin y, cos y, temperature 1e4."""
    table = np.zeros((GH * GW, width))
    quarter = width // 4
    omega = 1.0 / 10000.0 ** (np.arange(quarter) / (quarter - 1))
    for r in range(GH):
        for c in range(GW):
            table[r * GW + c] = np.concatenate([
                np.sin(c * omega), np.cos(c * omega), np.sin(r * omega), np.cos(r * omega)])
    return table


def position_table(w, prefix, kind, name):
    """The (prefix + N, D) absolute embedding of layer `name`."""
    if kind == "learned":
        return w[f"{name}/embeddings"][0]
    if kind == "sincos_2d":
        return np.concatenate([np.zeros((prefix, WIDTH)), sincos_table(WIDTH)])
    # "learned_2d": the patch at (r, c) gets [X table row c ; Y table row r].
    rows, cols = w[f"{name}/row_embeddings"], w[f"{name}/column_embeddings"]
    grid = [np.concatenate([cols[c], rows[r]]) for r in range(GH) for c in range(GW)]
    parts = [w[f"{name}/prefix_embeddings"]] if prefix else []
    return np.concatenate(parts + [np.stack(grid)])


def relative_bias(table, prefix):
    """(heads, T, T): table[offset of patch i from patch j], zero for prefix tokens."""
    n = GH * GW
    bias = np.zeros((HEADS, prefix + n, prefix + n))
    for i in range(n):
        for j in range(n):
            dr, dc = i // GW - j // GW, i % GW - j % GW
            bias[:, prefix + i, prefix + j] = table[(dr + GH - 1) * (2 * GW - 1) + dc + GW - 1]
    return bias


def reference_forward(w, pixels, kind, placement, class_token):
    prefix = int(class_token)
    x = pixels.astype("float64") / 127.5 - 1.0  # mean = std = 0.5
    b = x.shape[0]
    patches = x.reshape(b, GH, PATCH, GW, PATCH, 3).transpose(0, 1, 3, 2, 4, 5)
    z = patches.reshape(b, GH * GW, PATCH * PATCH * 3) @ w["patch_embedding/kernel"]
    z = z + w["patch_embedding/bias"]
    if class_token:
        z = np.concatenate([np.broadcast_to(w["patch_encoder/class_token"], (b, 1, WIDTH)), z], 1)
    absolute = kind not in ("relative", "none")
    if absolute and placement == "stem":
        z = z + position_table(w, prefix, kind, "patch_encoder/position_embedding")
    hd = WIDTH // HEADS
    for i in range(LAYERS):
        p = f"transformer_block_{i}/"
        if absolute and placement == "every_layer":
            z = z + position_table(w, prefix, kind, f"position_embedding_{i}")
        elif absolute and placement == "every_layer_shared":
            z = z + position_table(w, prefix, kind, "position_embedding")
        y = layer_norm(z, w[p + "layer_norm_1/gamma"], w[p + "layer_norm_1/beta"])
        qkv = y @ w[p + "attention/qkv/kernel"] + w[p + "attention/qkv/bias"]
        qkv = qkv.reshape(b, -1, 3, HEADS, hd).transpose(2, 0, 3, 1, 4)  # [q | k | v], head-major
        q, k, v = qkv
        logits = q @ k.transpose(0, 1, 3, 2) / np.sqrt(hd)  # (B, heads, T, T)
        if kind == "relative":
            logits = logits + relative_bias(w[p + "attention/relative_position_bias_table"], prefix)
        weights = np.exp(logits - logits.max(-1, keepdims=True))
        weights /= weights.sum(-1, keepdims=True)
        out = (weights @ v).transpose(0, 2, 1, 3).reshape(b, -1, WIDTH)
        z = z + out @ w[p + "attention/output/kernel"] + w[p + "attention/output/bias"]
        y = layer_norm(z, w[p + "layer_norm_2/gamma"], w[p + "layer_norm_2/beta"])
        h = y @ w[p + "mlp/dense_1/kernel"] + w[p + "mlp/dense_1/bias"]
        h = 0.5 * h * (1.0 + erf(h / np.sqrt(2.0)))  # exact GELU
        z = z + h @ w[p + "mlp/dense_2/kernel"] + w[p + "mlp/dense_2/bias"]
    z = layer_norm(z, w["encoder_norm/gamma"], w["encoder_norm/beta"])
    pooled = z[:, 0] if class_token else z[:, prefix:].mean(1)
    return pooled @ w["head/kernel"] + w["head/bias"]


def randomise(model, seed):
    rng = np.random.default_rng(seed)
    for v in model.weights:
        shape = tuple(v.shape)
        if v.path.endswith("gamma"):
            value = 1.0 + 0.3 * rng.normal(size=shape)
        elif len(shape) == 2 and not v.path.endswith("table"):
            value = rng.normal(size=shape) / np.sqrt(shape[0])
        else:
            value = 0.5 * rng.normal(size=shape)
        v.assign(value.astype("float32"))
    return {v.path: keras.ops.convert_to_numpy(v).astype("float64") for v in model.weights}


@pytest.mark.parametrize("kind, placement, class_token", [
    ("learned", "stem", True),
    ("learned", "every_layer", True),
    ("learned", "every_layer_shared", True),
    ("learned", "every_layer_shared", False),
    ("learned_2d", "every_layer", True),
    ("sincos_2d", "every_layer_shared", True),
    ("relative", "stem", True),
    ("relative", "stem", False),
    ("none", "stem", True),
])
def test_forward_matches_numpy_reference(kind, placement, class_token):
    model = keras_vit.ViT(
        image_size=IMAGE, patch_size=PATCH, hidden_size=WIDTH, num_layers=LAYERS,
        num_heads=HEADS, mlp_dim=MLP, num_classes=CLASSES, position_embedding=kind,
        position_embedding_placement=placement, class_token=class_token,
        pooling="token" if class_token else "gap",
    )
    weights = randomise(model, seed=len(kind) + 7 * len(placement) + class_token)
    pixels = np.random.default_rng(3).integers(0, 256, size=(2, *IMAGE, 3)).astype("float32")
    expected = reference_forward(weights, pixels, kind, placement, class_token)
    out = keras.ops.convert_to_numpy(model(pixels)).astype("float64")
    scale = np.abs(expected).max()
    assert scale > 0.1
    np.testing.assert_allclose(out, expected, rtol=0, atol=1e-4 * scale)
