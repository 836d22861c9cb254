"""HuggingFace transformers ViT, DeiT and CLIP vision folders: config.json + model.safetensors.

Keys (with `vit.` before them in ViTForImageClassification):
`embeddings.cls_token`, `embeddings.position_embeddings` (1, 1+N, D),
`embeddings.patch_embeddings.projection` (a Conv2D (D, C, P, P)),
`encoder.layer.{i}.layernorm_before|layernorm_after`,
`encoder.layer.{i}.attention.attention.query|key|value` (separate (D, D)),
`encoder.layer.{i}.attention.output.dense`, `.intermediate.dense`,
`.output.dense`, `layernorm`, `pooler.dense` (ViTModel's Dense + tanh on the
class token: our pre-logits), `classifier`. transformers 5 names these
`layers.{i}.attention.q_proj|k_proj|v_proj|o_proj` and `mlp.fc1|fc2` in
memory; both spellings are read.

DeiT (model_type "deit") has `deit.` before the same names, a
`embeddings.distillation_token`, and either `classifier` on the class token
(DeiTForImageClassification) or `cls_classifier` + `distillation_classifier`
averaged (DeiTForImageClassificationWithTeacher).

DINOv2 (`Dinov2Model`, `Dinov2WithRegistersModel`) and SigLIP
(`SiglipVisionModel`, or the image tower of a `SiglipModel` folder) are read
by `_infer_dinov2` / `_infer_siglip` below.

config.json gives the architecture, the image size (int or [height, width]),
`hidden_act` (exact "gelu" or a tanh approximation), `layer_norm_eps` (1e-12
by default) and `qkv_bias`; preprocessor_config.json the normalisation (the
processors' defaults without it: mean = std = 0.5 for ViT, ImageNet's for DeiT).
"""

import os
import re

import numpy as np

from keras_vit.checkpoints.port import CheckpointError, conv_to_dense_kernel, port_top, read_json
from keras_vit.checkpoints.registry import IMAGENET, OPENAI_CLIP
from keras_vit.checkpoints.validate import HF_CONFIG_FIELDS, HF_PREPROCESSOR_FIELDS, check_fields

MODEL_TYPES = ("vit", "deit", "clip_vision_model", "clip", "dinov2", "dinov2_with_registers",
               "siglip_vision_model", "siglip")
# Families refused by name, with why (detect_format sends them here to say so).
REFUSED = {
    "siglip2_vision_model": "SigLIP 2's NaFlex towers (Siglip2VisionModel) embed "
    "patches of any aspect ratio with a pixel mask and resize their position "
    "embeddings per image (bilinear); this model has one fixed grid. SigLIP 2's "
    "fixed-resolution checkpoints (model_type siglip) load",
    "siglip2": "SigLIP 2's NaFlex towers (Siglip2Model) embed patches of any aspect "
    "ratio with a pixel mask and resize their position embeddings per image; this "
    "model has one fixed grid. SigLIP 2's fixed-resolution checkpoints (model_type "
    "siglip) load",
}
_DEFAULT_NORMALIZATION = {"vit": ((0.5,), (0.5,)), "deit": IMAGENET,
                          "clip_vision_model": OPENAI_CLIP, "clip": OPENAI_CLIP,
                          "dinov2": IMAGENET, "dinov2_with_registers": IMAGENET,
                          "siglip_vision_model": ((0.5,), (0.5,)), "siglip": ((0.5,), (0.5,))}

_EXACT = ("gelu",)
_QUICK = ("quick_gelu",)
_APPROXIMATE = ("gelu_new", "gelu_pytorch_tanh", "gelu_fast", "gelu_approximate")

