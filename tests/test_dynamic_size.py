"""ViTConfig(dynamic_image_size=True): any image size at call time, position
embeddings resampled in the graph, the same logits as fixed-size models."""

import keras
import numpy as np
import pytest

import keras_vit
from keras_vit.layers import Patches, PatchEncoder, PositionEmbedding
from keras_vit.layers.position_embedding import sincos_2d_embedding
from keras_vit.layers.resample import resample_matrix, sincos_2d_ops
from keras_vit.surgery import interpolation_matrix, resize_position_embeddings, transfer_weights
from tests import layer_checks

pytestmark = pytest.mark.portable

BACKEND = keras.backend.backend()
# Tiny models with the paper's grid arithmetic: patch 4 at 16 (a 4x4 grid)
# stands for 16 at 224 (14x14); 28 for 384 (7x7 vs 24x24), 20x32 for 160x240.
TINY = dict(image_size=16, patch_size=4, num_channels=3, hidden_size=32, num_layers=1,
            num_heads=2, mlp_dim=64, num_classes=5)
SIZES = (16, 28, (20, 32))
RESIZES = (("linear", False), ("bicubic", False), ("bicubic", True))


def _perturbed_dynamic(seed=0, **fields):
    model = keras_vit.ViT(**{**TINY, **fields, "dynamic_image_size": True})
    rng = np.random.default_rng(seed)
    for w in model.weights:  # the head is zero and the class token too at init
        w.assign(keras.ops.convert_to_numpy(w) + rng.normal(0, 0.1, w.shape).astype("float32"))
    return model


def _fixed_at(dynamic, size, method, antialias):
    """A fixed-size model at `size` from the dynamic model's weights (surgery's resize)."""
    config = dynamic.config.replace(dynamic_image_size=False)
    fixed = keras_vit.VisionTransformer(config)
    transfer_weights(dynamic, fixed)
    if not antialias:
        return resize_position_embeddings(fixed, size, method)
    # surgery.resize_position_embeddings here has no antialias switch (b-checkpoints
    # adds one): resample with the NumPy reference matrices by hand.
    new = resize_position_embeddings(fixed, size, "bicubic")
    (gh, gw), (nh, nw) = config.grid_size, new.config.grid_size
    rows, cols = (interpolation_matrix(gh, nh, "bicubic", True),
                  interpolation_matrix(gw, nw, "bicubic", True))
    for old_w, new_w in zip(fixed.weights, new.weights):
        leaf = old_w.path.split("/")[-1]
        value = keras.ops.convert_to_numpy(old_w).astype("float64")
        if leaf == "embeddings":
            p = config.num_prefix_tokens
            grid = value[0, p:].reshape(gh, gw, -1)
            grid = np.einsum("ih,jw,hwd->ijd", rows, cols, grid).reshape(1, nh * nw, -1)
            new_w.assign(np.concatenate([value[:, :p], grid], axis=1).astype("float32"))
        elif leaf == "row_embeddings":
            new_w.assign((rows @ value).astype("float32"))
        elif leaf == "column_embeddings":
            new_w.assign((cols @ value).astype("float32"))
    return new


def _images(size, batch=2, seed=1):
    hw = (size, size) if isinstance(size, int) else size
    return np.random.default_rng(seed).uniform(0, 255, (batch, *hw, 3)).astype("float32")


def _np(x):
    return keras.ops.convert_to_numpy(x)


@pytest.mark.parametrize("method,antialias", RESIZES)
def test_resample_matrix_equals_interpolation_matrix(method, antialias):
    # The keras.ops matrices are torch's / scipy's weights: up, down, borders,
    # length 1. float64 shows the formulation is exact; JAX runs float32.
    dtype = "float32" if BACKEND == "jax" else "float64"
    atol = 3e-6 if dtype == "float32" else 1e-12
    for n_in in (1, 2, 3, 4, 7, 14):
        for n_out in (1, 2, 3, 5, 7, 14, 24, 37):
            got = _np(resample_matrix(n_in, n_out, method, antialias, dtype=dtype))
            want = interpolation_matrix(n_in, n_out, method, antialias)
            np.testing.assert_allclose(got, want, atol=atol, rtol=0,
                                       err_msg=f"{method} aa={antialias} {n_in}->{n_out}")


def test_sincos_ops_equals_numpy_table():
    for grid in ((1, 1), (3, 5), (24, 24)):
        np.testing.assert_allclose(_np(sincos_2d_ops(grid, 32)), sincos_2d_embedding(grid, 32),
                                   atol=2e-6, rtol=0)


