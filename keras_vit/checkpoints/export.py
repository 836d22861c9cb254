"""Back out to PyTorch: a keras_vit model as a timm hub folder or an HF folder.

`export_checkpoint(model, DIR, format="timm")` writes what timm's
`push_to_hf_hub` / `save_for_hf` writes: `config.json` (`architecture`,
`num_classes`, `global_pool`, `model_args`, `pretrained_cfg`) and
`model.safetensors` with timm's `VisionTransformer` keys. timm loads it with

    cfg = json.load(open(f"{DIR}/config.json"))
    timm.create_model(cfg["architecture"], pretrained=True, **cfg["model_args"],
                      pretrained_cfg_overlay=dict(cfg["pretrained_cfg"],
                                                  file=f"{DIR}/model.safetensors"))

`format="hf"` writes a transformers `ViTForImageClassification` folder
(`ViTModel` without a top; load it with `add_pooling_layer=False`):
`config.json`, `model.safetensors`, `preprocessor_config.json`.

Both are the inverses of the importers (timm.py, hf.py), so keras_vit reads
its own exports back exactly. What the target cannot build is refused by
name: every ViTConfig field is checked against the list of fields each writer
supports (`SUPPORTED`); a field outside it must keep its default, so a field
added to ViTConfig later is refused until a writer learns it.

Nothing is overwritten without `overwrite=True`, and nothing is half-written:
the files go to a temporary folder beside DIR, then are renamed into place.
"""

import dataclasses
import json
import os
import shutil

import numpy as np

from keras_vit.checkpoints.port import CheckpointError
from keras_vit.models.config import ViTConfig
from keras_vit.utils import to_hw

EXPORT_FORMATS = ("timm", "hf")
_FILES = {"timm": ("config.json", "model.safetensors"),
          "hf": ("config.json", "model.safetensors", "preprocessor_config.json")}

# Fields that change no weight and no output of an exported network in eval
# mode (regularisers, how keras_vit resamples or takes its input).
_NEUTRAL = ("dropout_rate", "attention_dropout_rate", "drop_path_rate", "include_preprocessing",
            "resample_method", "resample_antialias", "dynamic_image_size", "hybrid_width",
            "background")
# Fields each writer can represent; every other field must keep its default.
SUPPORTED = {
    "timm": _NEUTRAL + (
        "image_size", "patch_size", "num_channels", "hidden_size", "num_layers", "num_heads",
        "mlp_dim", "num_classes", "include_top", "pooling", "class_token", "class_names",
        "normalization_mean", "normalization_std", "gelu_approximate", "quick_gelu",
        "qkv_bias", "qk_norm", "fc_norm", "layer_scale_init_value", "num_register_tokens",
        "position_embedding"),
    "hf": _NEUTRAL + (
        "image_size", "patch_size", "num_channels", "hidden_size", "num_layers", "num_heads",
        "mlp_dim", "num_classes", "include_top", "pooling", "normalization_mean",
        "normalization_std", "gelu_approximate", "qkv_bias", "layer_norm_epsilon",
        "class_names"),
}
# Values of supported fields the target still cannot build: field -> (allowed, why).
_ALLOWED = {
    "timm": {
        "pooling": (("token", "gap", "map", None), "timm global_pool token, avg or map"),
        "position_embedding": (("learned", "none"), "timm pos_embed 'learn' or 'none'"),
        "layer_norm_epsilon": ((1e-6,), "timm's VisionTransformer LayerNorm eps is 1e-6"),
    },
    "hf": {
        "pooling": (("token", None), "ViTForImageClassification reads the class token"),
    },
}
# Registered timm names a folder's `architecture` can be: the model_args
# (written in full) override whatever the name's builder sets.
_TIMM_NAMES = {(192, 12, 3, 16): "vit_tiny_patch16_224", (384, 12, 6, 16): "vit_small_patch16_224",
               (384, 12, 6, 32): "vit_small_patch32_224", (768, 12, 12, 8): "vit_base_patch8_224",
               (768, 12, 12, 16): "vit_base_patch16_224", (768, 12, 12, 32): "vit_base_patch32_224",
               (1024, 24, 16, 16): "vit_large_patch16_224",
               (1024, 24, 16, 32): "vit_large_patch32_224",
               (1280, 32, 16, 14): "vit_huge_patch14_224"}


