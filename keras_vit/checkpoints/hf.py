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

config.json gives the architecture, the image size (int or [height, width]),
`hidden_act` (exact "gelu" or a tanh approximation), `layer_norm_eps` (1e-12
by default) and `qkv_bias`; preprocessor_config.json the normalisation (the
processors' defaults without it: mean = std = 0.5 for ViT, ImageNet's for DeiT).
"""

import os
import re

import numpy as np

from keras_vit.checkpoints.port import CheckpointError, conv_to_dense_kernel, port_top, read_json
from keras_vit.checkpoints.validate import HF_CONFIG_FIELDS, HF_PREPROCESSOR_FIELDS, check_fields

MODEL_TYPES = ("vit", "deit", "clip_vision_model")
_DEFAULT_NORMALIZATION = {"vit": ((0.5,), (0.5,)),
                          "deit": ((0.485, 0.456, 0.406), (0.229, 0.224, 0.225)),
                          "clip_vision_model": ((0.48145466, 0.4578275, 0.40821073),
                                                (0.26862954, 0.26130258, 0.27577711))}

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
    if model_type not in MODEL_TYPES:
        raise CheckpointError(
            f"{source}: model_type {model_type!r} is not one of {list(MODEL_TYPES)}."
        )
    if model_type == "clip_vision_model":
        return _infer_clip(tensors, source, config, mean, std)
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
    """CLIPVisionModel(WithProjection): CLIP's image tower (Radford et al. 2021).

    Keys (with `vision_model.` before them beside a `visual_projection`):
    `embeddings.class_embedding` (D,), `embeddings.patch_embedding` (a bias-free
    Conv2D), `embeddings.position_embedding.weight` (1+N, D), `pre_layrnorm` (sic),
    `encoder.layers.{i}.layer_norm1|layer_norm2`, `.self_attn.q_proj|k_proj|v_proj|
    out_proj`, `.mlp.fc1|fc2`, `post_layernorm` (on the class token: pooler_output),
    and `visual_projection` (bias-free Linear to the joint embedding: our head).
    """
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
    return fields, n_patches, dict(prefix=prefix, family="clip")


def _port_clip(porter, config, layout):
    p = layout["prefix"]
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


def port(porter, config, layout):
    if layout.get("family") == "clip":
        return _port_clip(porter, config, layout)
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