@pytest.mark.parametrize("kind,method,antialias", [
    ("learned", "linear", False), ("learned", "bicubic", False), ("learned", "bicubic", True),
    ("learned_2d", "linear", False), ("learned_2d", "bicubic", True),
    ("sincos_2d", "linear", False),  # recomputed for the grid: the resize plays no part
])
def test_logits_equal_fixed_size_models(kind, method, antialias):
    dynamic = _perturbed_dynamic(position_embedding=kind, resample_method=method,
                                 resample_antialias=antialias)
    assert tuple(dynamic.inputs[0].shape) == (None, None, None, 3)
    for size in SIZES:
        fixed = _fixed_at(dynamic, size, method, antialias)
        images = _images(size)
        want = _np(fixed(images))
        assert np.abs(want).max() > 0.1  # perturbed: the logits are not zeros
        np.testing.assert_allclose(_np(dynamic(images)), want, atol=1e-5, rtol=0,
                                   err_msg=f"{kind} {method} aa={antialias} at {size}")


def test_gap_pooling_without_class_token():
    dynamic = _perturbed_dynamic(class_token=False, pooling="gap")
    for size in SIZES[1:]:
        np.testing.assert_allclose(_np(dynamic(_images(size))),
                                   _np(_fixed_at(dynamic, size, "linear", False)(_images(size))),
                                   atol=1e-5, rtol=0)


def test_size_not_divisible_by_patch_says_so():
    model = keras_vit.ViT(**TINY, dynamic_image_size=True)
    with pytest.raises(ValueError, match=r"image height 18 is not divisible by the patch size 4"):
        model(_images((18, 16)))
    with pytest.raises(ValueError, match=r"image width 30 is not divisible"):
        model.predict(_images((16, 30)), verbose=0)


@pytest.mark.parametrize("fields,named", [
    (dict(position_embedding="relative"), "relative"),
    (dict(position_embedding_placement="every_layer"), "every_layer"),
    (dict(hybrid_layers=(1,), image_size=32, patch_size=1), "hybrid_layers"),
])
def test_unsupported_combinations_refused_by_name(fields, named):
    with pytest.raises(ValueError, match=rf"dynamic_image_size.*{named}"):
        keras_vit.ViTConfig(**{**TINY, **fields, "dynamic_image_size": True})


def test_under_xla_one_trace_per_size():
    # Compiled once per size; under TensorFlow with reduce_retracing (as Keras'
    # predict) the shape relaxes to None and the matrices come from symbolic sizes.
    dynamic = _perturbed_dynamic()
    traces = []

    def forward(images):
        traces.append(tuple(images.shape))
        return dynamic(images, training=False)

    if BACKEND == "jax":
        import jax

        compiled = jax.jit(forward)
    elif BACKEND == "tensorflow":
        import tensorflow as tf

        compiled = tf.function(forward, jit_compile=True, reduce_retracing=True)
    else:
        pytest.skip("torch has no XLA compilation here")
    sizes = (16, 28, (20, 32), 16)
    for size in sizes:
        images = _images(size)
        np.testing.assert_allclose(_np(compiled(images)), _np(dynamic(images)),
                                   atol=1e-5, rtol=0, err_msg=str(size))
    assert len(traces) <= 3, traces  # never more than one per distinct size
    if BACKEND == "tensorflow":
        assert any(s[1] is None for s in traces), traces  # the relaxed, symbolic trace ran


def test_size_not_divisible_says_so_after_tensorflow_relaxed_the_shape():
    # After a few sizes TF traces predict with (None, None): the check runs on the
    # array before Keras' step, not in the graph's reshape.
    if BACKEND != "tensorflow":
        pytest.skip("the relaxed trace is TensorFlow's (test_size_not_divisible_by_patch_says_so)")
    model = keras_vit.ViT(**TINY, dynamic_image_size=True)
    model.compile(jit_compile=False)
    for size in (16, 20, (24, 28), (12, 8)):
        model.predict(_images(size), verbose=0)
    for method, args in (("predict", ()), ("evaluate", (np.zeros((2, 5)),)),
                         ("fit", (np.zeros((2, 5)),))):
        with pytest.raises(ValueError, match=r"`x`: the image height 18 is not divisible"):
            getattr(model, method)(_images((18, 16)), *args, verbose=0)
    with pytest.raises(ValueError, match=r"`x`: the image width 30 is not divisible"):
        model.predict({"images": _images((16, 30))}, verbose=0)
    model.compile(optimizer="sgd", loss="mse", jit_compile=False)
    with pytest.raises(ValueError, match=r"`validation_data`: the image height 18"):
        model.fit(_images(16), np.zeros((2, 5)), verbose=0,
                  validation_data=(_images((18, 16)), np.zeros((2, 5))))


def test_keras_predict_many_sizes_after_relaxing():
    # model.predict's tf.function relaxes the shape after a few sizes (TF).
    dynamic = _perturbed_dynamic()
    dynamic.compile(jit_compile=False)  # XLA: test_under_xla_one_trace_per_size
    for size in (16, 28, (20, 32), (12, 24)):
        images = _images(size)
        np.testing.assert_allclose(dynamic.predict(images, verbose=0), _np(dynamic(images)),
                                   atol=1e-5, rtol=0, err_msg=str(size))


