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

from keras_vit.checkpoints.port import CheckpointError, conv_to_dense_kernel, port_top
from keras_vit.checkpoints.validate import (
    TIMM_CONFIG_FIELDS, TIMM_PRETRAINED_CFG_FIELDS, check_fields)
from keras_vit.models.config import stem_stride
from keras_vit.models.variants import variant_config
from keras_vit.utils import to_hw

# timm's size names -> (the paper's / AugReg's) variant letters.
_SIZES = {"tiny": "Ti", "small": "S", "base": "B", "large": "L", "huge": "H"}


def variant_from_architecture(name):
    """"vit_base_patch16_224.augreg_in21k" -> "B/16", or None."""
    if re.match(r"vit_base_r50_s16_", name or ""):
        return "R50+B/16"
    match = re.match(r"vit_(tiny|small|base|large|huge)_patch(\d+)_", name or "")
    return f"{_SIZES[match.group(1)]}/{match.group(2)}" if match else None


# timm model_args this converter honours (the rest are refused by name).
_ARGS = ("img_size", "patch_size", "in_chans", "num_classes", "embed_dim", "depth",
         "num_heads", "mlp_ratio", "global_pool", "fc_norm", "class_token", "no_embed_class",
         "reg_tokens", "act_layer", "qkv_bias", "init_values", "pos_embed", "pre_norm",
         "qk_norm", "proj_bias", "dynamic_img_size", "drop_rate", "pos_drop_rate",
         "proj_drop_rate", "attn_drop_rate", "drop_path_rate", "weight_init",
         "distilled", "representation_size", "dynamic_img_pad")
_ACTS = {"gelu": False, "gelu_tanh": True, "quick_gelu": False}
# What a bare state dict does not record, and where its default comes from
# (timm's own defaults; a hub folder's config.json settles them).
UNRECORDED = ("gelu_approximate", "quick_gelu", "layer_norm_epsilon")


def hub_meta(cfg, source):
    """What a timm hub config.json (`save_for_hf` / `push_to_hf_hub`) says.

    Reads `architecture`, `num_classes`, `global_pool`, `pretrained_cfg`
    (mean, std) and every `model_args` entry; an argument whose effect this
    model cannot reproduce is refused by name.
    """
    check_fields(cfg, TIMM_CONFIG_FIELDS, source)
    check_fields(cfg.get("pretrained_cfg") or {}, TIMM_PRETRAINED_CFG_FIELDS, source)
    args = dict(cfg.get("model_args") or {})
    unknown = sorted(set(args) - set(_ARGS))
    if unknown:
        raise CheckpointError(
            f"{source}: model_args {unknown} are not supported by keras_vit (it would "
            "build another network than timm does)."
        )
    refuse = {
        "proj_bias": (False, "attention and MLP projections without bias"),
        "dynamic_img_pad": (True, "padding images to a patch multiple"),
        "distilled": (True, "a distilled head outside DeiT's layout"),
    }
    for key, (bad, what) in refuse.items():
        if args.get(key) == bad:
            raise CheckpointError(
                f"{source}: model_args {key}={bad!r} ({what}) is not supported by keras_vit."
            )
    if args.get("pos_embed", "learn") not in ("learn", "none"):
        raise CheckpointError(
            f"{source}: model_args pos_embed={args['pos_embed']!r} is not supported "
            "(learned absolute embeddings or none only)."
        )
    act = args.get("act_layer", "gelu")
    if act not in _ACTS:
        raise CheckpointError(
            f"{source}: model_args act_layer={act!r} is not supported (gelu, gelu_tanh, "
            "quick_gelu)."
        )
    pool = args.get("global_pool", cfg.get("global_pool", "token"))
    if pool not in ("token", "avg", "map"):
        raise CheckpointError(
            f"{source}: global_pool={pool!r} is not supported ('token', 'avg' or 'map'; "
            "'avgmax', 'max' and 'prr' are not built here)."
        )
    pre = cfg.get("pretrained_cfg", {})
    meta = {k: pre[k] for k in ("mean", "std") if k in pre}
    variant = variant_from_architecture(cfg.get("architecture"))
    if variant and any(k in args for k in ("patch_size", "embed_dim", "depth", "mlp_ratio",
                                           "num_heads")):
        # The architecture's name is where model_args started from, not what they built.
        args.setdefault("num_heads", variant_config(variant).num_heads)
        variant = None
    meta["variant"] = variant
    meta["args"] = args
    meta["global_pool"] = pool
    arch = cfg.get("architecture") or ""
    if "quickgelu" in arch:  # vit_*_clip_quickgelu_*: act_layer='quick_gelu' in its builder
        act = args.get("act_layer", "quick_gelu")
    meta["gelu_approximate"] = _ACTS[act]
    meta["quick_gelu"] = act == "quick_gelu"
    if "_clip_" in arch or args.get("pre_norm"):  # CLIP towers: LayerNorm(eps=1e-5)
        meta["layer_norm_epsilon"] = 1e-5
    meta["recorded"] = UNRECORDED  # a hub folder names its architecture and model_args
    if "num_classes" in cfg:
        meta["num_classes"] = cfg["num_classes"]
    if "img_size" in args:
        size = args["img_size"]
        meta["image_size"] = tuple(size) if isinstance(size, (list, tuple)) else int(size)
    return meta


