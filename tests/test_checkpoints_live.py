"""Live parity with timm and HF transformers, where they are installed.

Skipped in the default environment; run in the reference one:

    KERAS_BACKEND=jax PYTHONPATH=. /root/venv-ref/bin/python -m pytest -q tests/test_checkpoints_live.py

Each test builds a fresh random model with the reference library (non-square
images, other activations), writes it in its own format, converts it and
compares logits on the same raw pixels.
"""

import functools

import numpy as np
import pytest

from tests.live import require

pytestmark = pytest.mark.live
torch = pytest.importorskip("torch")
pytest.importorskip("safetensors.torch")

import keras  # noqa: E402

import keras_vit  # noqa: E402


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


def pixels(h, w, seed=0):
    return np.random.default_rng(seed).integers(0, 256, (2, h, w, 3)).astype("float32")


def check(model, px, reference):
    out = keras.ops.convert_to_numpy(model(px))  # any backend's tensor, torch's included
    assert np.abs(out - reference).max() <= 1e-4 * np.abs(reference).max()
    return float(np.abs(out - reference).max())


@pytest.mark.parametrize("image, class_token, no_embed_class", [
    ((32, 24), True, False), ((32, 32), False, False), ((24, 24), True, True)])
def test_timm_live(tmp_path, image, class_token, no_embed_class):
    vt = require("timm.models.vision_transformer")
    from safetensors.torch import save_file

    model = vt.VisionTransformer(
        img_size=image, patch_size=8, embed_dim=24, depth=2, num_heads=3, mlp_ratio=2,
        num_classes=4, class_token=class_token, no_embed_class=no_embed_class,
        global_pool="token" if class_token else "avg", fc_norm=False).eval()
    perturb(model, 1)
    save_file(model.state_dict(), str(tmp_path / "m.safetensors"))
    px = pixels(*image)
    with torch.no_grad():
        ref = model((torch.from_numpy(px).permute(0, 3, 1, 2) / 255 - 0.5) / 0.5).numpy()
    converted = keras_vit.convert_checkpoint(
        str(tmp_path / "m.safetensors"), num_heads=3, image_size=image)
    check(converted, px, ref)


@pytest.mark.parametrize("act", ["gelu", "gelu_pytorch_tanh"])
def test_hf_live(tmp_path, act):
    transformers = require("transformers")
    config = transformers.ViTConfig(
        hidden_size=24, num_hidden_layers=2, num_attention_heads=3, intermediate_size=40,
        image_size=32, patch_size=8, num_labels=4, hidden_act=act, layer_norm_eps=1e-6)
    model = transformers.ViTForImageClassification(config).eval()
    perturb(model, 2)
    model.save_pretrained(tmp_path)
    px = pixels(32, 32)
    with torch.no_grad():
        ref = model(pixel_values=(torch.from_numpy(px).permute(0, 3, 1, 2) / 255 - 0.5) / 0.5).logits.numpy()
    check(keras_vit.convert_checkpoint(str(tmp_path)), px, ref)


def test_hf_vit_model_pooler_is_pre_logits(tmp_path):
    transformers = require("transformers")
    config = transformers.ViTConfig(
        hidden_size=24, num_hidden_layers=1, num_attention_heads=2, intermediate_size=40,
        image_size=32, patch_size=8)
    model = transformers.ViTModel(config, add_pooling_layer=True).eval()
    perturb(model, 3)
    model.save_pretrained(tmp_path)
    px = pixels(32, 32)
    with torch.no_grad():
        ref = model(pixel_values=(torch.from_numpy(px).permute(0, 3, 1, 2) / 255 - 0.5) / 0.5).pooler_output.numpy()
    converted = keras_vit.convert_checkpoint(str(tmp_path), num_classes=3)  # new zero head
    assert converted.config.representation_size == 24
    import keras

    features = keras.Model(converted.input, converted.get_layer("pre_logits").output)
    check(features, px, ref)
    assert not keras.ops.convert_to_numpy(converted(px)).any()  # the zero head