def check_exportable(config, format):
    """Raises CheckpointError naming each field `format` cannot represent."""
    if format not in EXPORT_FORMATS:
        raise CheckpointError(
            f"format must be one of {list(EXPORT_FORMATS)}; got {format!r}")
    default = ViTConfig()
    problems = []
    for field in dataclasses.fields(ViTConfig):
        name, value = field.name, getattr(config, field.name)
        if name in _ALLOWED[format]:
            allowed, why = _ALLOWED[format][name]
            if value not in allowed:
                problems.append(f"{name}={value!r} ({why})")
        elif name not in SUPPORTED[format] and value != getattr(default, name):
            problems.append(f"{name}={value!r}")
    if config.mlp_dim % config.hidden_size and format == "timm":
        problems.append(f"mlp_dim={config.mlp_dim} (timm builds int(embed_dim * mlp_ratio); "
                        f"{config.mlp_dim} is not a multiple of hidden_size {config.hidden_size})")
    if problems:
        raise CheckpointError(
            f"cannot export to {format}: it cannot represent {', '.join(problems)}; "
            "those fields must keep their defaults for this format.")


def _weights(model):
    return {v.path: np.asarray(v.numpy() if hasattr(v, "numpy") else v, dtype=np.float32)
            for v in model.weights}


def _dense_to_conv(kernel, config):
    """The Dense kernel (P*P*C, D) as a torch Conv2D weight (D, C, P, P)."""
    p, c = config.patch_size, config.num_channels
    return kernel.reshape(p, p, c, -1).transpose(3, 2, 0, 1)


def _mean_std(config):
    mean, std = (list(map(float, v)) for v in (config.normalization_mean,
                                                config.normalization_std))
    c = config.num_channels
    return [mean[0]] * c if len(mean) == 1 else mean, [std[0]] * c if len(std) == 1 else std


def _label_map(model, config):
    names = config.class_names or [f"LABEL_{i}" for i in range(config.num_classes)]
    return {str(i): str(name) for i, name in enumerate(names)}


def timm_state_dict(model, config):
    w = _weights(model)
    t = {}
    t["patch_embed.proj.weight"] = _dense_to_conv(w["patch_embedding/kernel"], config)
    t["patch_embed.proj.bias"] = w["patch_embedding/bias"]
    if config.class_token:
        t["cls_token"] = w["patch_encoder/class_token"]
    if config.num_register_tokens:
        t["reg_token"] = w["patch_encoder/register_tokens"]
    if config.position_embedding == "learned":
        t["pos_embed"] = w["patch_encoder/position_embedding/embeddings"]
    for i in range(config.num_layers):
        s, d = f"blocks.{i}.", f"transformer_block_{i}/"
        for a, b in (("norm1", "layer_norm_1"), ("norm2", "layer_norm_2")):
            t[f"{s}{a}.weight"], t[f"{s}{a}.bias"] = w[f"{d}{b}/gamma"], w[f"{d}{b}/beta"]
        t[f"{s}attn.qkv.weight"] = w[f"{d}attention/qkv/kernel"].T
        if config.qkv_bias:
            t[f"{s}attn.qkv.bias"] = w[f"{d}attention/qkv/bias"]
        if config.qk_norm:
            for a, b in (("q_norm", "query_norm"), ("k_norm", "key_norm")):
                t[f"{s}attn.{a}.weight"] = w[f"{d}attention/{b}/gamma"]
                t[f"{s}attn.{a}.bias"] = w[f"{d}attention/{b}/beta"]
        if config.layer_scale_init_value is not None:
            t[f"{s}ls1.gamma"], t[f"{s}ls2.gamma"] = w[f"{d}layer_scale_1"], w[f"{d}layer_scale_2"]
        t[f"{s}attn.proj.weight"] = w[f"{d}attention/output/kernel"].T
        t[f"{s}attn.proj.bias"] = w[f"{d}attention/output/bias"]
        for a, b in (("fc1", "dense_1"), ("fc2", "dense_2")):
            t[f"{s}mlp.{a}.weight"] = w[f"{d}mlp/{b}/kernel"].T
            t[f"{s}mlp.{a}.bias"] = w[f"{d}mlp/{b}/bias"]
    norm = "fc_norm" if config.fc_norm else "norm"
    t[f"{norm}.weight"], t[f"{norm}.bias"] = w["encoder_norm/gamma"], w["encoder_norm/beta"]
    if config.pooling == "map":
        a, m = "attn_pool.", "map_head/"
        t[f"{a}latent"] = w[f"{m}probe"]
        t[f"{a}q.weight"], t[f"{a}q.bias"] = w[f"{m}query/kernel"].T, w[f"{m}query/bias"]
        t[f"{a}kv.weight"] = np.concatenate([w[f"{m}key/kernel"].T, w[f"{m}value/kernel"].T])
        t[f"{a}kv.bias"] = np.concatenate([w[f"{m}key/bias"], w[f"{m}value/bias"]])
        t[f"{a}proj.weight"], t[f"{a}proj.bias"] = w[f"{m}output/kernel"].T, w[f"{m}output/bias"]
        t[f"{a}norm.weight"] = w[f"{m}layer_norm/gamma"]
        t[f"{a}norm.bias"] = w[f"{m}layer_norm/beta"]
        for s_, b in (("fc1", "dense_1"), ("fc2", "dense_2")):
            t[f"{a}mlp.{s_}.weight"] = w[f"{m}mlp/{b}/kernel"].T
            t[f"{a}mlp.{s_}.bias"] = w[f"{m}mlp/{b}/bias"]
    if config.include_top:
        t["head.weight"], t["head.bias"] = w["head/kernel"].T, w["head/bias"]
    return t


