"""Performance paths that must not change a number: uint8 images end to end.

The host-to-device copy of a uint8 batch is a quarter of a float32 one, so
the model takes [0, 255] pixels of either dtype and normalises inside. What
Keras does with them (read in keras 3.15): the array adapter of `fit` and
`predict` casts only non-floatx *floats*, so a uint8 array stays uint8 until
the step; the functional model then converts each input to its Input's dtype
(float32) inside the step. The checks below hold that on TensorFlow, JAX and
PyTorch, against a reference normalisation computed here, not by the model.
"""

import os

import keras
import numpy as np
import pytest

from keras_vit.layers import MultiHeadSelfAttention
from tests.test_backends import need, run_python

# Runs as it is under each backend (in process for the current one, in a
# subprocess for the others). Non-square image, per-channel mean and std that
# differ by channel, so a swapped channel or a missing "* 255" shows.
UINT8_CHECK = """
import keras, numpy as np, keras_vit

fields = dict(image_size=(24, 16), patch_size=8, hidden_size=16, num_layers=1,
              num_heads=2, mlp_dim=32, num_classes=3,
              normalization_mean=(0.485, 0.456, 0.406),
              normalization_std=(0.229, 0.224, 0.225))
keras.utils.set_random_seed(0)
model = keras_vit.ViT(**fields)
wrng = np.random.default_rng(0)  # the head starts at zero: draw every weight instead
model.set_weights([wrng.normal(0.0, 0.3, w.shape).astype(w.dtype) for w in model.get_weights()])
bare = keras_vit.ViT(include_preprocessing=False, **fields)  # same weights, no normalisation
bare.set_weights(model.get_weights())
to_np = keras.ops.convert_to_numpy

rng = np.random.default_rng(1)
images = rng.integers(0, 256, (4, 24, 16, 3)).astype("uint8")
mean = np.array(fields["normalization_mean"]) * 255.0
std = np.array(fields["normalization_std"]) * 255.0

def reference(pixels):  # float64 normalisation, done here, fed to the bare model
    return to_np(bare(((pixels.astype("float64") - mean) / std).astype("float32")))

want = reference(images)
scale = np.abs(want).max()
for name, got in [
    ("call uint8", to_np(model(images))),
    ("call float32", to_np(model(images.astype("float32")))),
    ("predict uint8", model.predict(images, verbose=0)),
]:
    err = np.abs(got - want).max()
    assert err <= 1e-5 * scale, (name, err, scale)
# float inputs keep their fractions (a resized image is not whole numbers)
fractional = images.astype("float32") + np.float32(0.375)
err = np.abs(to_np(model(fractional)) - reference(fractional)).max()
assert err <= 1e-5 * scale, ("fractional float32", err)
assert np.abs(to_np(model(fractional)) - want).max() > 1e3 * err + 1e-6

# one SGD step from uint8 and from float32 arrays ends at the same weights
labels = np.array([0, 2, 1, 2], "int32")
start = model.get_weights()
ends = []
for batch in (images, images.astype("float32")):
    model.set_weights(start)
    model.compile(optimizer=keras.optimizers.SGD(0.1),
                  loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True))
    model.fit(batch, labels, batch_size=4, epochs=1, shuffle=False, verbose=0)
    ends.append(model.get_weights())
moved = max(np.abs(a - b).max() for a, b in zip(ends[0], start))
assert moved > 1e-4, moved
for a, b in zip(*ends):
    assert np.abs(a - b).max() <= 1e-5 * max(1.0, np.abs(b).max()), np.abs(a - b).max()
print("ok", keras.backend.backend())
"""


def test_uint8_and_float32_images_give_the_same_logits_and_step():
    exec(compile(UINT8_CHECK, "UINT8_CHECK", "exec"), {})


@pytest.mark.slow  # a subprocess per backend: 7-10 s each
@pytest.mark.parametrize("backend", ["tensorflow", "jax", "torch"])
def test_uint8_images_on_every_backend(backend):
    if backend == keras.backend.backend():
        pytest.skip("checked in process by the test above")
    need(backend)
    assert f"ok {backend}" in run_python(UINT8_CHECK, backend)


def test_gpu_rows_and_their_cpu_dry_run():
    """run_gpu.sh's rows (issue 19) and what `--dry-run` keeps of them on a CPU."""
    from benchmarks import configs, driver

    labels = [r.label for r in configs.default_runners("gpu")]
    assert labels == ["keras_vit (jax)", "keras_vit (torch, jit_compile=True)",
                      "keras_hub (jax)", "timm (eager)", "timm (torch.compile)"]
    dry = [r.label for r in driver.dry_run_runners(configs.default_runners("gpu"))]
    # torch.compile builds C++ kernels for minutes on a CPU: the Keras torch row
    # runs eagerly, timm's compiled row is left out
    assert dry == ["keras_vit (jax)", "keras_vit (torch, jit_compile=False)",
                   "keras_hub (jax)", "timm (eager)"]