# transformers 5 in-memory names -> the names of the published files.
_V5_NAMES = [
    (r"^(vit\.)?layers\.(\d+)\.attention\.(q|k|v)_proj\.",
     lambda m: f"{m[1] or ''}encoder.layer.{m[2]}.attention.attention."
               f"{dict(q='query', k='key', v='value')[m[3]]}."),
    (r"^(vit\.)?layers\.(\d+)\.attention\.o_proj\.",
     lambda m: f"{m[1] or ''}encoder.layer.{m[2]}.attention.output.dense."),
    (r"^(vit\.)?layers\.(\d+)\.mlp\.fc1\.", lambda m: f"{m[1] or ''}encoder.layer.{m[2]}.intermediate.dense."),
    (r"^(vit\.)?layers\.(\d+)\.mlp\.fc2\.", lambda m: f"{m[1] or ''}encoder.layer.{m[2]}.output.dense."),
    (r"^(vit\.)?layers\.(\d+)\.", lambda m: f"{m[1] or ''}encoder.layer.{m[2]}."),
]


def normalise_keys(tensors):
    out = {}
    for key, value in tensors.items():
        for pattern, repl in _V5_NAMES:
            new = re.sub(pattern, repl, key)
            if new != key:
                key = new
                break
        out[key] = value
    return out


def read_meta(folder):
    """(config.json dict, normalisation (mean, std)) of an HF folder."""
    config_path = os.path.join(folder, "config.json")
    if not os.path.exists(config_path):
        raise CheckpointError(f"{folder} has no config.json (an HF ViT folder needs one).")
    config = read_json(config_path, "HF config")
    check_fields(config, HF_CONFIG_FIELDS, config_path)
    # The image processors' defaults where no preprocessor_config.json says.
    mean, std = _DEFAULT_NORMALIZATION.get(config.get("model_type"), ((0.5,), (0.5,)))
    pre = os.path.join(folder, "preprocessor_config.json")
    if os.path.exists(pre):
        p = read_json(pre, "HF preprocessor config")
        check_fields(p, HF_PREPROCESSOR_FIELDS, pre)
        if p.get("do_rescale", True) and abs(p.get("rescale_factor", 1 / 255) - 1 / 255) > 1e-12:
            raise CheckpointError(
                f"{pre}: rescale_factor {p['rescale_factor']} is not 1/255; only "
                "[0, 255] pixels rescaled to [0, 1] are supported."
            )
        if p.get("do_normalize", True):
            mean, std = (tuple(np.ravel(p.get("image_mean", mean)).tolist()),
                         tuple(np.ravel(p.get("image_std", std)).tolist()))
        else:
            mean, std = (0.0,), (1.0,)
    return config, (mean, std)


