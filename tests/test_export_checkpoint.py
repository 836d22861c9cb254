"""`export_checkpoint` / `keras-vit convert MODEL.keras --to timm|hf`: back out to PyTorch.

The default run round-trips keras_vit -> timm / HF folder -> keras_vit's own
loader (the importers are checked against timm and HF elsewhere), on non-square
images with perturbed weights; the live tests load the folders with timm and
transformers themselves (skipped where they are absent; run them with the
reference venv:

    KERAS_BACKEND=torch PYTHONPATH=. /work/refvenv/bin/python -m pytest -q \
        tests/test_export_checkpoint.py -p no:cacheprovider
"""

import json
import os
import subprocess
import sys

import numpy as np
import pytest

import keras_vit
from keras_vit.checkpoints import CheckpointError
from keras_vit.checkpoints.export import export_checkpoint
from tests.live import require

TINY = dict(image_size=(32, 48), patch_size=16, hidden_size=32, num_layers=2, num_heads=2,
            mlp_dim=64, num_classes=5)
CASES = {
    "token": dict(),
    "map_qknorm_ls": dict(pooling="map", class_token=False, qk_norm=True,
                          layer_scale_init_value=0.1, qkv_bias=False),
    "gap_fcnorm_reg": dict(pooling="gap", fc_norm=True, num_register_tokens=2,
                           gelu_approximate=True, normalization_mean=(0.485, 0.456, 0.406),
                           normalization_std=(0.229, 0.224, 0.225)),
}


def perturbed(seed=0, **fields):
    model = keras_vit.ViT(**dict(TINY, **fields))
    rng = np.random.default_rng(seed)
    for v in model.weights:  # every weight off its init, so a dropped norm or bias shows
        v.assign(v.numpy() + rng.normal(0, 0.2, v.shape).astype("float32"))
    return model


def pixels(h=32, w=48, seed=1):
    return np.random.default_rng(seed).uniform(0, 255, (2, h, w, 3)).astype("float32")


def logits(model, x):
    import keras

    return keras.ops.convert_to_numpy(model(x))


@pytest.mark.parametrize("fmt, case", [("timm", c) for c in CASES] + [("hf", "token")])
def test_round_trip(tmp_path, fmt, case):
    model = perturbed(**CASES[case])
    written = export_checkpoint(model, tmp_path / "out", format=fmt)
    assert sorted(os.listdir(tmp_path)) == ["out"]  # no temporary left beside it
    assert all(os.path.isfile(p) for p in written)
    back = keras_vit.convert_checkpoint(str(tmp_path / "out"))
    x = pixels()
    a, b = logits(model, x), logits(back, x)
    assert np.abs(a - b).max() <= 1e-5 * np.abs(a).max()
    assert back.config.image_size == (32, 48)
    assert back.config.normalization_mean == pytest.approx(
        model.config.normalization_mean * (3 if len(model.config.normalization_mean) == 1 else 1))


def after_surgery_and_finetuning():
    """A model as a user exports it: a new head and grid (surgery), a LoRA fine-tune
    merged back, so the exported tensors are not the ones the model was built with."""
    model = perturbed(seed=5)
    model = keras_vit.replace_head(model, num_classes=4)
    model = keras_vit.resize_position_embeddings(model, (48, 64))  # grid 2x3 -> 3x4
    keras_vit.enable_lora(model, 2)
    rng = np.random.default_rng(6)
    for v in model.trainable_weights:  # stands in for the fine-tuning steps
        v.assign(v.numpy() + rng.normal(0, 0.2, v.shape).astype("float32"))
    return keras_vit.merge_lora(model)


@pytest.mark.parametrize("fmt", ["timm", "hf"])
def test_round_trip_after_surgery_and_finetuning(tmp_path, fmt):
    model = after_surgery_and_finetuning()
    assert model.config.image_size == (48, 64) and model.config.num_classes == 4
    export_checkpoint(model, tmp_path / "out", format=fmt)
    back = keras_vit.convert_checkpoint(str(tmp_path / "out"))
    x = pixels(48, 64)
    a, b = logits(model, x), logits(back, x)
    assert a.shape == (2, 4)
    assert np.abs(a - b).max() <= 1e-5 * np.abs(a).max()


def test_hf_backbone_round_trip(tmp_path):
    model = perturbed(include_top=False, pooling=None)
    export_checkpoint(model, tmp_path / "hf", format="hf")
    cfg = json.loads((tmp_path / "hf" / "config.json").read_text())
    assert cfg["architectures"] == ["ViTModel"] and "id2label" not in cfg
    back = keras_vit.convert_checkpoint(str(tmp_path / "hf"), include_top=False, pooling=None)
    x = pixels()
    assert np.abs(logits(model, x) - logits(back, x)).max() <= 1e-5 * np.abs(logits(model, x)).max()