def test_keras_save_load_and_config_round_trip(tmp_path):
    dynamic = _perturbed_dynamic(resample_method="bicubic", resample_antialias=True)
    loaded = layer_checks.check_save_load(dynamic, _images(28), tmp_path, atol=1e-6)
    assert loaded.config.dynamic_image_size and loaded.config.resample_antialias
    np.testing.assert_allclose(_np(loaded(_images((20, 32)))), _np(dynamic(_images((20, 32)))),
                               atol=1e-6, rtol=0)
    for layer in (Patches(4, flatten=False),
                  PatchEncoder((4, 4), dynamic=True, resample_method="bicubic",
                               resample_antialias=True),
                  PositionEmbedding((2, 3), "learned_2d", dynamic=True)):
        clone = layer_checks.check_config_round_trip(layer)
        for name in ("flatten", "dynamic", "resample_method", "resample_antialias"):
            assert getattr(clone, name, None) == getattr(layer, name, None), name


def test_train_step_at_another_size():
    dynamic = _perturbed_dynamic()
    # At a size other than the stored grid's: the gradient reaches the
    # position embedding through the resample.
    images, targets = _images((20, 32), batch=4), np.random.default_rng(0).normal(size=(4, 5))
    dynamic.compile(optimizer=keras.optimizers.Adam(1e-2), loss="mse", jit_compile=False)
    before = [_np(w).copy() for w in dynamic.trainable_weights]
    losses = [float(dynamic.train_on_batch(images, targets)) for _ in range(5)]
    unchanged = [w.path for w, b in zip(dynamic.trainable_weights, before)
                 if np.array_equal(_np(w), b)]
    assert not unchanged and losses[-1] < losses[0], (unchanged, losses)


def test_position_embedding_refuses_grid_when_static():
    layer = PositionEmbedding((2, 2), num_prefix_tokens=0)
    with pytest.raises(ValueError, match="dynamic=True"):
        layer(keras.ops.zeros((1, 4, 8)), grid_size=(2, 2))


@pytest.mark.slow
@pytest.mark.parametrize("method,antialias", RESIZES)
def test_whole_size_ti16_at_224_384_and_160x240(method, antialias):
    dynamic = keras_vit.ViT("Ti/16", dynamic_image_size=True, num_classes=10,
                            resample_method=method, resample_antialias=antialias)
    rng = np.random.default_rng(0)
    for w in dynamic.weights:
        w.assign(_np(w) + rng.normal(0, 0.02, w.shape).astype("float32"))
    for size in (224, 384, (160, 240)):
        images = _images(size, batch=1)
        np.testing.assert_allclose(_np(dynamic(images)),
                                   _np(_fixed_at(dynamic, size, method, antialias)(images)),
                                   atol=1e-5, rtol=0, err_msg=str(size))


@pytest.mark.skipif(BACKEND != "tensorflow", reason="Keras exports from TensorFlow here")
@pytest.mark.parametrize("format,name", [("saved_model", "sm"), ("onnx", "m.onnx"),
                                         ("tflite", "m.tflite")])
def test_export_keeps_height_and_width_free(tmp_path, format, name):
    # The artefact resamples in its own graph: every format here takes any size
    # (TFLite too, through the interpreter's resize_tensor_input).
    from keras_vit import export

    missing = export.missing_requirements(format)
    if missing:
        pytest.skip(f"{format} export needs {', '.join(missing)}")
    dynamic = _perturbed_dynamic(resample_method="bicubic", resample_antialias=True)
    report = export.export_model(dynamic, tmp_path / name, format=format)
    assert report["image_sizes"] == [[16, 16], [20, 28]]  # verified at two sizes
    for size in (28, (32, 12)):  # and at two more, read back here
        images = _images(size)
        want = _np(dynamic(images))
        got = export.exporter.RUNNERS[format](str(tmp_path / name), images)
        np.testing.assert_allclose(got, want, rtol=0,
                                   atol=export.TOLERANCES[format] * np.abs(want).max())


@pytest.mark.skipif(BACKEND != "tensorflow", reason="Keras exports from TensorFlow here")
def test_cli_export_of_a_saved_dynamic_model_in_a_fresh_process(tmp_path):
    # The user's path: a .keras file, `keras-vit export` in a new process.
    import json
    import os
    import subprocess
    import sys

    from keras_vit import export

    dynamic = _perturbed_dynamic(resample_method="bicubic")
    dynamic.save(tmp_path / "dynamic.keras")
    out = tmp_path / "sm"
    run = subprocess.run(
        [sys.executable, "-m", "keras_vit", "export", str(tmp_path / "dynamic.keras"),
         "--format", "saved_model", "--output", str(out)],
        cwd=os.path.dirname(os.path.dirname(os.path.abspath(__file__))),
        capture_output=True, text=True, timeout=300,
    )
    assert run.returncode == 0, run.stderr
    report = json.loads(run.stdout[run.stdout.index("{"):])
    assert report["image_sizes"] == [[16, 16], [20, 28]]
    images = _images((24, 12))
    np.testing.assert_allclose(export.exporter.RUNNERS["saved_model"](str(out), images),
                               _np(dynamic(images)), atol=1e-5, rtol=0)