def infer_config(tensors, source, meta):
    config, (mean, std) = meta
    model_type = config.get("model_type", "vit")
    if model_type in REFUSED:
        raise CheckpointError(f"{source}: model_type {model_type!r} is not supported: "
                              f"{REFUSED[model_type]}.")
    if model_type not in MODEL_TYPES:
        raise CheckpointError(
            f"{source}: model_type {model_type!r} is not one of {list(MODEL_TYPES)}."
        )
    if model_type in ("clip_vision_model", "clip"):
        return _infer_clip(tensors, source, config, mean, std)
    if model_type.startswith("dinov2"):
        return _infer_dinov2(tensors, source, config, mean, std)
    if model_type.startswith("siglip"):
        return _infer_siglip(tensors, source, config, mean, std)
    for key in ("encoder_stride",):
        config.pop(key, None)  # masked-image-modelling decoder only
    if config.get("pooler_act", "tanh") != "tanh":
        raise CheckpointError(
            f"{source}: pooler_act {config['pooler_act']!r} is not supported (tanh only)."
        )
    act = config.get("hidden_act", "gelu")
    if act not in _EXACT + _APPROXIMATE:
        raise CheckpointError(f"{source}: hidden_act {act!r} is not a GELU this model has.")
    prefix = next((p for p in ("vit.", "deit.")
                   if f"{p}embeddings.patch_embeddings.projection.weight" in tensors), "")
    if f"{prefix}embeddings.patch_embeddings.projection.weight" not in tensors:
        raise CheckpointError(
            f"{source} is not an HF ViT: no `embeddings.patch_embeddings.projection.weight`. "
            f"Its first keys: {sorted(tensors)[:5]}"
        )
    width, channels, patch, _ = tensors[f"{prefix}embeddings.patch_embeddings.projection.weight"].shape
    layers = 0
    while f"{prefix}encoder.layer.{layers}.layernorm_before.weight" in tensors:
        layers += 1
    class_token = f"{prefix}embeddings.cls_token" in tensors
    dist = f"{prefix}embeddings.distillation_token" in tensors
    teacher = "cls_classifier.weight" in tensors
    fields = dict(
        distillation_token=dist, distilled_head=teacher,
        patch_size=int(patch), num_channels=int(channels), hidden_size=int(width),
        num_layers=layers, num_heads=int(config.get("num_attention_heads", 12)),
        mlp_dim=int(tensors[f"{prefix}encoder.layer.0.intermediate.dense.weight"].shape[0]),
        class_token=class_token, pooling="token",
        layer_norm_epsilon=float(config.get("layer_norm_eps", 1e-12)),
        gelu_approximate=act in _APPROXIMATE,
        normalization_mean=mean, normalization_std=std,
    )
    head = "cls_classifier" if teacher else "classifier"
    if f"{head}.weight" in tensors:
        fields["num_classes"] = int(tensors[f"{head}.weight"].shape[0])
    if f"{prefix}pooler.dense.weight" in tensors:
        fields["representation_size"] = int(tensors[f"{prefix}pooler.dense.weight"].shape[0])
    n_patches = tensors[f"{prefix}embeddings.position_embeddings"].shape[1] - class_token - dist
    size = config.get("image_size")
    if size is not None:
        fields["image_size"] = tuple(size) if isinstance(size, (list, tuple)) else int(size)
    fields["qkv_bias"] = f"{prefix}encoder.layer.0.attention.attention.query.bias" in tensors
    return fields, n_patches, dict(prefix=prefix, head=head)


def _infer_clip(tensors, source, config, mean, std):
    """CLIPVisionModel(WithProjection), or a whole CLIPModel's image tower: CLIP's image
    tower (Radford et al. 2021). A CLIPModel folder (model_type "clip", what OpenAI's
    checkpoints are) gives its `vision_config`; its text tower (`text_model.*`,
    `text_projection`) and `logit_scale` are dropped, and `visual_projection` is the
    head, so the model returns `get_image_features`.

    Keys (with `vision_model.` before them beside a `visual_projection`):
    `embeddings.class_embedding` (D,), `embeddings.patch_embedding` (a bias-free
    Conv2D), `embeddings.position_embedding.weight` (1+N, D), `pre_layrnorm` (sic),
    `encoder.layers.{i}.layer_norm1|layer_norm2`, `.self_attn.q_proj|k_proj|v_proj|
    out_proj`, `.mlp.fc1|fc2`, `post_layernorm` (on the class token: pooler_output),
    and `visual_projection` (bias-free Linear to the joint embedding: our head).
    """
    if config.get("model_type") == "clip":
        config = dict(config.get("vision_config") or {}, model_type="clip")
        check_fields(config, HF_CONFIG_FIELDS, f"{source} (config.json vision_config)")
    prefix = "vision_model." if "vision_model.embeddings.class_embedding" in tensors else ""
    if f"{prefix}embeddings.patch_embedding.weight" not in tensors:
        raise CheckpointError(
            f"{source} is not an HF CLIPVisionModel: no `embeddings.patch_embedding.weight`. "
            f"Its first keys: {sorted(tensors)[:5]}"
        )
    act = config.get("hidden_act", "quick_gelu")
    if act not in _EXACT + _APPROXIMATE + _QUICK:
        raise CheckpointError(f"{source}: hidden_act {act!r} is not a GELU this model has.")
    width, channels, patch, _ = tensors[f"{prefix}embeddings.patch_embedding.weight"].shape
    layers = 0
    while f"{prefix}encoder.layers.{layers}.layer_norm1.weight" in tensors:
        layers += 1
    fields = dict(
        patch_size=int(patch), num_channels=int(channels), hidden_size=int(width),
        num_layers=layers, num_heads=int(config.get("num_attention_heads", 12)),
        mlp_dim=int(tensors[f"{prefix}encoder.layers.0.mlp.fc1.weight"].shape[0]),
        class_token=True, pooling="token", pre_norm=True, head_bias=False,
        layer_norm_epsilon=float(config.get("layer_norm_eps", 1e-5)),
        gelu_approximate=act in _APPROXIMATE, quick_gelu=act in _QUICK,
        normalization_mean=mean, normalization_std=std,
    )
    if "visual_projection.weight" in tensors:
        fields["num_classes"] = int(tensors["visual_projection.weight"].shape[0])
    size = config.get("image_size")
    if size is not None:
        fields["image_size"] = tuple(size) if isinstance(size, (list, tuple)) else int(size)
    n_patches = tensors[f"{prefix}embeddings.position_embedding.weight"].shape[0] - 1
    other = tuple(k for k in tensors if k.startswith(_CLIP_TEXT_TOWER)) if prefix else ()
    return fields, n_patches, dict(prefix=prefix, family="clip", other=other)


