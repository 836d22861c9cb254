"""Each layer against a numerical reference, plus config, saving and training."""

import keras
import numpy as np
import pytest
from scipy.special import erf

import keras_vit
from keras_vit.layers.multi_head_self_attention import relative_position_index
from keras_vit.layers.position_embedding import sincos_2d_embedding
from tests.layer_checks import (
    check_config_round_trip,
    check_save_load,
    check_train_step,
    wrap,
)

pytestmark = pytest.mark.portable


def np_(x):
    return keras.ops.convert_to_numpy(x)


def layer_norm(x, gamma, beta, eps):
    mean = x.mean(-1, keepdims=True)
    var = x.var(-1, keepdims=True)
    return (x - mean) / np.sqrt(var + eps) * gamma + beta


def gelu(x, approximate=False):
    if approximate:
        return 0.5 * x * (1 + np.tanh(np.sqrt(2 / np.pi) * (x + 0.044715 * x**3)))
    return 0.5 * x * (1 + erf(x / np.sqrt(2)))


def softmax(x):
    e = np.exp(x - x.max(-1, keepdims=True))
    return e / e.sum(-1, keepdims=True)


def attention_reference(x, msa, bias=None):
    """Paper App. A (eq. 5-8) in numpy from the layer's own weights."""
    b, t, d = x.shape
    h = msa.num_heads
    hd = d // h
    qkv = x @ np_(msa.qkv.kernel) + np_(msa.qkv.bias)  # (B, T, 3D)
    q, k, v = np.split(qkv, 3, axis=-1)
    split = lambda a: a.reshape(b, t, h, hd).transpose(0, 2, 1, 3)  # noqa: E731
    q, k, v = split(q), split(k), split(v)  # (B, h, T, hd)
    logits = q @ k.transpose(0, 1, 3, 2) / np.sqrt(hd)
    if bias is not None:
        logits = logits + bias
    weights = softmax(logits)  # (B, h, T, T)
    out = (weights @ v).transpose(0, 2, 1, 3).reshape(b, t, d)
    return out @ np_(msa.output_dense.kernel) + np_(msa.output_dense.bias), weights


# Patches -------------------------------------------------------------------