def test_original_npz_live_against_timm_load_weights(tmp_path):
    """An .npz written from a timm model by the inverse mapping, read back by timm."""
    vt = require("timm.models.vision_transformer")
    d, heads = 24, 3
    gelu_tanh = functools.partial(torch.nn.GELU, approximate="tanh")
    model = vt.VisionTransformer(img_size=32, patch_size=8, embed_dim=d, depth=2, num_heads=heads,
                                 mlp_ratio=2, num_classes=4, act_layer=gelu_tanh).eval()
    perturb(model, 4)
    w = {k: v.detach().numpy() for k, v in model.state_dict().items()}
    out = {
        "embedding/kernel": w["patch_embed.proj.weight"].transpose(2, 3, 1, 0),
        "embedding/bias": w["patch_embed.proj.bias"], "cls": w["cls_token"],
        "Transformer/posembed_input/pos_embedding": w["pos_embed"],
        "Transformer/encoder_norm/scale": w["norm.weight"], "Transformer/encoder_norm/bias": w["norm.bias"],
        "head/kernel": w["head.weight"].T, "head/bias": w["head.bias"],
    }
    for i in range(2):
        b, s = f"blocks.{i}.", f"Transformer/encoderblock_{i}/"
        out.update({f"{s}LayerNorm_0/scale": w[b + "norm1.weight"], f"{s}LayerNorm_0/bias": w[b + "norm1.bias"],
                    f"{s}LayerNorm_2/scale": w[b + "norm2.weight"], f"{s}LayerNorm_2/bias": w[b + "norm2.bias"]})
        qkv_w, qkv_b = w[b + "attn.qkv.weight"], w[b + "attn.qkv.bias"]
        for j, n in enumerate(("query", "key", "value")):
            out[f"{s}MultiHeadDotProductAttention_1/{n}/kernel"] = qkv_w[j * d:(j + 1) * d].T.reshape(d, heads, -1)
            out[f"{s}MultiHeadDotProductAttention_1/{n}/bias"] = qkv_b[j * d:(j + 1) * d].reshape(heads, -1)
        out[f"{s}MultiHeadDotProductAttention_1/out/kernel"] = w[b + "attn.proj.weight"].T.reshape(heads, -1, d)
        out[f"{s}MultiHeadDotProductAttention_1/out/bias"] = w[b + "attn.proj.bias"]
        for j, fc in enumerate(("fc1", "fc2")):
            out[f"{s}MlpBlock_3/Dense_{j}/kernel"] = w[f"{b}mlp.{fc}.weight"].T
            out[f"{s}MlpBlock_3/Dense_{j}/bias"] = w[f"{b}mlp.{fc}.bias"]
    np.savez(tmp_path / "m.npz", **out)
    reread = vt.VisionTransformer(img_size=32, patch_size=8, embed_dim=d, depth=2, num_heads=heads,
                                  mlp_ratio=2, num_classes=4, act_layer=gelu_tanh).eval()
    vt._load_weights(reread, str(tmp_path / "m.npz"))
    px = pixels(32, 32)
    x = (torch.from_numpy(px).permute(0, 3, 1, 2) / 255 - 0.5) / 0.5
    with torch.no_grad():
        ref, ref2 = model(x).numpy(), reread(x).numpy()
    np.testing.assert_allclose(ref, ref2, atol=1e-5)  # the inverse mapping is right
    check(keras_vit.convert_checkpoint(str(tmp_path / "m.npz")), px, ref)


def test_timm_hybrid_live(tmp_path):
    """R50+ViT: timm's ResNetV2 (preact=False, "same" stem, StdConv2dSame eps 1e-8,
    GroupNorm) under HybridEmbed, made tiny, against the Keras hybrid stem."""
    vt = require("timm.models.vision_transformer")
    from safetensors.torch import save_file
    from timm.layers import StdConv2dSame
    from timm.models.resnetv2 import ResNetV2
    from timm.models.vision_transformer_hybrid import HybridEmbed

    backbone = ResNetV2(
        layers=(1, 2), channels=(128, 256), stem_chs=32, num_classes=0, global_pool="",
        in_chans=3, preact=False, stem_type="same",
        conv_layer=functools.partial(StdConv2dSame, eps=1e-8))
    model = vt.VisionTransformer(
        img_size=(32, 48), patch_size=1, embed_dim=32, depth=2, num_heads=2, mlp_ratio=2,
        num_classes=3, embed_layer=functools.partial(HybridEmbed, backbone=backbone)).eval()
    perturb(model, 4)
    save_file(model.state_dict(), str(tmp_path / "m.safetensors"))
    px = pixels(32, 48)
    with torch.no_grad():
        ref = model((torch.from_numpy(px).permute(0, 3, 1, 2) / 255 - 0.5) / 0.5).numpy()
    keras_model = keras_vit.convert_checkpoint(
        str(tmp_path / "m.safetensors"), num_heads=2, image_size=(32, 48))
    c = keras_model.config
    assert (c.hybrid_layers, c.hybrid_width, c.grid_size) == ((1, 2), 32, (4, 6))
    check(keras_model, px, ref)
