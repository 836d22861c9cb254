"""keras-hub ViTBackbone presets: parity with keras-hub's own forward pass on a
committed tiny preset (tests/fixtures/make_keras_hub_fixture.py, perturbed weights,
non-square 32x48 images, 2 blocks)."""

import json
import os
import shutil

import numpy as np
import pytest

from keras_vit.checkpoints import CheckpointError
from keras_vit.checkpoints.keras_hub import load_preset

HERE = os.path.join(os.path.dirname(__file__), "fixtures", "keras_hub")


def test_backbone_preset_matches_keras_hub():
    import keras

    model = load_preset(os.path.join(HERE, "vit_backbone"))
    ref = np.load(os.path.join(HERE, "outputs.npz"))
    got = keras.ops.convert_to_numpy(model(ref["inputs"]))
    want = ref["tokens"]
    assert got.shape == want.shape == (2, 7, 16)
    assert np.abs(got - want).max() <= 1e-4 * np.abs(want).max()


def test_unsupported_preset_fields_refused(tmp_path):
    folder = tmp_path / "p"
    shutil.copytree(os.path.join(HERE, "vit_backbone"), folder)
    spec = json.loads((folder / "config.json").read_text())
    spec["config"]["use_mha_bias"] = False
    (folder / "config.json").write_text(json.dumps(spec))
    with pytest.raises(CheckpointError, match=r"use_mha_bias=False is not supported"):
        load_preset(str(folder))
    spec["config"]["use_mha_bias"] = True
    spec["config"]["rope"] = True
    (folder / "config.json").write_text(json.dumps(spec))
    with pytest.raises(CheckpointError, match=r"config fields \['rope'\] are not supported"):
        load_preset(str(folder))


def test_preset_through_convert_and_the_cli(tmp_path):
    import subprocess
    import sys

    import keras

    import keras_vit

    preset = os.path.join(HERE, "vit_backbone")
    ref = np.load(os.path.join(HERE, "outputs.npz"))
    model = keras_vit.convert_checkpoint(preset)
    got = keras.ops.convert_to_numpy(model(ref["inputs"]))
    assert np.abs(got - ref["tokens"]).max() <= 1e-4 * np.abs(ref["tokens"]).max()
    with pytest.raises(CheckpointError, match=r"keras-hub preset, loaded as it is"):
        keras_vit.ViT(weights=preset, num_classes=3)
    run = subprocess.run([sys.executable, "-m", "keras_vit", "convert", preset, "--output",
                          str(tmp_path / "m.keras")], capture_output=True, text=True)
    assert run.returncode == 0, run.stderr


CLASSIFIER = os.path.join(HERE, "vit_classifier")


def test_classifier_preset_matches_keras_hub_from_pixels():
    # keras-hub's logits through its own preprocessor (per-channel scale and offset) and
    # its tanh intermediate layer, from [0, 255] pixels: the converter became the
    # model's normalisation, the head and pre-logits layer were read from task.weights.h5.
    import keras

    model = load_preset(CLASSIFIER)
    ref = np.load(os.path.join(HERE, "classifier_outputs.npz"))
    got = keras.ops.convert_to_numpy(model(ref["pixels"]))
    want = ref["logits"]
    assert got.shape == want.shape == (2, 5)
    assert np.abs(got - want).max() <= 1e-4 * np.abs(want).max()
    c = model.config
    assert (c.num_classes, c.representation_size, c.pooling) == (5, 12, "token")
    assert c.normalization_mean == pytest.approx((0.485, 0.456, 0.406))
    assert c.normalization_std == pytest.approx((0.229, 0.224, 0.225))


def _edited_task(tmp_path, **fields):
    folder = tmp_path / "p"
    shutil.copytree(CLASSIFIER, folder)
    spec = json.loads((folder / "task.json").read_text())
    spec["config"].update(fields)
    (folder / "task.json").write_text(json.dumps(spec))
    return str(folder)


@pytest.mark.parametrize("fields, message", [
    (dict(pooling="gap"), "pooling='gap' is not supported .* averages the class token"),
    (dict(activation="softmax"), "activation='softmax' is not supported: keras_vit's head "
                                 "returns logits"),
    (dict(num_classes=7), r"head/kernel.*\(12, 7\)|shape"),
    (dict(intermediate_dim=None), r"has 2 Dense layer\(s\) \(dense, dense_1\); task.json.s "
                                  "intermediate_dim=None means 1"),
    (dict(rope=True), r"config fields \['rope'\] are not supported"),
])
def test_classifier_fields_that_do_not_fit_are_refused(tmp_path, fields, message):
    with pytest.raises(CheckpointError, match=message) as error:
        load_preset(_edited_task(tmp_path, **fields))
    assert "task.json" in str(error.value) or "task.weights.h5" in str(error.value)


def test_a_classifier_without_its_weights_file_is_refused(tmp_path):
    folder = _edited_task(tmp_path)
    os.remove(os.path.join(folder, "task.weights.h5"))
    with pytest.raises(CheckpointError, match="has task.json but no task.weights.h5"):
        load_preset(folder)


@pytest.mark.live
@pytest.mark.parametrize("image_shape, patch_size", [((48, 32, 3), 16), ((28, 42, 1), 14)])
def test_backbone_preset_live(tmp_path, image_shape, patch_size):
    """Where keras-hub is installed: a fresh random ViTBackbone (weights drawn off their
    init, so a dropped norm or bias shows), saved with its own save_to_preset."""
    from tests.live import require

    keras_hub = require("keras_hub")
    import keras

    backbone = keras_hub.models.ViTBackbone(
        image_shape=image_shape, patch_size=patch_size, num_layers=2, num_heads=3,
        hidden_dim=24, mlp_dim=40)
    rng = np.random.default_rng(5)
    for v in backbone.weights:
        v.assign(keras.ops.convert_to_numpy(v) + rng.normal(0, 0.2, v.shape).astype("float32"))
    backbone.save_to_preset(str(tmp_path / "preset"))
    x = rng.normal(0, 1, (2, *image_shape)).astype("float32")
    want = keras.ops.convert_to_numpy(backbone(x))
    got = keras.ops.convert_to_numpy(load_preset(str(tmp_path / "preset"))(x))
    assert got.shape == want.shape
    assert np.abs(got - want).max() <= 1e-4 * np.abs(want).max()
