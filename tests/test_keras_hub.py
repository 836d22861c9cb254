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