def infer_config(tensors, source, meta=None):
    """(ViTConfig fields, patch count, layout) of a timm state dict (and hub meta)."""
    meta = meta or {}
    if "patch_embed.proj.weight" not in tensors:
        raise CheckpointError(
            f"{source} is not a timm ViT state dict: no `patch_embed.proj.weight`. "
            f"Its first keys: {sorted(tensors)[:5]}"
        )
    unsupported = {
        "blocks.0.attn.relative_position_bias_table": "relative position biases",
        "blocks.0.norm1.bias": None,
    }
    for key, what in unsupported.items():
        if what and key in tensors:
            raise CheckpointError(f"{source}: the tensor `{key}` ({what}) is not supported.")
    width, channels, patch, _ = tensors["patch_embed.proj.weight"].shape
    hybrid = hybrid_fields(tensors, source)
    if hybrid:
        channels = hybrid.pop("num_channels")
    layers = 0
    while f"blocks.{layers}.norm1.weight" in tensors:
        layers += 1
    class_token = "cls_token" in tensors
    dist = "dist_token" in tensors
    registers = int(tensors["reg_token"].shape[1]) if "reg_token" in tensors else 0
    fc_norm = "fc_norm.weight" in tensors
    pre_norm = "norm_pre.weight" in tensors
    pool = meta.get("global_pool") or (
        "map" if "attn_pool.latent" in tensors
        else "avg" if fc_norm or not class_token else "token")
    if pool == "map" and "attn_pool.latent" in tensors and (
            tensors["attn_pool.latent"].shape[1] != 1 or "attn_pool.q_norm.weight" in tensors):
        raise CheckpointError(
            f"{source}: the tensor `attn_pool.latent` {tensors['attn_pool.latent'].shape} "
            "(several latents) or `attn_pool.q_norm` is not supported: one probe, no qk norm."
        )
    fields = dict(
        patch_size=int(patch), num_channels=int(channels), hidden_size=int(width),
        num_layers=layers, mlp_dim=int(tensors["blocks.0.mlp.fc1.weight"].shape[0]),
        class_token=class_token, pooling={"token": "token", "avg": "gap", "map": "map"}[pool],
        # timm's LayerNorm eps is 1e-6, its CLIP towers' (pre_norm) 1e-5.
        layer_norm_epsilon=float(meta.get("layer_norm_epsilon", 1e-5 if pre_norm else 1e-6)),
        gelu_approximate=bool(meta.get("gelu_approximate", False)),
        quick_gelu=bool(meta.get("quick_gelu", False)),
        pre_norm=pre_norm, qk_norm="blocks.0.attn.q_norm.weight" in tensors,
        normalization_mean=tuple(meta.get("mean", (0.5,))),
        normalization_std=tuple(meta.get("std", (0.5,))),
        position_embedding="learned" if "pos_embed" in tensors else "none",
        distillation_token=dist, distilled_head="head_dist.weight" in tensors,
        num_register_tokens=registers, fc_norm=fc_norm,
        qkv_bias="blocks.0.attn.qkv.bias" in tensors,
    )
    if "blocks.0.ls1.gamma" in tensors:
        fields["layer_scale_init_value"] = float(meta.get("args", {}).get("init_values") or 1e-5)
    args = meta.get("args", {})
    if "num_heads" in args:
        fields["num_heads"] = int(args["num_heads"])
    if "image_size" in meta and args:
        fields["image_size"] = meta["image_size"]
    fields.update(hybrid)
    if "head.weight" in tensors:
        fields["num_classes"] = int(tensors["head.weight"].shape[0])
    if "pre_logits.fc.weight" in tensors:
        fields["representation_size"] = int(tensors["pre_logits.fc.weight"].shape[0])
    for key, value in (("embed_dim", width), ("depth", layers), ("patch_size", patch),
                       ("class_token", class_token), ("reg_tokens", registers),
                       ("in_chans", channels)):
        if key in args and args[key] != value:
            raise CheckpointError(
                f"{source}: config.json model_args {key}={args[key]!r}, but the tensors "
                f"say {value!r}."
            )
    for key, present in (("qk_norm", fields["qk_norm"]), ("pre_norm", pre_norm)):
        if key in args and bool(args[key]) != present:
            tensor = "blocks.0.attn.q_norm.weight" if key == "qk_norm" else "norm_pre.weight"
            raise CheckpointError(
                f"{source}: model_args {key}={args[key]} disagrees with the tensors "
                f"(`{tensor}` {'present' if present else 'missing'})."
            )
    if args.get("fc_norm") is True and not fc_norm or args.get("fc_norm") is False and fc_norm:
        raise CheckpointError(
            f"{source}: model_args fc_norm={args['fc_norm']} disagrees with the tensors "
            f"(`fc_norm.weight` {'missing' if not fc_norm else 'present'})."
        )
    prefix = int(class_token) + int(dist) + registers
    n_patches = None
    no_embed_class = False
    if "pos_embed" in tensors:
        n = tensors["pos_embed"].shape[1]
        # timm's `no_embed_class` models store no embedding for the prefix tokens.
        # With the image size known, the grid decides; without it, a square count
        # says so (a 4x6 grid plus the class token also makes 25: pass image_size).
        side = int(round(np.sqrt(n)))
        no_embed_class = prefix > 0 and side * side == n
        if "no_embed_class" in args:
            no_embed_class = bool(args["no_embed_class"]) and prefix > 0
        elif prefix and meta.get("image_size") is not None:
            hw = to_hw("image_size", meta["image_size"])
            step = int(patch) * stem_stride(fields.get("hybrid_layers"))
            tokens = (hw[0] // step) * (hw[1] // step)
            if n in (tokens, tokens + prefix):  # else the model is resized from a square grid
                no_embed_class = n == tokens
        n_patches = n - (0 if no_embed_class else prefix)
    unrecorded = tuple(k for k in UNRECORDED if k not in meta.get("recorded", ()))
    if "mean" not in meta:
        unrecorded += ("normalization_mean", "normalization_std")
    return fields, n_patches, dict(no_embed_class=no_embed_class, variant=meta.get("variant"),
                                   unrecorded=unrecorded)


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
    if not config.pre_norm:  # timm's pre_norm patch embedding has no bias
        porter.port("patch_embed.proj.bias", "patch_embedding/bias")
    if config.class_token:
        porter.port("cls_token", "patch_encoder/class_token")
    if config.distillation_token:
        porter.port("dist_token", "patch_encoder/distillation_token")
    if config.num_register_tokens:
        porter.port("reg_token", "patch_encoder/register_tokens")
    if config.position_embedding == "learned":
        path = "patch_encoder/position_embedding/embeddings"
        prefix = config.num_prefix_tokens
        if layout["no_embed_class"]:  # the prefix tokens get no embedding: zeros
            porter.port("pos_embed", path, lambda p: np.concatenate(
                [np.zeros_like(p[:, :1]).repeat(prefix, 1), p], 1))
        else:
            porter.port("pos_embed", path)
    if config.pre_norm:
        porter.port("norm_pre.weight", "pre_norm/gamma")
        porter.port("norm_pre.bias", "pre_norm/beta")
    t = lambda w: w.T  # noqa: E731  (out, in) -> (in, out)
    for i in range(config.num_layers):
        src, dst = f"blocks.{i}.", f"transformer_block_{i}/"
        for s, k in (("norm1", "layer_norm_1"), ("norm2", "layer_norm_2")):
            porter.port(f"{src}{s}.weight", f"{dst}{k}/gamma")
            porter.port(f"{src}{s}.bias", f"{dst}{k}/beta")
        porter.port(f"{src}attn.qkv.weight", f"{dst}attention/qkv/kernel", t)
        if config.qkv_bias:
            porter.port(f"{src}attn.qkv.bias", f"{dst}attention/qkv/bias")
        if config.qk_norm:
            for s, k in (("q_norm", "query_norm"), ("k_norm", "key_norm")):
                porter.port(f"{src}attn.{s}.weight", f"{dst}attention/{k}/gamma")
                porter.port(f"{src}attn.{s}.bias", f"{dst}attention/{k}/beta")
        if config.layer_scale_init_value is not None:
            porter.port(f"{src}ls1.gamma", f"{dst}layer_scale_1")
            porter.port(f"{src}ls2.gamma", f"{dst}layer_scale_2")
        porter.port(f"{src}attn.proj.weight", f"{dst}attention/output/kernel", t)
        porter.port(f"{src}attn.proj.bias", f"{dst}attention/output/bias")
        for s, k in (("fc1", "dense_1"), ("fc2", "dense_2")):
            porter.port(f"{src}mlp.{s}.weight", f"{dst}mlp/{k}/kernel", t)
            porter.port(f"{src}mlp.{s}.bias", f"{dst}mlp/{k}/bias")
    norm = "fc_norm" if config.fc_norm else "norm"
    porter.port(f"{norm}.weight", "encoder_norm/gamma")
    porter.port(f"{norm}.bias", "encoder_norm/beta")
    if config.pooling == "map":  # AttentionPoolLatent: one probe, fused k|v
        d, a = config.hidden_size, "attn_pool."
        porter.port(f"{a}latent", "map_head/probe")
        porter.port(f"{a}q.weight", "map_head/query/kernel", t)
        porter.port(f"{a}q.bias", "map_head/query/bias")
        porter.port(f"{a}kv.weight", "map_head/key/kernel", lambda w: w[:d].T)
        porter.port(f"{a}kv.weight", "map_head/value/kernel", lambda w: w[d:].T)
        porter.port(f"{a}kv.bias", "map_head/key/bias", lambda b: b[:d])
        porter.port(f"{a}kv.bias", "map_head/value/bias", lambda b: b[d:])
        porter.port(f"{a}proj.weight", "map_head/output/kernel", t)
        porter.port(f"{a}proj.bias", "map_head/output/bias")
        porter.port(f"{a}norm.weight", "map_head/layer_norm/gamma")
        porter.port(f"{a}norm.bias", "map_head/layer_norm/beta")
        for s_, k in (("fc1", "dense_1"), ("fc2", "dense_2")):
            porter.port(f"{a}mlp.{s_}.weight", f"map_head/mlp/{k}/kernel", t)
            porter.port(f"{a}mlp.{s_}.bias", f"map_head/mlp/{k}/bias")
    port_top(porter, config, ("pre_logits.fc.weight", "pre_logits.fc.bias"),
             ("head.weight", "head.bias"), transpose=True,
             dist_head=("head_dist.weight", "head_dist.bias"))