@pytest.mark.parametrize("shape", [(2, 8, 12, 3), (1, 28, 28, 1)])
def test_patches_then_dense_equals_conv2d(shape, rng):
    p, d = 4, 16
    images = rng.normal(size=shape).astype("float32")
    kernel = rng.normal(size=(p, p, shape[-1], d)).astype("float32")
    conv = keras.layers.Conv2D(d, p, strides=p, use_bias=False)
    conv.build(shape)
    conv.kernel.assign(kernel)
    expected = np_(conv(images)).reshape(shape[0], -1, d)  # raster order
    patches = np_(keras_vit.Patches(p)(images))
    assert patches.shape == (shape[0], (shape[1] // p) * (shape[2] // p), p * p * shape[3])
    np.testing.assert_allclose(patches @ kernel.reshape(-1, d), expected, rtol=1e-5, atol=1e-4)


def test_patches_are_raster_order_row_col_channel():
    images = np.arange(4 * 6 * 2, dtype="float32").reshape(1, 4, 6, 2)
    patches = np_(keras_vit.Patches(2)(images))
    # Second patch: rows 0-1, columns 2-3, all channels, flattened (row, col, channel).
    np.testing.assert_array_equal(patches[0, 1], images[0, 0:2, 2:4, :].reshape(-1))
    # Fourth patch starts the second row of patches.
    np.testing.assert_array_equal(patches[0, 3], images[0, 2:4, 0:2, :].reshape(-1))


def test_patches_error_names_side_and_nearest_sizes():
    with pytest.raises(ValueError, match=r"width 30 is not divisible.*28 and 32"):
        keras_vit.Patches(4)(np.zeros((1, 28, 30, 3), "float32"))
    with pytest.raises(ValueError, match="patch_size"):
        keras_vit.Patches(0)


# PatchEncoder and position embeddings -------------------------------------


def test_patch_encoder_prepends_zero_class_token_and_adds_embedding(rng):
    encoder = keras_vit.PatchEncoder(grid_size=(2, 3))
    x = rng.normal(size=(4, 6, 8)).astype("float32")
    out = np_(encoder(x))
    pos = np_(encoder.position_embedding_layer.embeddings)
    assert np.all(np_(encoder.cls) == 0)
    np.testing.assert_allclose(out[:, 0], np.broadcast_to(pos[0, 0], (4, 8)), atol=1e-6)
    np.testing.assert_allclose(out[:, 1:], x + pos[:, 1:], atol=1e-6)


def test_learned_position_embedding_is_normal_002():
    layer = keras_vit.PositionEmbedding(grid_size=16, kind="learned")
    layer.build((None, 257, 256))
    table = np_(layer.embeddings)
    assert abs(table.mean()) < 1e-3
    assert abs(table.std() - 0.02) < 5e-4


def test_sincos_matches_big_vision_formula():
    gh, gw, d = 3, 4, 16
    table = sincos_2d_embedding((gh, gw), d)
    omega = 1.0 / 10000.0 ** (np.arange(d // 4) / (d // 4 - 1))
    for index, (y, x) in enumerate(np.ndindex(gh, gw)):
        expected = np.concatenate(
            [np.sin(x * omega), np.cos(x * omega), np.sin(y * omega), np.cos(y * omega)]
        )
        np.testing.assert_allclose(table[index], expected, atol=1e-6)
    layer = keras_vit.PositionEmbedding((gh, gw), kind="sincos_2d")
    out = np_(layer(np.zeros((1, 1 + gh * gw, d), "float32")))
    np.testing.assert_allclose(out[0, 1:], table, atol=1e-6)
    assert np.all(out[0, 0] == 0) and not layer.trainable_weights


def test_learned_2d_concatenates_column_and_row_tables():
    layer = keras_vit.PositionEmbedding((2, 3), kind="learned_2d")
    out = np_(layer(np.zeros((1, 7, 8), "float32")))[0]
    rows, cols = np_(layer.row_embeddings), np_(layer.column_embeddings)
    for index, (y, x) in enumerate(np.ndindex(2, 3)):
        np.testing.assert_allclose(out[1 + index], np.concatenate([cols[x], rows[y]]))
    np.testing.assert_allclose(out[0], np_(layer.prefix_embeddings)[0])


# Attention -----------------------------------------------------------------


def test_attention_matches_reference_and_returns_weights(rng):
    msa = keras_vit.MultiHeadSelfAttention(num_heads=4)
    x = rng.normal(size=(2, 5, 32)).astype("float32")
    fast = np_(msa(x))
    explicit, weights = msa(x, return_attention_scores=True)
    expected, expected_weights = attention_reference(x, msa)
    np.testing.assert_allclose(fast, expected, atol=1e-5)
    np.testing.assert_allclose(np_(explicit), expected, atol=1e-5)
    np.testing.assert_allclose(np_(weights), expected_weights, atol=1e-6)
    assert np_(weights).shape == (2, 4, 5, 5)


def test_relative_position_bias_matches_reference(rng):
    grid = (2, 3)
    msa = keras_vit.MultiHeadSelfAttention(num_heads=2, relative_grid_size=grid)
    x = rng.normal(size=(2, 7, 16)).astype("float32")
    msa.build(x.shape)
    table = rng.normal(size=msa.relative_position_bias_table.shape).astype("float32")
    msa.relative_position_bias_table.assign(table)
    # Bias between patches i and j depends only on their (dy, dx) offset.
    coords = list(np.ndindex(*grid))
    bias = np.zeros((2, 7, 7), "float32")
    offsets = sorted({(a[0] - b[0], a[1] - b[1]) for a in coords for b in coords})
    assert len(offsets) == (2 * grid[0] - 1) * (2 * grid[1] - 1)
    for i, a in enumerate(coords):
        for j, b in enumerate(coords):
            dy, dx = a[0] - b[0], a[1] - b[1]
            bias[:, 1 + i, 1 + j] = table[(dy + grid[0] - 1) * (2 * grid[1] - 1) + dx + grid[1] - 1]
    expected, _ = attention_reference(x, msa, bias[None])
    np.testing.assert_allclose(np_(msa(x)), expected, atol=1e-5)
    assert relative_position_index(grid).max() == len(offsets) - 1


def test_attention_rejects_width_not_divisible_by_heads():
    with pytest.raises(ValueError, match="num_heads"):
        keras_vit.MultiHeadSelfAttention(num_heads=3)(np.zeros((1, 4, 32), "float32"))


# MLP, DropPath, TransformerBlock ------------------------------------------


@pytest.mark.parametrize("approximate", [False, True])
def test_mlp_matches_reference(approximate, rng):
    mlp = keras_vit.MLP(24, gelu_approximate=approximate)
    x = rng.normal(size=(2, 3, 8)).astype("float32")
    out = np_(mlp(x))
    h = gelu(x @ np_(mlp.dense_1.kernel) + np_(mlp.dense_1.bias), approximate)
    expected = h @ np_(mlp.dense_2.kernel) + np_(mlp.dense_2.bias)
    np.testing.assert_allclose(out, expected, atol=1e-5)


def test_drop_path_drops_whole_samples_and_rescales():
    layer = keras_vit.DropPath(0.25, seed=1)
    x = np.ones((4000, 3, 2), "float32")
    assert np.array_equal(np_(layer(x)), x)
    out = np_(layer(x, training=True))
    per_sample = out.reshape(4000, -1)
    assert np.all((per_sample == 0) | np.isclose(per_sample, 1 / 0.75))
    assert np.all(per_sample.min(1) == per_sample.max(1))  # all or nothing per sample
    assert abs((per_sample[:, 0] == 0).mean() - 0.25) < 0.03


def test_transformer_block_is_pre_norm_residual(rng):
    block = keras_vit.TransformerBlock(num_heads=2, mlp_dim=32, layer_norm_epsilon=1e-6)
    x = rng.normal(size=(2, 5, 16)).astype("float32")
    out, weights = block(x, return_attention_scores=True)
    ln1, ln2 = block.layer_norm_1, block.layer_norm_2
    y, expected_weights = attention_reference(
        layer_norm(x, np_(ln1.gamma), np_(ln1.beta), 1e-6), block.attention
    )
    z = x + y  # eq. 2
    mlp = block.mlp
    h = layer_norm(z, np_(ln2.gamma), np_(ln2.beta), 1e-6)
    h = gelu(h @ np_(mlp.dense_1.kernel) + np_(mlp.dense_1.bias))
    expected = z + h @ np_(mlp.dense_2.kernel) + np_(mlp.dense_2.bias)  # eq. 3
    np.testing.assert_allclose(np_(out), expected, atol=1e-5)
    np.testing.assert_allclose(np_(block(x)), expected, atol=1e-5)
    np.testing.assert_allclose(np_(weights), expected_weights, atol=1e-6)


# Every layer: config round trip, .keras save/load, a training step ---------

LAYERS = [
    (lambda: keras_vit.Patches(4), (8, 8, 3)),
    (lambda: keras_vit.PatchEncoder((2, 2), position_embedding="learned_2d"), (4, 16)),
    (lambda: keras_vit.PositionEmbedding((2, 2), kind="learned", num_prefix_tokens=0), (4, 16)),
    (lambda: keras_vit.MultiHeadSelfAttention(4, relative_grid_size=(2, 2)), (5, 16)),
    (lambda: keras_vit.MLP(32, dropout_rate=0.1, gelu_approximate=True), (5, 16)),
    (lambda: keras_vit.DropPath(0.2, seed=3), (5, 16)),
    (lambda: keras_vit.TransformerBlock(2, 32, dropout_rate=0.1, drop_path_rate=0.1), (5, 16)),
    (lambda: keras_vit.TokenPooling("gap"), (5, 16)),
    (lambda: keras_vit.StdConv2D(4, 3, padding="same"), (6, 6, 2)),
]


@pytest.mark.parametrize("make,shape", LAYERS, ids=lambda v: getattr(v, "__name__", ""))
def test_layer_config_save_and_train(make, shape, tmp_path, rng):
    layer = make()
    clone = check_config_round_trip(layer)
    assert type(clone) is type(layer)
    model = wrap(layer, shape)
    x = rng.normal(size=(4,) + shape).astype("float32")
    check_save_load(model, x, tmp_path)
    if layer.trainable_weights or isinstance(layer, (keras_vit.DropPath, keras_vit.Patches, keras_vit.TokenPooling)):
        head = keras.layers.Dense(3)
        outputs = head(keras.layers.Flatten()(model.output))
        trainable = keras.Model(model.input, outputs)
        check_train_step(trainable, x, rng.normal(size=(4, 3)).astype("float32"))


def test_std_conv2d_standardises_the_kernel(rng):
    conv = keras_vit.StdConv2D(4, 3, padding="same", use_bias=False, epsilon=1e-8)
    x = rng.normal(size=(1, 5, 5, 2)).astype("float32")
    conv.build(x.shape)
    w = np_(conv.kernel)
    standard = (w - w.mean((0, 1, 2))) / np.sqrt(w.var((0, 1, 2)) + 1e-8)
    plain = keras.layers.Conv2D(4, 3, padding="same", use_bias=False)
    plain.build(x.shape)
    plain.kernel.assign(standard)
    np.testing.assert_allclose(np_(conv(x)), np_(plain(x)), atol=1e-5)
