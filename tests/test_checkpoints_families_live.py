"""Live parity of the DINOv2 and SigLIP HF folders with transformers, where installed.

Skipped in the default environment; run in the reference one:

    KERAS_BACKEND=torch PYTHONPATH=. /work/refvenv/bin/python -m pytest -q \
        tests/test_checkpoints_families_live.py

Each test builds a fresh random model with transformers (every parameter
perturbed, so a dropped norm, bias or layer scale shows), saves it with
save_pretrained, converts the folder and compares features on the same raw
pixels, at the native size and at a non-square one that HF resizes to itself.
"""

import json

import numpy as np
import pytest

from tests.live import require

pytestmark = pytest.mark.live
torch = pytest.importorskip("torch")
transformers = require("transformers")

import keras  # noqa: E402

import keras_vit  # noqa: E402

MEAN, STD = (0.485, 0.456, 0.406), (0.229, 0.224, 0.225)


def perturb(model, seed):
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for name, p in model.named_parameters():
            noise = torch.randn(p.shape, generator=g)
            if "norm" in name and name.endswith("weight"):
                p.copy_(1 + 0.3 * noise)
            elif name.endswith("bias") or p.ndim < 2:
                p.copy_(0.2 * noise)
            else:
                p.copy_(noise / np.sqrt(p[0].numel()))
    return model.eval()


def save(model, folder, mean=MEAN, std=STD):
    model.save_pretrained(str(folder), safe_serialization=True)
    with open(folder / "preprocessor_config.json", "w") as f:
        json.dump({"do_rescale": True, "rescale_factor": 1 / 255, "do_normalize": True,
                   "image_mean": list(mean), "image_std": list(std)}, f)


def pixels(h, w, seed=0):
    return np.random.default_rng(seed).integers(0, 256, (2, h, w, 3)).astype("float32")


def torch_input(px, mean=MEAN, std=STD):
    x = torch.from_numpy(px / 255.0).permute(0, 3, 1, 2).float()
    return (x - torch.tensor(mean).reshape(-1, 1, 1)) / torch.tensor(std).reshape(-1, 1, 1)


def check(model, px, reference):
    out = keras.ops.convert_to_numpy(model(px))
    error = float(np.abs(out - reference).max() / np.abs(reference).max())
    assert error <= 1e-4, error
    return error


@pytest.mark.parametrize("registers", [0, 4])
def test_hf_dinov2_live(tmp_path, registers):
    kw = dict(hidden_size=24, num_hidden_layers=2, num_attention_heads=3, mlp_ratio=3,
              image_size=28, patch_size=14, layerscale_value=0.5)
    if registers:
        model = transformers.Dinov2WithRegistersModel(
            transformers.Dinov2WithRegistersConfig(num_register_tokens=registers, **kw))
    else:
        model = transformers.Dinov2Model(transformers.Dinov2Config(**kw))
    perturb(model, 3 + registers)
    save(model, tmp_path)
    for hw in ((28, 28), (42, 70), (14, 28)):
        px = pixels(*hw, seed=hw[1])
        with torch.no_grad():
            reference = model(torch_input(px)).pooler_output.numpy()
        check(keras_vit.convert_checkpoint(str(tmp_path), image_size=hw), px, reference)


@pytest.mark.parametrize("full", [False, True])
def test_hf_siglip_live(tmp_path, full):
    """SiglipVisionModel, and a whole SiglipModel (text tower dropped)."""
    vision = dict(hidden_size=24, intermediate_size=40, num_hidden_layers=2,
                  num_attention_heads=3, image_size=24, patch_size=6)
    if full:
        config = transformers.SiglipConfig(
            vision_config=vision, text_config=dict(hidden_size=16, intermediate_size=32,
                                                   num_hidden_layers=1, num_attention_heads=2,
                                                   vocab_size=50))
        model = perturb(transformers.SiglipModel(config), 5)
        tower = model.vision_model
    else:
        model = tower = perturb(transformers.SiglipVisionModel(
            transformers.SiglipVisionConfig(**vision)), 4)
    save(model, tmp_path, (0.5,) * 3, (0.5,) * 3)
    for hw in ((24, 24), (30, 42)):
        px = pixels(*hw, seed=hw[1])
        with torch.no_grad():
            reference = tower(torch_input(px, (0.5,) * 3, (0.5,) * 3),
                              interpolate_pos_encoding=hw != (24, 24)).pooler_output.numpy()
        check(keras_vit.convert_checkpoint(str(tmp_path), image_size=hw), px, reference)


def test_hf_siglip_without_head_live(tmp_path):
    """vision_use_head=False: no MAP head, so the features are every token (pooling=None)."""
    config = transformers.SiglipVisionConfig(
        hidden_size=24, intermediate_size=40, num_hidden_layers=2, num_attention_heads=3,
        image_size=24, patch_size=6, vision_use_head=False)
    model = perturb(transformers.SiglipVisionModel(config), 6)
    save(model, tmp_path, (0.5,) * 3, (0.5,) * 3)
    converted = keras_vit.convert_checkpoint(str(tmp_path))
    assert converted.config.pooling is None
    px = pixels(24, 24)
    with torch.no_grad():
        reference = model(torch_input(px, (0.5,) * 3, (0.5,) * 3)).last_hidden_state.numpy()
    check(converted, px, reference)


@pytest.mark.parametrize("arch", ["vit_small_patch14_dinov2", "vit_small_patch14_reg4_dinov2"])
def test_timm_dinov2_live(tmp_path, arch):
    """timm's DINOv2 (layer scale, patch 14, registers with no_embed_class) as a bare state
    dict, at its size and at one timm builds from it (its checkpoint_filter_fn's resize)."""
    timm = require("timm")
    from safetensors.torch import save_file
    from timm.models.vision_transformer import checkpoint_filter_fn

    kw = dict(embed_dim=24, depth=2, num_heads=3, mlp_ratio=2, num_classes=0)
    model = perturb(timm.create_model(arch, img_size=28, **kw), 7)
    save_file(model.state_dict(), str(tmp_path / "m.safetensors"))
    resized = timm.create_model(arch, img_size=(42, 56), **kw).eval()
    resized.load_state_dict(checkpoint_filter_fn(model.state_dict(), resized))
    for hw, reference_model in (((28, 28), model), ((42, 56), resized)):
        px = pixels(*hw, seed=hw[1])
        with torch.no_grad():
            reference = reference_model(torch_input(px)).numpy()
        converted = keras_vit.convert_checkpoint(
            str(tmp_path / "m.safetensors"), num_heads=3, image_size=hw,
            normalization_mean=MEAN, normalization_std=STD, include_top=False)
        check(converted, px, reference)