# A CLIPModel's tensors that are not the image tower (dropped).
_CLIP_TEXT_TOWER = ("text_model.", "text_projection.", "logit_scale")


def _port_clip(porter, config, layout):
    p = layout["prefix"]
    if layout["other"]:
        porter.drop(layout["other"])  # a CLIPModel's text tower and logit scale
    t = lambda w: w.T  # noqa: E731  (out, in) -> (in, out)
    e = f"{p}embeddings."
    porter.port(f"{e}patch_embedding.weight", "patch_embedding/kernel", conv_to_dense_kernel)
    porter.port(f"{e}class_embedding", "patch_encoder/class_token", lambda c: c[None, None])
    porter.port(f"{e}position_embedding.weight", "patch_encoder/position_embedding/embeddings",
                lambda w: w[None])
    porter.port(f"{p}pre_layrnorm.weight", "pre_norm/gamma")
    porter.port(f"{p}pre_layrnorm.bias", "pre_norm/beta")
    for i in range(config.num_layers):
        src, dst = f"{p}encoder.layers.{i}.", f"transformer_block_{i}/"
        for s, k in (("layer_norm1", "layer_norm_1"), ("layer_norm2", "layer_norm_2")):
            porter.port(f"{src}{s}.weight", f"{dst}{k}/gamma")
            porter.port(f"{src}{s}.bias", f"{dst}{k}/beta")
        qkv = tuple(f"{src}self_attn.{n}_proj" for n in "qkv")
        porter.port(tuple(f"{k}.weight" for k in qkv), f"{dst}attention/qkv/kernel",
                    lambda *w: np.concatenate([x.T for x in w], axis=1))  # (D, 3D)
        porter.port(tuple(f"{k}.bias" for k in qkv), f"{dst}attention/qkv/bias",
                    lambda *b: np.concatenate(b))
        porter.port(f"{src}self_attn.out_proj.weight", f"{dst}attention/output/kernel", t)
        porter.port(f"{src}self_attn.out_proj.bias", f"{dst}attention/output/bias")
        for s, k in (("fc1", "dense_1"), ("fc2", "dense_2")):
            porter.port(f"{src}mlp.{s}.weight", f"{dst}mlp/{k}/kernel", t)
            porter.port(f"{src}mlp.{s}.bias", f"{dst}mlp/{k}/bias")
    porter.port(f"{p}post_layernorm.weight", "encoder_norm/gamma")
    porter.port(f"{p}post_layernorm.bias", "encoder_norm/beta")
    if porter.has("visual_projection.weight"):
        if config.include_top and "head" not in porter.new_layers:
            porter.port("visual_projection.weight", "head/kernel", t)
        else:
            porter.drop("visual_projection.weight")