def test_no_benchmark_configuration_starts_past_the_time_limit():
    from benchmarks import configs, driver, report

    tiny = configs.dry_run_configs(configs.GPU_CONFIGS)
    results = driver.run_benchmark(tiny, [configs.Runner("keras_vit", "jax")], device="cpu",
                                   reps=1, time_limit_s=-1.0, log=None)
    assert results["configs"] == []
    assert results["not_run"] == [c.name for c in tiny]
    assert "Not run (they would have started past the time limit): ViT-B/16 training" in (
        report.format_table(results))


@pytest.mark.skipif(keras.backend.backend() != "tensorflow",
                    reason="TensorFlow's graph without XLA")
def test_attention_gradient_on_tensorflow_makes_no_zero_filled_slices():
    """The fused q/k/v tensor is unstacked, not indexed: on TensorFlow without XLA the
    gradient of `qkv[0], qkv[1], qkv[2]` is three zero-filled (3, B, heads, T, hd)
    tensors summed (StridedSliceGrad), that of an unstack one stack; that cost the
    CIFAR-sized training step about a quarter of its time (benchmarks/RESULTS.md,
    2026-12-07). Values are held by the parity tests; this holds the graph."""
    types = _training_graph_op_types(MultiHeadSelfAttention(num_heads=2))
    assert "BatchMatMulV2" in types  # the explicit attention TensorFlow runs
    assert "StridedSliceGrad" not in types, sorted(types)


def test_exact_gelu_is_x_phi_x_in_value_and_gradient():
    """keras_vit's exact GELU (written with erf for speed, issue 19) against
    x * Phi(x) and its derivative Phi(x) + x * phi(x), computed here in float64,
    over the range a trained MLP sees and the tails where erf saturates."""
    import math

    from keras_vit.layers.mlp import exact_gelu

    x = np.concatenate([np.linspace(-9.0, 9.0, 721), [-30.0, -12.5, 12.5, 30.0]])
    phi_cdf = np.array([0.5 * math.erfc(-v / math.sqrt(2.0)) for v in x])
    want = x * phi_cdf
    want_grad = phi_cdf + x * np.exp(-0.5 * x * x) / math.sqrt(2.0 * math.pi)

    # float32 near 1 is 1.2e-7 apart: a few of those on max(1, |x|). Measured
    # (TensorFlow, XLA's erf) 5.6e-7 at worst, torch's own kernel 2.5e-7,
    # TensorFlow's erfc form 1.1e-7; the tanh approximation is 4.7e-4 off.
    scale = np.maximum(1.0, np.abs(x))
    got = keras.ops.convert_to_numpy(exact_gelu(keras.ops.convert_to_tensor(x, "float32")))
    assert (np.abs(got - want) / scale).max() < 1e-6, (np.abs(got - want) / scale).max()
    tanh_form = 0.5 * x * (1 + np.tanh(np.sqrt(2 / np.pi) * (x + 0.044715 * x ** 3)))
    assert (np.abs(tanh_form - want) / scale).max() > 1e-4  # so the bound tells them apart

    grad = _gradient(exact_gelu, x.astype("float32"))
    assert (np.abs(grad - want_grad) / scale).max() < 2e-6, np.abs(grad - want_grad).max()


def _gradient(fn, x):
    """d sum(fn(x)) / dx on the current backend."""
    backend = keras.backend.backend()
    if backend == "tensorflow":
        import tensorflow as tf

        t = tf.constant(x)
        with tf.GradientTape() as tape:
            tape.watch(t)
            y = tf.reduce_sum(fn(t))
        return tape.gradient(y, t).numpy()
    if backend == "jax":
        import jax

        return np.asarray(jax.grad(lambda t: fn(t).sum())(x))
    import torch

    t = torch.tensor(x, requires_grad=True)
    fn(t).sum().backward()
    return t.grad.numpy()


@pytest.mark.skipif(keras.backend.backend() != "tensorflow", reason="TensorFlow's graph")
def test_exact_gelu_on_tensorflow_has_no_erfc():
    """TensorFlow's `gelu(approximate=False)` is 0.5 x erfc(-x / sqrt 2), which XLA runs
    slower on a CPU than the erf form: the CIFAR-sized training step was 1.045x faster
    without it (benchmarks/RESULTS.md, 2026-12-08). Values are held by the test above;
    this holds the graph."""
    from keras_vit.layers import MLP

    types = _training_graph_op_types(MLP(16))
    assert "Erf" in types, sorted(types)
    assert "Erfc" not in types, sorted(types)


def _training_graph_op_types(layer):
    """The op types of `layer`'s forward and backward pass as TensorFlow runs it
    without XLA, on a (2, 5, 8) input."""
    import tensorflow as tf  # this backend's graph only

    x = tf.random.normal((2, 5, 8))
    layer(x)

    @tf.function(jit_compile=False)
    def gradients(x):
        with tf.GradientTape() as tape:
            tape.watch(x)
            y = layer(x, training=True)
        return tape.gradient(y, [x] + layer.trainable_weights)

    concrete = gradients.get_concrete_function(x)
    assert all(g is not None for g in concrete.structured_outputs)  # a backward pass
    return {op.type for op in concrete.graph.get_operations()}
