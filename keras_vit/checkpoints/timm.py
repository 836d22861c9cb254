"""timm `VisionTransformer` state dicts in `.safetensors` (a file, or a hub folder).

Keys: `patch_embed.proj.weight` (D, C, P, P), `cls_token` (1, 1, D),
`pos_embed` (1, 1+N, D) (or (1, N, D) for `no_embed_class` models),
`blocks.{i}.norm1|norm2`, `blocks.{i}.attn.qkv` (3D, D) laid out [q|k|v]
head-major, `blocks.{i}.attn.proj`, `blocks.{i}.mlp.fc1|fc2`, `norm`, `head`.
Torch Linear weights are (out, in): Keras kernels are their transposes.

A state dict does not record the number of heads: it comes from `num_heads=`,
`variant=`, or a hub folder's config.json (`architecture`, e.g.
"vit_base_patch16_224.augreg_in21k"). timm's ViTs use exact GELU and
LayerNorm epsilon 1e-6; the AugReg and original weights take x / 127.5 - 1
(a hub config.json's `pretrained_cfg` mean/std take precedence).
"""

import re

import numpy as np

from keras_vit.checkpoints.port import CheckpointError, conv_to_dense_kernel
from keras_vit.checkpoints.npz import port_top

# timm's size names -> (the paper's / AugReg's) variant letters.
_SIZES = {"tiny": "Ti", "small": "S", "base": "B", "large": "L", "huge": "H"}


def variant_from_architecture(name):
    """"vit_base_patch16_224.augreg_in21k" -> "B/16", or None."""
    if re.match(r"vit_base_r50_s16_", name or ""):
        return "R50+B/16"
    match = re.match(r"vit_(tiny|small|base|large|huge)_patch(\d+)_", name or "")
    return f"{_SIZES[match.group(1)]}/{match.group(2)}" if match else None