def _infer_dinov2(tensors, source, config, mean, std):
    """Dinov2Model / Dinov2WithRegistersModel (Oquab et al. 2023; Darcet et al. 2023).

    The ViT keys with `norm1|norm2` for `layernorm_before|after`, `mlp.fc1|fc2`,
    layer scale `layer_scale1|2.lambda1` (D,), `embeddings.mask_token` (iBOT's,
    unused at inference: dropped), `embeddings.register_tokens` (1, R, D) after
    the class token with no position embedding. pooler_output is the normed
    class token. A new input size: Dinov2Model resizes the position embeddings
    with plain bicubic (F.interpolate(size=...)), Dinov2WithRegistersModel with
    antialias=True; the model records which.
    """
    if "dinov2.embeddings.cls_token" in tensors:
        raise CheckpointError(
            f"{source}: Dinov2ForImageClassification's head reads the class token and the "
            "mean patch token together, which this model has no head for; convert the "
            "Dinov2Model backbone (its `dinov2.*` tensors saved alone) instead.")
    if config.get("use_swiglu_ffn") or "encoder.layer.0.mlp.weights_in.weight" in tensors:
        raise CheckpointError(
            f"{source}: use_swiglu_ffn (DINOv2 giant's SwiGLU MLP) is not supported: "
            "this model's MLP is Dense-GELU-Dense.")
    if not config.get("apply_layernorm", True):
        raise CheckpointError(f"{source}: apply_layernorm=false is not supported.")
    if "embeddings.patch_embeddings.projection.weight" not in tensors:
        raise CheckpointError(
            f"{source} is not an HF Dinov2Model: no `embeddings.patch_embeddings.projection"
            f".weight`. Its first keys: {sorted(tensors)[:5]}")
    act = config.get("hidden_act", "gelu")
    if act not in _EXACT + _APPROXIMATE:
        raise CheckpointError(f"{source}: hidden_act {act!r} is not a GELU this model has.")
    width, channels, patch, _ = tensors["embeddings.patch_embeddings.projection.weight"].shape
    layers = 0
    while f"encoder.layer.{layers}.norm1.weight" in tensors:
        layers += 1
    registers = int(tensors["embeddings.register_tokens"].shape[1]
                    if "embeddings.register_tokens" in tensors else 0)
    fields = dict(
        patch_size=int(patch), num_channels=int(channels), hidden_size=int(width),
        num_layers=layers, num_heads=int(config.get("num_attention_heads", 12)),
        mlp_dim=int(tensors["encoder.layer.0.mlp.fc1.weight"].shape[0]),
        class_token=True, pooling="token", num_register_tokens=registers,
        layer_scale_init_value=float(config.get("layerscale_value", 1.0)),
        layer_norm_epsilon=float(config.get("layer_norm_eps", 1e-6)),
        gelu_approximate=act in _APPROXIMATE,
        qkv_bias="encoder.layer.0.attention.attention.query.bias" in tensors,
        normalization_mean=mean, normalization_std=std,
        # Dinov2Model: F.interpolate(size=...) bicubic; Dinov2WithRegistersModel: antialiased.
        resample_method="bicubic",
        resample_antialias=config.get("model_type") == "dinov2_with_registers",
    )
    size = config.get("image_size")
    if size is not None:
        fields["image_size"] = tuple(size) if isinstance(size, (list, tuple)) else int(size)
    n_patches = tensors["embeddings.position_embeddings"].shape[1] - 1
    return fields, n_patches, dict(family="dinov2")


