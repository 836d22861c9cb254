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
    match = re.match(r"vit_(tiny|small|base|large|huge)_patch(\d+)_", name or "")
    return f"{_SIZES[match.group(1)]}/{match.group(2)}" if match else None


def infer_config(tensors, source, meta=None):
    meta = meta or {}
    if "patch_embed.proj.weight" not in tensors:
        raise CheckpointError(
            f"{source} is not a timm ViT state dict: no `patch_embed.proj.weight`. "
            f"Its first keys: {sorted(tensors)[:5]}"
        )
    if "patch_embed.backbone.stem.conv.weight" in tensors or any(
            k.startswith("patch_embed.backbone") for k in tensors):
        raise CheckpointError(f"{source} is a hybrid timm ViT; not supported yet.")
    width, channels, patch, _ = tensors["patch_embed.proj.weight"].shape
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
    if "head.weight" in tensors:
        fields["num_classes"] = int(tensors["head.weight"].shape[0])
    if "pre_logits.fc.weight" in tensors:
        fields["representation_size"] = int(tensors["pre_logits.fc.weight"].shape[0])
    n_patches = None
    no_embed_class = False
    if "pos_embed" in tensors:
        n = tensors["pos_embed"].shape[1]
        side = int(round(np.sqrt(n)))
        # timm's `no_embed_class` models store no embedding for the class token.
        no_embed_class = class_token and side * side == n
        n_patches = n - (class_token and not no_embed_class)
    return fields, n_patches, dict(no_embed_class=no_embed_class)


def port(porter, config, layout):
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
