"""keras-vit export: SavedModel, ONNX and TFLite artefacts checked with each format's runtime."""

import json
import os
import subprocess
import sys

import numpy as np
import pytest

import keras_vit
from keras_vit import export

pytestmark = pytest.mark.skipif(
    __import__("keras").backend.backend() != "tensorflow",
    reason="Keras exports SavedModel/ONNX/TFLite from the TensorFlow backend here",
)

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def _tiny_model():
    model = keras_vit.ViT(image_size=16, patch_size=4, num_channels=1, hidden_size=32,
                          num_layers=2, num_heads=2, mlp_dim=64, num_classes=10)
    # Perturb every weight (the head is zero at init) so a dropped op shows.
    rng = np.random.default_rng(1)
    for w in model.weights:
        w.assign(w.numpy() + rng.normal(0, 0.05, size=w.shape).astype("float32"))
    return model


def _skip_if_missing(format):
    missing = export.missing_requirements(format)
    if missing:
        pytest.skip(f"{format} export needs {', '.join(missing)} (pip install '.[export]')")


@pytest.fixture(scope="module")
def tiny(tmp_path_factory):
    import keras

    keras.utils.set_random_seed(0)
    path = tmp_path_factory.mktemp("export") / "tiny.keras"
    model = _tiny_model()
    model.save(path)
    return model, path


@pytest.mark.parametrize("format,name", [("saved_model", "sm"), ("onnx", "m.onnx"),
                                         ("tflite", "m.tflite")])
def test_exported_model_matches_keras_in_its_runtime(tiny, tmp_path, format, name):
    _skip_if_missing(format)
    model, _ = tiny
    images = export.sample_images(model, batch_size=3, seed=5)
    report = export.export_model(model, tmp_path / name, format=format, images=images)
    assert report["num_images"] == 3 and report["scale"] > 0.1
    assert report["max_abs_difference"] <= export.TOLERANCES[format] * report["scale"]
    # The runtime's answer, read again here, is the model's (not just "it ran").
    received = export.exporter.RUNNERS[format](str(tmp_path / name), images)
    np.testing.assert_allclose(received, model.predict(images, verbose=0),
                               atol=export.TOLERANCES[format] * report["scale"])


def test_onnx_export_of_keras_own_exact_gelu(tmp_path):
    """keras_vit's GELU is written with Erf; a layer using Keras' own exact gelu
    (TensorFlow's Erfc, which tf2onnx 1.17 cannot convert) still exports, through
    the Erf-based handler keras_vit registers (keras_vit/export/tf2onnx_ops.py)."""
    _skip_if_missing("onnx")
    import keras

    keras.utils.set_random_seed(0)
    inputs = keras.Input((6,))
    model = keras.Model(inputs, keras.layers.Dense(5)(
        keras.layers.Dense(8, activation=lambda x: keras.ops.gelu(x, approximate=False))(
            inputs)))
    if keras.backend.backend() == "tensorflow":  # the op the handler exists for
        import tensorflow as tf

        graph = tf.function(model).get_concrete_function(tf.TensorSpec((None, 6))).graph
        assert "Erfc" in {op.type for op in graph.get_operations()}
    x = np.random.default_rng(0).normal(0.0, 2.0, (4, 6)).astype("float32")
    report = export.export_model(model, tmp_path / "g.onnx", format="onnx", images=x)
    assert report["max_abs_difference"] <= export.TOLERANCES["onnx"] * report["scale"]


def test_verification_fails_when_the_artefact_differs(tiny, tmp_path):
    model, _ = tiny
    export.export_model(model, tmp_path / "sm", format="saved_model", verify=False)
    other = _tiny_model()
    other.set_weights(model.get_weights())
    bias = other.get_layer("head").bias
    bias.assign(bias.numpy() + 1e-3)  # 1e-3 off: well above 1e-4 of the logits' scale
    with pytest.raises(export.ExportVerificationError, match="max \\|difference\\|"):
        export.verify_export(other, str(tmp_path / "sm"), "saved_model",
                             export.sample_images(model))


def test_export_refuses_to_overwrite_and_names_bad_arguments(tiny, tmp_path):
    model, _ = tiny
    (tmp_path / "m.tflite").write_text("mine")
    with pytest.raises(ValueError, match="exists"):
        export.export_model(model, tmp_path / "m.tflite", format="tflite")
    assert (tmp_path / "m.tflite").read_text() == "mine"
    with pytest.raises(ValueError, match="`format`"):
        export.export_model(model, tmp_path / "x", format="coreml")
    with pytest.raises(ValueError, match="end in '.onnx'"):
        export.export_model(model, tmp_path / "x.bin", format="onnx")


def test_cli_export_in_a_fresh_process(tiny, tmp_path):
    _, path = tiny
    out = tmp_path / "digits.tflite"
    run = subprocess.run(
        [sys.executable, "-m", "keras_vit", "export", str(path), "--format", "tflite",
         "--output", str(out), "--batch-size", "2"],
        cwd=ROOT, capture_output=True, text=True, timeout=300,
    )
    assert run.returncode == 0, run.stderr
    report = json.loads(run.stdout[run.stdout.index("{"):])
    assert out.is_file() and report["num_images"] == 2
    assert report["max_abs_difference"] <= 1e-3 * report["scale"]
    again = subprocess.run(
        [sys.executable, "-m", "keras_vit", "export", str(path), "--format", "tflite",
         "--output", str(out), "--no-verify"],
        cwd=ROOT, capture_output=True, text=True, timeout=300,
    )
    assert again.returncode == 1
    assert again.stderr.strip().splitlines()[-1].startswith("keras-vit export: error:")
    assert "--overwrite" in again.stderr


def test_sample_images_take_the_models_non_square_size():
    model = keras_vit.ViT(image_size=(8, 12), patch_size=4, num_channels=3, hidden_size=16,
                          num_layers=1, num_heads=2, mlp_dim=16, num_classes=2)
    images = export.sample_images(model, batch_size=3, seed=1)
    assert images.shape == (3, 8, 12, 3) and images.dtype == np.float32
    assert 0.0 <= images.min() and images.max() <= 255.0 and images.std() > 50
    np.testing.assert_array_equal(images, export.sample_images(model, batch_size=3, seed=1))
    assert not np.array_equal(images, export.sample_images(model, batch_size=3, seed=2))