def _port_dinov2(porter, config):
    t = lambda w: w.T  # noqa: E731  (out, in) -> (in, out)
    e = "embeddings."
    porter.port(f"{e}patch_embeddings.projection.weight", "patch_embedding/kernel",
                conv_to_dense_kernel)
    porter.port(f"{e}patch_embeddings.projection.bias", "patch_embedding/bias")
    porter.port(f"{e}cls_token", "patch_encoder/class_token")
    registers = config.num_register_tokens
    if registers:
        porter.port(f"{e}register_tokens", "patch_encoder/register_tokens")
    # [class, registers, patches]: the registers join after the embeddings are added.
    porter.port(f"{e}position_embeddings", "patch_encoder/position_embedding/embeddings",
                lambda p: np.concatenate([p[:, :1], np.zeros_like(p[:, :1]).repeat(registers, 1),
                                          p[:, 1:]], 1))
    if porter.has(f"{e}mask_token"):
        porter.drop((f"{e}mask_token",))  # iBOT's masked-patch token: training only
    for i in range(config.num_layers):
        src, dst = f"encoder.layer.{i}.", f"transformer_block_{i}/"
        for s, k in (("norm1", "layer_norm_1"), ("norm2", "layer_norm_2")):
            porter.port(f"{src}{s}.weight", f"{dst}{k}/gamma")
            porter.port(f"{src}{s}.bias", f"{dst}{k}/beta")
        qkv = tuple(f"{src}attention.attention.{n}" for n in ("query", "key", "value"))
        porter.port(tuple(f"{k}.weight" for k in qkv), f"{dst}attention/qkv/kernel",
                    lambda *w: np.concatenate([x.T for x in w], axis=1))  # (D, 3D)
        if config.qkv_bias:
            porter.port(tuple(f"{k}.bias" for k in qkv), f"{dst}attention/qkv/bias",
                        lambda *b: np.concatenate(b))
        porter.port(f"{src}attention.output.dense.weight", f"{dst}attention/output/kernel", t)
        porter.port(f"{src}attention.output.dense.bias", f"{dst}attention/output/bias")
        porter.port(f"{src}layer_scale1.lambda1", f"{dst}layer_scale_1")
        porter.port(f"{src}layer_scale2.lambda1", f"{dst}layer_scale_2")
        for s, k in (("fc1", "dense_1"), ("fc2", "dense_2")):
            porter.port(f"{src}mlp.{s}.weight", f"{dst}mlp/{k}/kernel", t)
            porter.port(f"{src}mlp.{s}.bias", f"{dst}mlp/{k}/bias")
    porter.port("layernorm.weight", "encoder_norm/gamma")
    porter.port("layernorm.bias", "encoder_norm/beta")


