"""Attention paths the layer picks by platform, checked on the CPU (issue 19).

While training on a JAX GPU in float16/bfloat16 the layer pads the tokens to
a multiple of 64, masks the padded keys by `key_value_seq_lengths` and calls
cuDNN's fused kernel. cuDNN itself needs a GPU; here the same padded-and-
masked code runs with implementation="xla" and must equal the unpadded
attention, forward and gradient, against an explicit softmax(q k^T + b) v
written with NumPy-style jax.numpy below (not the layer's code). The path
choice is checked for a GPU platform string by replacing the platform lookup.
"""

import keras
import numpy as np
import pytest

from keras_vit.layers import multi_head_self_attention as msa_module
from tests.test_backends import need, run_python

# 17 tokens (1 + a 4x4 grid) and 197 (1 + 14x14), neither a multiple of 64;
# heads 2 of width 16 (width 32); a relative bias and qk_norm'd queries and
# keys, so a padded row or column that leaks into a real one shows.
PADDED_CHECK = """
import jax, jax.numpy as jnp, numpy as np
from keras_vit.layers.multi_head_self_attention import padded_attention

def reference(q, k, v, bias):  # (B, T, heads, hd), explicit
    logits = jnp.einsum("bqhd,bkhd->bhqk", q, k)
    if bias is not None:
        logits = logits + bias
    weights = jax.nn.softmax(logits, axis=-1)
    return jnp.einsum("bhqk,bkhd->bqhd", weights, v)

def layer_norm(x):  # qk_norm's form, so the inputs look like the layer's
    x = x - x.mean(-1, keepdims=True)
    return x / jnp.sqrt((x * x).mean(-1, keepdims=True) + 1e-6)

rng = np.random.default_rng(0)
for tokens, padded in ((17, 64), (197, 256)):
    q, k, v = (jnp.asarray(rng.normal(size=(3, tokens, 2, 16)), "float32") for _ in "qkv")
    q, k = layer_norm(q) / 4.0, layer_norm(k)
    bias = jnp.asarray(rng.normal(size=(1, 2, tokens, tokens)), "float32")
    for b in (None, bias):
        got = padded_attention(q, k, v, b, padded, implementation="xla")
        want = reference(q, k, v, b)
        assert got.shape == want.shape, (got.shape, want.shape)
        err = float(jnp.abs(got - want).max())
        assert err <= 1e-5 * float(jnp.abs(want).max()), (tokens, "forward", err)
        # a cotangent that differs per element, so a gradient into a padded
        # row or column, or one missing from a real one, shows
        w = jnp.asarray(rng.normal(size=want.shape), "float32")
        def loss(fn, q, k, v, b):
            return (fn(q, k, v, b) * w).sum()
        argnums = (1, 2, 3) if b is None else (1, 2, 3, 4)
        g_got = jax.grad(loss, argnums)(
            lambda *a: padded_attention(*a, padded, implementation="xla"), q, k, v, b)
        g_want = jax.grad(loss, argnums)(reference, q, k, v, b)
        for name, x, y in zip("qkvb", g_got, g_want):
            assert x.shape == y.shape, (name, x.shape, y.shape)
            assert bool(jnp.isfinite(x).all()), (tokens, name)
            err = float(jnp.abs(x - y).max())
            assert err <= 1e-5 * float(jnp.abs(y).max()), (tokens, "grad", name, err)
print("ok padded")
"""


@pytest.mark.portable
def test_padded_and_masked_attention_equals_unpadded_forward_and_gradient():
    need("jax")
    if keras.backend.backend() == "jax":
        exec(compile(PADDED_CHECK, "PADDED_CHECK", "exec"), {})
    else:  # the padded path is JAX's: check it under JAX
        assert "ok padded" in run_python(PADDED_CHECK, "jax")