def timm_config(model, config):
    h, w_ = to_hw("image_size", config.image_size)
    architecture = _TIMM_NAMES.get((config.hidden_size, config.num_layers, config.num_heads,
                                    config.patch_size), "vit_base_patch16_224")
    pool = {"token": "token", "gap": "avg", "map": "map", None: "token"}[config.pooling]
    num_classes = config.num_classes if config.include_top else 0
    act = "quick_gelu" if config.quick_gelu else "gelu_tanh" if config.gelu_approximate else "gelu"
    args = dict(
        img_size=[h, w_], patch_size=config.patch_size, in_chans=config.num_channels,
        embed_dim=config.hidden_size, depth=config.num_layers, num_heads=config.num_heads,
        mlp_ratio=config.mlp_dim / config.hidden_size, class_token=config.class_token,
        global_pool=pool, fc_norm=config.fc_norm, qkv_bias=config.qkv_bias,
        qk_norm=config.qk_norm, reg_tokens=config.num_register_tokens, act_layer=act,
        no_embed_class=False, init_values=config.layer_scale_init_value,
        pos_embed="learn" if config.position_embedding == "learned" else "none",
    )
    mean, std = _mean_std(config)
    names = _label_map(model, config) if config.include_top else {}
    return {
        "architecture": architecture, "num_classes": num_classes,
        "num_features": config.hidden_size, "global_pool": pool, "model_args": args,
        "pretrained_cfg": {
            "tag": "keras_vit", "custom_load": False, "input_size": [config.num_channels, h, w_],
            "fixed_input_size": True, "interpolation": "bicubic", "crop_pct": 1.0,
            "crop_mode": "center", "mean": mean, "std": std, "num_classes": num_classes,
            "pool_size": None, "first_conv": "patch_embed.proj", "classifier": "head",
        },
        **({"label_names": [names[str(i)] for i in range(num_classes)]}
           if config.class_names and num_classes else {}),
    }


def hf_state_dict(model, config):
    w = _weights(model)
    p = "vit." if config.include_top else ""
    t = {}
    e = f"{p}embeddings."
    t[f"{e}patch_embeddings.projection.weight"] = _dense_to_conv(
        w["patch_embedding/kernel"], config)
    t[f"{e}patch_embeddings.projection.bias"] = w["patch_embedding/bias"]
    t[f"{e}cls_token"] = w["patch_encoder/class_token"]
    t[f"{e}position_embeddings"] = w["patch_encoder/position_embedding/embeddings"]
    d_ = config.hidden_size
    for i in range(config.num_layers):
        s, d = f"{p}encoder.layer.{i}.", f"transformer_block_{i}/"
        for a, b in (("layernorm_before", "layer_norm_1"), ("layernorm_after", "layer_norm_2")):
            t[f"{s}{a}.weight"], t[f"{s}{a}.bias"] = w[f"{d}{b}/gamma"], w[f"{d}{b}/beta"]
        kernel = w[f"{d}attention/qkv/kernel"]
        for j, name in enumerate(("query", "key", "value")):
            t[f"{s}attention.attention.{name}.weight"] = kernel[:, j * d_:(j + 1) * d_].T
            if config.qkv_bias:
                t[f"{s}attention.attention.{name}.bias"] = \
                    w[f"{d}attention/qkv/bias"][j * d_:(j + 1) * d_]
        t[f"{s}attention.output.dense.weight"] = w[f"{d}attention/output/kernel"].T
        t[f"{s}attention.output.dense.bias"] = w[f"{d}attention/output/bias"]
        for a, b in (("intermediate", "dense_1"), ("output", "dense_2")):
            t[f"{s}{a}.dense.weight"] = w[f"{d}mlp/{b}/kernel"].T
            t[f"{s}{a}.dense.bias"] = w[f"{d}mlp/{b}/bias"]
    t[f"{p}layernorm.weight"], t[f"{p}layernorm.bias"] = \
        w["encoder_norm/gamma"], w["encoder_norm/beta"]
    if config.include_top:
        t["classifier.weight"], t["classifier.bias"] = w["head/kernel"].T, w["head/bias"]
    return t