def _infer_siglip(tensors, source, config, mean, std):
    """SiglipVisionModel, or a SiglipModel's image tower (Zhai et al. 2023; SigLIP 2's
    fixed-resolution checkpoints are this model too).

    Keys (with `vision_model.` before them in a SiglipModel, beside the text
    tower's `text_model.*` and `logit_scale|logit_bias`, which are dropped):
    `embeddings.patch_embedding` (Conv2D with bias), `embeddings.position_embedding
    .weight` (N, D): no class token; the CLIP encoder names (`encoder.layers.{i}.
    layer_norm1|2`, `self_attn.q|k|v|out_proj`, `mlp.fc1|fc2`), `post_layernorm`,
    and the MAP head `head.probe` (1, 1, D), `head.attention` (torch
    MultiheadAttention: `in_proj_weight` (3D, D) = q|k|v, `out_proj`),
    `head.layernorm`, `head.mlp.fc1|fc2`: its output is pooler_output.
    """
    if config.get("model_type") == "siglip":
        config = dict(config.get("vision_config") or {}, model_type="siglip")
        check_fields(config, HF_CONFIG_FIELDS, f"{source} (config.json vision_config)")
    prefix = "vision_model." if "vision_model.embeddings.patch_embedding.weight" in tensors else ""
    if f"{prefix}embeddings.patch_embedding.weight" not in tensors:
        raise CheckpointError(
            f"{source} is not an HF SigLIP vision model: no `embeddings.patch_embedding"
            f".weight`. Its first keys: {sorted(tensors)[:5]}")
    act = config.get("hidden_act", "gelu_pytorch_tanh")
    if act not in _EXACT + _APPROXIMATE:
        raise CheckpointError(f"{source}: hidden_act {act!r} is not a GELU this model has.")
    width, channels, patch, _ = tensors[f"{prefix}embeddings.patch_embedding.weight"].shape
    layers = 0
    while f"{prefix}encoder.layers.{layers}.layer_norm1.weight" in tensors:
        layers += 1
    head = f"{prefix}head.probe" in tensors
    fields = dict(
        patch_size=int(patch), num_channels=int(channels), hidden_size=int(width),
        num_layers=layers, num_heads=int(config.get("num_attention_heads", 12)),
        mlp_dim=int(tensors[f"{prefix}encoder.layers.0.mlp.fc1.weight"].shape[0]),
        class_token=False, pooling="map" if head else None,
        layer_norm_epsilon=float(config.get("layer_norm_eps", 1e-6)),
        gelu_approximate=act in _APPROXIMATE,
        normalization_mean=mean, normalization_std=std,
    )
    size = config.get("image_size")
    if size is not None:
        fields["image_size"] = tuple(size) if isinstance(size, (list, tuple)) else int(size)
    n_patches = tensors[f"{prefix}embeddings.position_embedding.weight"].shape[0]
    other = tuple(k for k in tensors if not k.startswith(prefix)) if prefix else ()
    return fields, n_patches, dict(prefix=prefix, family="siglip", other=other)


def _port_siglip(porter, config, layout):
    p = layout["prefix"]
    t = lambda w: w.T  # noqa: E731  (out, in) -> (in, out)
    if layout["other"]:
        porter.drop(layout["other"])  # a SiglipModel's text tower and its logit scale/bias
    e = f"{p}embeddings."
    porter.port(f"{e}patch_embedding.weight", "patch_embedding/kernel", conv_to_dense_kernel)
    porter.port(f"{e}patch_embedding.bias", "patch_embedding/bias")
    porter.port(f"{e}position_embedding.weight", "patch_encoder/position_embedding/embeddings",
                lambda w: w[None])
    for i in range(config.num_layers):
        src, dst = f"{p}encoder.layers.{i}.", f"transformer_block_{i}/"
        for s, k in (("layer_norm1", "layer_norm_1"), ("layer_norm2", "layer_norm_2")):
            porter.port(f"{src}{s}.weight", f"{dst}{k}/gamma")
            porter.port(f"{src}{s}.bias", f"{dst}{k}/beta")
        qkv = tuple(f"{src}self_attn.{n}_proj" for n in "qkv")
        porter.port(tuple(f"{k}.weight" for k in qkv), f"{dst}attention/qkv/kernel",
                    lambda *w: np.concatenate([x.T for x in w], axis=1))  # (D, 3D)
        porter.port(tuple(f"{k}.bias" for k in qkv), f"{dst}attention/qkv/bias",
                    lambda *b: np.concatenate(b))
        porter.port(f"{src}self_attn.out_proj.weight", f"{dst}attention/output/kernel", t)
        porter.port(f"{src}self_attn.out_proj.bias", f"{dst}attention/output/bias")
        for s, k in (("fc1", "dense_1"), ("fc2", "dense_2")):
            porter.port(f"{src}mlp.{s}.weight", f"{dst}mlp/{k}/kernel", t)
            porter.port(f"{src}mlp.{s}.bias", f"{dst}mlp/{k}/bias")
    porter.port(f"{p}post_layernorm.weight", "encoder_norm/gamma")
    porter.port(f"{p}post_layernorm.bias", "encoder_norm/beta")
    if config.pooling != "map":
        return
    d, a = config.hidden_size, f"{p}head."
    porter.port(f"{a}probe", "map_head/probe")
    for j, name in enumerate(("query", "key", "value")):
        porter.port(f"{a}attention.in_proj_weight", f"map_head/{name}/kernel",
                    lambda w, j=j: w[j * d:(j + 1) * d].T)
        porter.port(f"{a}attention.in_proj_bias", f"map_head/{name}/bias",
                    lambda b, j=j: b[j * d:(j + 1) * d])
    porter.port(f"{a}attention.out_proj.weight", "map_head/output/kernel", t)
    porter.port(f"{a}attention.out_proj.bias", "map_head/output/bias")
    porter.port(f"{a}layernorm.weight", "map_head/layer_norm/gamma")
    porter.port(f"{a}layernorm.bias", "map_head/layer_norm/beta")
    for s, k in (("fc1", "dense_1"), ("fc2", "dense_2")):
        porter.port(f"{a}mlp.{s}.weight", f"map_head/mlp/{k}/kernel", t)
        porter.port(f"{a}mlp.{s}.bias", f"map_head/mlp/{k}/bias")