def plan(platform, monkeypatch, backend="jax", training=True, dtype="bfloat16",
         tokens=197, heads=2, width=32):
    monkeypatch.setattr(msa_module, "_platform", lambda: platform)
    monkeypatch.setattr(msa_module.keras.backend, "backend", lambda: backend)
    layer = msa_module.MultiHeadSelfAttention(num_heads=heads)
    layer.head_dim = width // heads
    return layer._padded_plan(training, tokens, dtype), layer._flash(training)


@pytest.mark.parametrize("platform", ["gpu", "cuda"])
def test_a_jax_gpu_trains_with_cudnn_over_tokens_padded_to_64(platform, monkeypatch):
    assert plan(platform, monkeypatch) == (256, False)
    assert plan(platform, monkeypatch, tokens=17, dtype="float16")[0] == 64
    assert plan(platform, monkeypatch, tokens=128)[0] == 128  # already a multiple


@pytest.mark.parametrize("case", [
    dict(platform="cpu"),  # no cuDNN: Keras' choice
    dict(platform="tpu"),  # Splash attention, Keras' choice
    dict(platform="gpu", training=False),  # Keras picks cuDNN for inference itself
    dict(platform="gpu", dtype="float32"),  # cuDNN's fused kernel takes no float32
    dict(platform="gpu", backend="torch"),  # torch has its own kernels
    dict(platform="gpu", backend="tensorflow"),
    dict(platform="gpu", heads=3, width=36),  # head width 12, not a multiple of 8
    dict(platform="gpu", heads=1, width=512),  # head width over 256
    dict(platform="gpu", tokens=None),  # symbolic length
])
def test_other_platforms_and_settings_keep_kerass_choice(case, monkeypatch):
    platform = case.pop("platform")
    assert plan(platform, monkeypatch, **case)[0] is None


def test_the_layer_on_a_jax_gpu_calls_the_padded_cudnn_path(monkeypatch):
    """The layer hands the padded path its (B, T, heads, hd) q, k, v and bias."""
    calls = []

    def fake(query, key, value, bias, padded_tokens, implementation):
        calls.append((tuple(query.shape), bias is None, padded_tokens, implementation))
        return value

    monkeypatch.setattr(msa_module, "padded_attention", fake)
    monkeypatch.setattr(msa_module, "_platform", lambda: "gpu")
    monkeypatch.setattr(msa_module.keras.backend, "backend", lambda: "jax")
    layer = msa_module.MultiHeadSelfAttention(
        num_heads=2, relative_grid_size=(2, 3), qk_norm=True, dtype="mixed_bfloat16")
    x = np.ones((2, 7, 32), "float32")
    layer(x, training=True)
    assert calls == [((2, 7, 2, 16), False, 64, "cudnn")]
    layer(x, training=False)  # inference: Keras' dot_product_attention
    assert len(calls) == 1


def test_a_shape_cudnn_refuses_falls_back_to_xla(monkeypatch):
    """jax's cuDNN checks raise NotImplementedError while tracing: today's path runs."""
    def refuse(*args, **kwargs):
        raise NotImplementedError("Unsupported sequence length Q 64, KV 64.")

    monkeypatch.setattr(msa_module, "padded_attention", refuse)
    monkeypatch.setattr(msa_module, "_platform", lambda: "gpu")
    layer = msa_module.MultiHeadSelfAttention(num_heads=2, dtype="mixed_bfloat16")
    x = np.random.default_rng(1).normal(size=(2, 7, 32)).astype("float32")
    want = keras.ops.convert_to_numpy(keras.ops.cast(layer(x, training=False), "float32"))
    monkeypatch.setattr(msa_module.keras.backend, "backend", lambda: "jax")
    with pytest.warns(UserWarning, match="cuDNN attention refused"):
        got = layer(x, training=True)
    got = keras.ops.convert_to_numpy(keras.ops.cast(got, "float32"))
    assert np.abs(got - want).max() <= 1e-2 * np.abs(want).max()