def infer_config(tensors, source, meta=None):
    meta = meta or {}
    if "patch_embed.proj.weight" not in tensors:
        raise CheckpointError(
            f"{source} is not a timm ViT state dict: no `patch_embed.proj.weight`. "
            f"Its first keys: {sorted(tensors)[:5]}"
        )
    width, channels, patch, _ = tensors["patch_embed.proj.weight"].shape
    hybrid = hybrid_fields(tensors, source)
    if hybrid:
        channels = hybrid.pop("num_channels")
    layers = 0
    while f"blocks.{layers}.norm1.weight" in tensors:
        layers += 1
    class_token = "cls_token" in tensors
    fields = dict(
        patch_size=int(patch), num_channels=int(channels), hidden_size=int(width),
        num_layers=layers, mlp_dim=int(tensors["blocks.0.mlp.fc1.weight"].shape[0]),
        class_token=class_token, pooling="token" if class_token else "gap",
        layer_norm_epsilon=1e-6, gelu_approximate=False,
        normalization_mean=tuple(meta.get("mean", (0.5,))),
        normalization_std=tuple(meta.get("std", (0.5,))),
        position_embedding="learned" if "pos_embed" in tensors else "none",
    )
    fields.update(hybrid)
    if "head.weight" in tensors:
        fields["num_classes"] = int(tensors["head.weight"].shape[0])
    if "pre_logits.fc.weight" in tensors:
        fields["representation_size"] = int(tensors["pre_logits.fc.weight"].shape[0])
    n_patches = None
    no_embed_class = False
    if "pos_embed" in tensors:
        n = tensors["pos_embed"].shape[1]
        # timm's `no_embed_class` models store no embedding for the class token.
        # With the image size known, the grid decides; without it, a square count
        # says so (a 4x6 grid plus the class token also makes 25: pass image_size).
        side = int(round(np.sqrt(n)))
        no_embed_class = class_token and side * side == n
        image_size = meta.get("image_size")
        if class_token and image_size is not None:
            hw = (image_size, image_size) if isinstance(image_size, int) else tuple(image_size)
            layers = fields.get("hybrid_layers")
            step = int(patch) * (4 * 2 ** (len(layers) - 1) if layers else 1)
            tokens = (hw[0] // step) * (hw[1] // step)
            if n in (tokens, tokens + 1):  # else the model is resized from a square grid
                no_embed_class = n == tokens
        n_patches = n - (class_token and not no_embed_class)
    return fields, n_patches, dict(no_embed_class=no_embed_class)


_STEM = "patch_embed.backbone."


def hybrid_fields(tensors, source):
    """The hybrid ResNet stem's fields (timm's `ResNetV2`, preact=False), or {}."""
    if not any(k.startswith(_STEM) for k in tensors):
        return {}
    if f"{_STEM}stem.conv.weight" not in tensors:
        raise CheckpointError(
            f"{source}: a hybrid timm ViT whose backbone is not a BiT ResNet stem "
            f"(no `{_STEM}stem.conv.weight`); only R50-style hybrids are supported."
        )
    layers = []
    while f"{_STEM}stages.{len(layers)}.blocks.0.conv1.weight" in tensors:
        depth = 0
        while f"{_STEM}stages.{len(layers)}.blocks.{depth}.conv1.weight" in tensors:
            depth += 1
        layers.append(depth)
    width, channels = tensors[f"{_STEM}stem.conv.weight"].shape[:2]
    return dict(hybrid_layers=tuple(layers), hybrid_width=int(width), num_channels=int(channels))


def port_hybrid_stem(porter, config):
    """timm `ResNetV2` (StdConv2dSame, GroupNormAct) -> the "stem_*"/"stages_*" layers."""
    conv = lambda w: w.transpose(2, 3, 1, 0)  # noqa: E731  (O, I, kh, kw) -> (kh, kw, I, O)

    def conv_norm(src, conv_name, norm_name):
        porter.port(f"{src}{conv_name[0]}.weight", f"{conv_name[1]}/kernel", conv)
        porter.port(f"{src}{norm_name[0]}.weight", f"{norm_name[1]}/gamma")
        porter.port(f"{src}{norm_name[0]}.bias", f"{norm_name[1]}/beta")

    conv_norm(_STEM, ("stem.conv", "stem_conv"), ("stem.norm", "stem_norm"))
    for stage, depth in enumerate(config.hybrid_layers):
        for block in range(depth):
            src = f"{_STEM}stages.{stage}.blocks.{block}."
            dst = f"stages_{stage}_block_{block}_"
            if block == 0:
                conv_norm(src, ("downsample.conv", dst + "downsample_conv"),
                          ("downsample.norm", dst + "downsample_norm"))
            for i in (1, 2, 3):
                conv_norm(src, (f"conv{i}", f"{dst}conv{i}"), (f"norm{i}", f"{dst}norm{i}"))


def port(porter, config, layout):
    if config.hybrid_layers:
        port_hybrid_stem(porter, config)
    porter.port("patch_embed.proj.weight", "patch_embedding/kernel", conv_to_dense_kernel)
    porter.port("patch_embed.proj.bias", "patch_embedding/bias")
    if config.class_token:
        porter.port("cls_token", "patch_encoder/class_token")
    if config.position_embedding == "learned":
        path = "patch_encoder/position_embedding/embeddings"
        if layout["no_embed_class"]:
            porter.port("pos_embed", path, lambda p: np.concatenate([np.zeros_like(p[:, :1]), p], 1))
        else:
            porter.port("pos_embed", path)
    t = lambda w: w.T  # noqa: E731  (out, in) -> (in, out)
    for i in range(config.num_layers):
        src, dst = f"blocks.{i}.", f"transformer_block_{i}/"
        for s, k in (("norm1", "layer_norm_1"), ("norm2", "layer_norm_2")):
            porter.port(f"{src}{s}.weight", f"{dst}{k}/gamma")
            porter.port(f"{src}{s}.bias", f"{dst}{k}/beta")
        porter.port(f"{src}attn.qkv.weight", f"{dst}attention/qkv/kernel", t)
        porter.port(f"{src}attn.qkv.bias", f"{dst}attention/qkv/bias")
        porter.port(f"{src}attn.proj.weight", f"{dst}attention/output/kernel", t)
        porter.port(f"{src}attn.proj.bias", f"{dst}attention/output/bias")
        for s, k in (("fc1", "dense_1"), ("fc2", "dense_2")):
            porter.port(f"{src}mlp.{s}.weight", f"{dst}mlp/{k}/kernel", t)
            porter.port(f"{src}mlp.{s}.bias", f"{dst}mlp/{k}/bias")
    porter.port("norm.weight", "encoder_norm/gamma")
    porter.port("norm.bias", "encoder_norm/beta")
    port_top(porter, config, ("pre_logits.fc.weight", "pre_logits.fc.bias"),
             ("head.weight", "head.bias"), transpose=True)