def port(porter, config, layout):
    if layout.get("family") == "clip":
        return _port_clip(porter, config, layout)
    if layout.get("family") == "dinov2":
        return _port_dinov2(porter, config)
    if layout.get("family") == "siglip":
        return _port_siglip(porter, config, layout)
    p = layout["prefix"]
    t = lambda w: w.T  # noqa: E731  (out, in) -> (in, out)
    porter.port(f"{p}embeddings.patch_embeddings.projection.weight", "patch_embedding/kernel",
                conv_to_dense_kernel)
    porter.port(f"{p}embeddings.patch_embeddings.projection.bias", "patch_embedding/bias")
    if config.class_token:
        porter.port(f"{p}embeddings.cls_token", "patch_encoder/class_token")
    if config.distillation_token:
        porter.port(f"{p}embeddings.distillation_token", "patch_encoder/distillation_token")
    porter.port(f"{p}embeddings.position_embeddings", "patch_encoder/position_embedding/embeddings")
    for i in range(config.num_layers):
        src, dst = f"{p}encoder.layer.{i}.", f"transformer_block_{i}/"
        for s, k in (("layernorm_before", "layer_norm_1"), ("layernorm_after", "layer_norm_2")):
            porter.port(f"{src}{s}.weight", f"{dst}{k}/gamma")
            porter.port(f"{src}{s}.bias", f"{dst}{k}/beta")
        qkv = tuple(f"{src}attention.attention.{n}" for n in ("query", "key", "value"))
        porter.port(tuple(f"{k}.weight" for k in qkv), f"{dst}attention/qkv/kernel",
                    lambda *w: np.concatenate([x.T for x in w], axis=1))  # (D, 3D)
        if config.qkv_bias:
            porter.port(tuple(f"{k}.bias" for k in qkv), f"{dst}attention/qkv/bias",
                        lambda *b: np.concatenate(b))
        porter.port(f"{src}attention.output.dense.weight", f"{dst}attention/output/kernel", t)
        porter.port(f"{src}attention.output.dense.bias", f"{dst}attention/output/bias")
        for s, k in (("intermediate", "dense_1"), ("output", "dense_2")):
            porter.port(f"{src}{s}.dense.weight", f"{dst}mlp/{k}/kernel", t)
            porter.port(f"{src}{s}.dense.bias", f"{dst}mlp/{k}/bias")
    porter.port(f"{p}layernorm.weight", "encoder_norm/gamma")
    porter.port(f"{p}layernorm.bias", "encoder_norm/beta")
    head = layout["head"]
    port_top(porter, config, (f"{p}pooler.dense.weight", f"{p}pooler.dense.bias"),
             (f"{head}.weight", f"{head}.bias"), transpose=True,
             dist_head=("distillation_classifier.weight", "distillation_classifier.bias"))
