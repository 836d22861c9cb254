"""The fine-tuning kit: quantization, layer-wise decay, weight-decay exclusions, EMA, LoRA, remat."""

import os
import warnings

import keras
import numpy as np
import pytest

import keras_vit
from keras_vit import evaluation


def _tiny(**fields):
    config = dict(image_size=16, patch_size=4, num_channels=1, hidden_size=32, num_layers=2,
                  num_heads=2, mlp_dim=64, num_classes=10, drop_path_rate=0.1)
    config.update(fields)
    model = keras_vit.ViT(**config)
    rng = np.random.default_rng(1)
    for w in model.weights:  # the head is zero at init: perturb so outputs carry numbers
        w.assign(w.numpy() + rng.normal(0, 0.05, size=w.shape).astype("float32"))
    return model


def _quantize(model, mode):
    with warnings.catch_warnings():  # "Layer Dropout does not have a quantize method"
        warnings.simplefilter("ignore", UserWarning)
        model.quantize(mode)


@pytest.mark.portable
def test_int8_reaches_every_dense_inside_the_blocks_and_round_trips(tmp_path):
    model = _tiny()  # drop_path_rate > 0: DropPath layers are present
    reference = _tiny()
    reference.set_weights(model.get_weights())
    # Quantized straight after construction, never called: every layer is built already.
    _quantize(model, "int8")
    x = np.random.default_rng(0).uniform(0, 255, (4, 16, 16, 1)).astype("float32")
    before = keras.ops.convert_to_numpy(reference(x))
    quantized = model.get_config()["quantized_layers"]
    for i in range(2):
        for name in ("attention/qkv", "attention/output", "mlp/dense_1", "mlp/dense_2"):
            assert quantized[f"transformer_block_{i}/{name}"] == "int8"
    assert quantized["patch_embedding"] == quantized["head"] == "int8"
    after = keras.ops.convert_to_numpy(model(x))
    scale = np.abs(before).max()
    assert 0 < np.abs(after - before).max() < 0.05 * scale  # quantized, and still close
    model.save(tmp_path / "q.keras")
    loaded = keras.models.load_model(tmp_path / "q.keras")
    np.testing.assert_array_equal(keras.ops.convert_to_numpy(loaded(x)), after)
    assert loaded.get_config()["quantized_layers"] == quantized


@pytest.mark.skipif(not evaluation.DIGITS_MODEL.is_file(), reason="no shipped digits model")
def test_int8_keeps_the_digits_accuracy_and_shrinks_the_file(tmp_path):
    from keras_vit.data import load_digits_arrays

    x, y = load_digits_arrays("test")
    x = keras.ops.convert_to_numpy(keras.ops.image.resize(x, (16, 16), interpolation="bilinear"))
    model = evaluation.load_model(evaluation.DIGITS_MODEL)
    model.save(tmp_path / "float.keras")  # weights only, no optimizer state: a fair size
    accuracy = float((keras.ops.convert_to_numpy(model(x)).argmax(-1) == y).mean())
    _quantize(model, "int8")
    model.save(tmp_path / "int8.keras")
    loaded = keras.models.load_model(tmp_path / "int8.keras")
    quantized = float((keras.ops.convert_to_numpy(loaded(x)).argmax(-1) == y).mean())
    assert accuracy >= 0.98
    assert abs(quantized - accuracy) < 0.005
    assert os.path.getsize(tmp_path / "int8.keras") < 0.5 * os.path.getsize(tmp_path / "float.keras")