def test_refuses_what_the_target_cannot_build(tmp_path):
    with pytest.raises(CheckpointError, match=r"cannot export to hf.*pooling='gap'"):
        export_checkpoint(perturbed(pooling="gap"), tmp_path / "a", format="hf")
    with pytest.raises(CheckpointError, match=r"cannot export to timm.*representation_size=8"):
        export_checkpoint(perturbed(representation_size=8), tmp_path / "b", format="timm")
    with pytest.raises(CheckpointError, match=r"layer_norm_epsilon=1e-05"):
        export_checkpoint(perturbed(layer_norm_epsilon=1e-5), tmp_path / "c", format="timm")
    with pytest.raises(CheckpointError, match=r"format must be one of"):
        export_checkpoint(perturbed(), tmp_path / "d", format="onnx")
    assert not os.listdir(tmp_path)


def test_never_overwrites_unasked(tmp_path):
    out = tmp_path / "out"
    out.mkdir()
    (out / "config.json").write_text("{}")
    (out / "notes.txt").write_text("mine")
    with pytest.raises(CheckpointError, match=r"already has config.json; pass overwrite=True"):
        export_checkpoint(perturbed(), out, format="timm")
    assert (out / "config.json").read_text() == "{}"
    export_checkpoint(perturbed(), out, format="timm", overwrite=True)
    assert (out / "notes.txt").read_text() == "mine"
    assert json.loads((out / "config.json").read_text())["architecture"]


def test_cli_convert_to(tmp_path, capsys):
    from keras_vit.cli import main

    model = perturbed(num_classes=3)
    model.save(tmp_path / "m.keras")
    argv = ["convert", str(tmp_path / "m.keras"), "--to", "hf", "--output", str(tmp_path / "hf")]
    run = subprocess.run([sys.executable, "-m", "keras_vit", *argv], capture_output=True,
                         text=True)
    assert run.returncode == 0, run.stderr
    assert "wrote hf folder" in run.stdout
    capsys.readouterr()
    assert main(argv) != 0  # the same again: refused in one line, nothing replaced
    err = capsys.readouterr().err
    assert len(err.strip().splitlines()) == 1 and "already has config.json" in err, err
    back = keras_vit.convert_checkpoint(str(tmp_path / "hf"))
    x = pixels()
    assert np.abs(logits(model, x) - logits(back, x)).max() <= 1e-5 * np.abs(logits(model, x)).max()


# Live: timm and transformers themselves load the folders.

def _torch_input(model, x):
    import torch

    c = model.config
    mean = np.broadcast_to(np.asarray(c.normalization_mean, "float32"), (3,))
    std = np.broadcast_to(np.asarray(c.normalization_std, "float32"), (3,))
    return torch.from_numpy(((x / 255 - mean) / std).transpose(0, 3, 1, 2).copy())


@pytest.mark.live
@pytest.mark.parametrize("case", list(CASES) + ["other_size_head", "after_surgery"])
def test_timm_live(tmp_path, case):
    timm = require("timm")
    torch = require("torch")

    if case == "after_surgery":
        model = after_surgery_and_finetuning()
    else:
        model = perturbed(seed=3, **CASES.get(case, dict(image_size=(48, 32), num_classes=7)))
    export_checkpoint(model, tmp_path / "t", format="timm")
    cfg = json.loads((tmp_path / "t" / "config.json").read_text())
    ref = timm.create_model(
        cfg["architecture"], pretrained=True, **cfg["model_args"],
        pretrained_cfg_overlay=dict(cfg["pretrained_cfg"],
                                    file=str(tmp_path / "t" / "model.safetensors"))).eval()
    # timm's own reader of a local hub folder (config.json's model_args)
    own = timm.create_model(f"local-dir:{tmp_path / 't'}", pretrained=True).eval()
    h, w = model.config.image_size
    x = pixels(h, w)
    got = logits(model, x)
    for net in (ref, own):
        with torch.no_grad():
            want = net(_torch_input(model, x)).numpy()
        assert want.shape == got.shape
        assert np.abs(want - got).max() <= 1e-4 * np.abs(want).max()


@pytest.mark.live
@pytest.mark.parametrize("top", [True, False, "after_surgery"])
def test_hf_live(tmp_path, top):
    transformers = require("transformers")
    torch = require("torch")

    if top == "after_surgery":
        model = after_surgery_and_finetuning()
    else:
        model = perturbed(seed=4, **(dict(image_size=(48, 32), num_classes=7) if top else dict(
            include_top=False, pooling=None)))
    export_checkpoint(model, tmp_path / "h", format="hf")
    if top:
        ref, info = transformers.ViTForImageClassification.from_pretrained(
            str(tmp_path / "h"), output_loading_info=True)
    else:
        ref, info = transformers.ViTModel.from_pretrained(
            str(tmp_path / "h"), add_pooling_layer=False, output_loading_info=True)
    assert not info["missing_keys"] and not info["unexpected_keys"], info
    h, w = model.config.image_size
    x = pixels(h, w)
    with torch.no_grad():
        out = ref.eval()(pixel_values=_torch_input(model, x))
    want = (out.logits if top else out.last_hidden_state).numpy()
    got = logits(model, x)
    assert want.shape == got.shape
    assert np.abs(want - got).max() <= 1e-4 * np.abs(want).max()