def hf_files(model, config):
    h, w_ = to_hw("image_size", config.image_size)
    cfg = {
        "architectures": ["ViTForImageClassification" if config.include_top else "ViTModel"],
        "model_type": "vit", "image_size": h if h == w_ else [h, w_],
        "patch_size": config.patch_size, "num_channels": config.num_channels,
        "hidden_size": config.hidden_size, "num_hidden_layers": config.num_layers,
        "num_attention_heads": config.num_heads, "intermediate_size": config.mlp_dim,
        "hidden_act": "gelu_pytorch_tanh" if config.gelu_approximate else "gelu",
        "layer_norm_eps": config.layer_norm_epsilon, "qkv_bias": config.qkv_bias,
        "hidden_dropout_prob": 0.0, "attention_probs_dropout_prob": 0.0,
        "initializer_range": 0.02, "encoder_stride": config.patch_size,
    }
    if config.include_top:
        id2label = _label_map(model, config)
        cfg["id2label"] = id2label
        cfg["label2id"] = {v: int(k) for k, v in id2label.items()}
    mean, std = _mean_std(config)
    pre = {
        "image_processor_type": "ViTImageProcessor", "do_resize": True,
        "size": {"height": h, "width": w_}, "resample": 2, "do_rescale": True,
        "rescale_factor": 1 / 255, "do_normalize": True, "image_mean": mean, "image_std": std,
    }
    return cfg, pre


def export_checkpoint(model, directory, format="timm", overwrite=False):
    """Writes `model` as a timm hub folder or an HF folder (see the module doc).

    Args:
        model: a keras_vit `VisionTransformer` (e.g. from `keras.models.load_model`).
        directory: the folder to write; created if absent.
        format: "timm" or "hf".
        overwrite: replace the folder's config.json / model.safetensors /
            preprocessor_config.json if they exist. Defaults to False.

    Returns:
        The list of paths written.
    """
    from safetensors.numpy import save_file

    config = getattr(model, "config", None)
    if not isinstance(config, ViTConfig):
        raise CheckpointError(
            f"export_checkpoint needs a keras_vit VisionTransformer (a model with a ViTConfig "
            f"`config`); got a {type(model).__name__}.")
    check_exportable(config, format)
    directory = os.path.abspath(os.fspath(directory))
    if os.path.exists(directory) and not os.path.isdir(directory):
        raise CheckpointError(f"{directory} exists and is not a folder.")
    names = _FILES[format]
    present = [n for n in names if os.path.lexists(os.path.join(directory, n))]
    if present and not overwrite:
        raise CheckpointError(
            f"{directory} already has {', '.join(present)}; pass overwrite=True "
            "(--force) to replace them, or choose another folder.")
    if format == "timm":
        tensors, files = timm_state_dict(model, config), {"config.json": timm_config(model, config)}
    else:
        cfg, pre = hf_files(model, config)
        tensors = hf_state_dict(model, config)
        files = {"config.json": cfg, "preprocessor_config.json": pre}
    parent = os.path.dirname(directory)
    os.makedirs(parent, exist_ok=True)
    tmp = os.path.join(parent, f".{os.path.basename(directory)}.tmp-{os.getpid()}")
    shutil.rmtree(tmp, ignore_errors=True)
    os.makedirs(tmp)
    try:
        save_file({k: np.ascontiguousarray(v) for k, v in tensors.items()},
                  os.path.join(tmp, "model.safetensors"), metadata={"format": "pt"})
        for name, value in files.items():
            with open(os.path.join(tmp, name), "w") as f:
                json.dump(value, f, indent=2)
                f.write("\n")
        if not os.path.exists(directory):
            os.replace(tmp, directory)
        else:  # each file replaced whole (a reader sees the old one or the new one)
            for name in names:
                os.replace(os.path.join(tmp, name), os.path.join(directory, name))
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return [os.path.join(directory, n) for n in names]
