"""keras-hub ViT presets: the folder `ViTBackbone.save_to_preset` writes
(config.json, metadata.json, model.weights.h5; Kaggle's `keras/vit` presets).

The weights file is Keras 3's HDF5 layout, read with h5py (no pickle):
`layers/vi_t_patching_and_embedding/{patch_embedding,position_embedding}/vars/*`
and its own `vars/0` (the class token), `layers/vi_t_encoder/encoder_layers/
<block>/{layer_norm_1,mha/{query,key,value,output}_dense,layer_norm_2,mlp/dense_*}`
and `layers/vi_t_encoder/layer_norm`. Its MultiHeadAttention kernels are
(D, H, D/H) and (H, D/H, D): reshaped into our fused qkv and output Denses.

A backbone preset returns every token (include_top=False, pooling=None), as
`ViTBackbone` does. A classifier preset (`ViTImageClassifier.save_to_preset`:
task.json and task.weights.h5 beside the backbone's files) gives the classifier:
"token" pooling (or "gap" on a backbone without a class token: keras-hub averages
every token it has), the optional tanh `intermediate_dim` layer as
`representation_size`, and the head; a softmax `activation` is refused (the model
returns logits). The backbone takes pixels as keras-hub's image converter leaves
them; where the preset has the converter (image_converter.json, or inside
preprocessor.json), its `x * scale + offset` becomes the model's own normalisation
(`normalization_mean = -offset / (255 scale)`, `normalization_std = 1 / (255 scale)`),
so the model takes [0, 255] pixels like every keras_vit model; without one it is
built with include_preprocessing=False. The converter's resize is the input
pipeline's, not the model's.
"""

import os
import re
import warnings

import h5py  # a Keras 3 dependency (its .weights.h5 files)
import numpy as np

from keras_vit.checkpoints import validate
from keras_vit.checkpoints.port import CheckpointError, WeightPorter, read_json
from keras_vit.models.config import ViTConfig
from keras_vit.models.vit import VisionTransformer

# ViTBackbone config fields this reader builds (every other one is refused).
SUPPORTED = ("name", "trainable", "dtype", "image_shape", "patch_size", "num_layers",
             "num_heads", "hidden_dim", "mlp_dim", "dropout_rate", "attention_dropout",
             "layer_norm_epsilon", "use_mha_bias", "use_mlp_bias", "use_class_token",
             "use_patch_bias")
_MUST_BE_TRUE = ("use_mha_bias", "use_mlp_bias", "use_patch_bias")
_EMBED = "layers/vi_t_patching_and_embedding/"
# ViTImageClassifier config fields (task.json) this reader builds.
TASK_FIELDS = ("name", "trainable", "dtype", "num_classes", "pooling", "activation", "dropout",
               "intermediate_dim", "backbone", "preprocessor", "head_dtype")
_ENCODER = "layers/vi_t_encoder/"
_TASK = "task.weights.h5:"  # prefix of the head's tensors among the backbone's


def is_preset(path):
    """Whether `path` is a folder whose config.json names a keras-hub class."""
    config = os.path.join(path, "config.json")
    if not (os.path.isdir(path) and os.path.isfile(config)):
        return False
    spec = read_json(config, "config")
    return str(spec.get("module", "")).startswith("keras_hub.") or str(
        spec.get("registered_name", "")).startswith("keras_hub>")


def read_h5(path):
    """{dataset path: array} of a Keras 3 `.weights.h5` file."""
    validate.check_regular_file(path)
    tensors = {}
    try:
        with h5py.File(path, "r") as f:
            f.visititems(lambda key, item: tensors.__setitem__(key, item[()])
                         if isinstance(item, h5py.Dataset) else None)
    except OSError as error:
        raise CheckpointError(f"{path} is not a readable HDF5 weights file: {error}") from error
    return tensors


def _block_order(name):
    match = re.search(r"_(\d+)$", name)
    return int(match.group(1)) if match else 0


def load_preset(folder, dtype=None, name=None):
    """A keras_vit model with a keras-hub ViTBackbone preset's weights (see module doc)."""
    config_path = os.path.join(folder, "config.json")
    if not os.path.isfile(config_path):
        raise CheckpointError(f"{folder} has no config.json (a keras-hub preset needs one).")
    spec = read_json(config_path, "keras-hub config")
    if spec.get("class_name") != "ViTBackbone":
        raise CheckpointError(
            f"{config_path}: class_name {spec.get('class_name')!r} is not ViTBackbone.")
    c = spec.get("config") or {}
    unknown = sorted(set(c) - set(SUPPORTED))
    if unknown:
        raise CheckpointError(f"{config_path}: config fields {unknown} are not supported.")
    for key in _MUST_BE_TRUE:
        if c.get(key, True) is not True:
            raise CheckpointError(f"{config_path}: {key}={c[key]!r} is not supported (True only).")
    h, w, channels = c["image_shape"]
    patch = c["patch_size"]
    patch = patch if isinstance(patch, int) else patch[0] if patch[0] == patch[1] else None
    if patch is None:
        raise CheckpointError(f"{config_path}: patch_size {c['patch_size']} is not square.")
    class_token = c.get("use_class_token", True)
    head, head_tensors = _classifier(folder, class_token)
    config = ViTConfig(
        image_size=(h, w), patch_size=patch, num_channels=channels, hidden_size=c["hidden_dim"],
        num_layers=c["num_layers"], num_heads=c["num_heads"], mlp_dim=c["mlp_dim"],
        layer_norm_epsilon=c.get("layer_norm_epsilon", 1e-6),
        class_token=class_token, dropout_rate=c.get("dropout_rate", 0.0),
        attention_dropout_rate=c.get("attention_dropout", 0.0),
        **head, **_normalization(folder, channels))
    path = os.path.join(folder, "model.weights.h5")
    if not os.path.isfile(path):
        raise CheckpointError(f"{folder} has no model.weights.h5.")
    tensors = read_h5(path)
    validate.check_tensors(tensors, path)
    model = VisionTransformer(config, dtype=dtype, name=name or "vit")
    source = path
    if head_tensors:
        tensors = dict(tensors, **head_tensors)
        source = f"{path} and task.weights.h5"
    porter = WeightPorter(model, tensors, source=source)
    d = config.hidden_size
    porter.port(f"{_EMBED}patch_embedding/vars/0", "patch_embedding/kernel",
                lambda k: k.reshape(-1, d))  # (P, P, C, D) -> (P*P*C, D), row-major alike
    porter.port(f"{_EMBED}patch_embedding/vars/1", "patch_embedding/bias")
    if config.class_token:
        porter.port(f"{_EMBED}vars/0", "patch_encoder/class_token")
    porter.port(f"{_EMBED}position_embedding/vars/0",
                "patch_encoder/position_embedding/embeddings", lambda p: p[None])
    blocks = sorted({k.split("/")[3] for k in tensors if k.startswith(f"{_ENCODER}encoder_layers/")},
                    key=_block_order)
    if len(blocks) != config.num_layers:
        raise CheckpointError(
            f"{path} has {len(blocks)} encoder blocks; config.json says {config.num_layers}.")
    for i, block in enumerate(blocks):
        s, t = f"{_ENCODER}encoder_layers/{block}/", f"transformer_block_{i}/"
        for a, b in (("layer_norm_1", "layer_norm_1"), ("layer_norm_2", "layer_norm_2")):
            porter.port(f"{s}{a}/vars/0", f"{t}{b}/gamma")
            porter.port(f"{s}{a}/vars/1", f"{t}{b}/beta")
        qkv = tuple(f"{s}mha/{n}_dense/vars/0" for n in ("query", "key", "value"))
        porter.port(qkv, f"{t}attention/qkv/kernel",
                    lambda *k: np.concatenate([x.reshape(d, d) for x in k], axis=1))
        porter.port(tuple(f"{s}mha/{n}_dense/vars/1" for n in ("query", "key", "value")),
                    f"{t}attention/qkv/bias", lambda *b: np.concatenate([x.reshape(d) for x in b]))
        porter.port(f"{s}mha/output_dense/vars/0", f"{t}attention/output/kernel",
                    lambda k: k.reshape(d, d))
        porter.port(f"{s}mha/output_dense/vars/1", f"{t}attention/output/bias")
        for n in ("dense_1", "dense_2"):
            porter.port(f"{s}mlp/{n}/vars/0", f"{t}mlp/{n}/kernel")
            porter.port(f"{s}mlp/{n}/vars/1", f"{t}mlp/{n}/bias")
    porter.port(f"{_ENCODER}layer_norm/vars/0", "encoder_norm/gamma")
    porter.port(f"{_ENCODER}layer_norm/vars/1", "encoder_norm/beta")
    if head_tensors:  # task.weights.h5's Dense layers, in the order the task made them
        dense = sorted({k.split("/")[1] for k in head_tensors}, key=_block_order)
        for layer, target in zip(dense, (["pre_logits"] if len(dense) == 2 else []) + ["head"]):
            porter.port(f"{_TASK}layers/{layer}/vars/0", f"{target}/kernel")
            porter.port(f"{_TASK}layers/{layer}/vars/1", f"{target}/bias")
    porter.finish()  # every model weight set, every tensor of both files used
    return model


def _classifier(folder, class_token):
    """(ViTConfig fields, task.weights.h5 tensors) of a classifier preset's head, or
    the backbone's fields and None where the folder has no task.json."""
    path = os.path.join(folder, "task.json")
    if not os.path.isfile(path):
        return dict(include_top=False, pooling=None), None
    spec = read_json(path, "keras-hub task")
    if spec.get("class_name") != "ViTImageClassifier":
        raise CheckpointError(
            f"{path}: class_name {spec.get('class_name')!r} is not ViTImageClassifier "
            "(the only keras-hub ViT task this reader builds).")
    t = spec.get("config") if isinstance(spec.get("config"), dict) else {}
    unknown = sorted(set(t) - set(TASK_FIELDS))
    if unknown:
        raise CheckpointError(f"{path}: config fields {unknown} are not supported.")
    pooling, activation = t.get("pooling", "token"), t.get("activation")
    if pooling not in ("token", "gap") or (pooling == "gap" and class_token):
        raise CheckpointError(
            f"{path}: pooling={pooling!r} is not supported ('token', or 'gap' on a backbone "
            "without a class token: keras-hub's 'gap' averages the class token with the "
            "patches, which keras_vit's 'gap' leaves out).")
    if activation not in (None, "linear"):
        raise CheckpointError(
            f"{path}: activation={activation!r} is not supported: keras_vit's head returns "
            "logits (apply the activation to the model's output).")
    num_classes, intermediate = t.get("num_classes"), t.get("intermediate_dim")
    if not isinstance(num_classes, int) or isinstance(num_classes, bool) or num_classes < 1:
        raise CheckpointError(f"{path}: num_classes={num_classes!r} is not a positive integer.")
    if intermediate is not None and (not isinstance(intermediate, int) or intermediate < 1):
        raise CheckpointError(
            f"{path}: intermediate_dim={intermediate!r} is not a positive integer.")
    weights = os.path.join(folder, "task.weights.h5")
    if not os.path.isfile(weights):
        raise CheckpointError(f"{folder} has task.json but no task.weights.h5.")
    tensors = {k: v for k, v in read_h5(weights).items() if k.startswith("layers/")}
    validate.check_tensors(tensors, weights)
    layers = {k.split("/")[1] for k in tensors}
    if len(layers) != (2 if intermediate else 1):
        raise CheckpointError(
            f"{weights} has {len(layers)} Dense layer(s) ({', '.join(sorted(layers))}); "
            f"task.json's intermediate_dim={intermediate!r} means "
            f"{2 if intermediate else 1}.")
    tensors = {f"{_TASK}{k}": v for k, v in tensors.items()}
    fields = dict(include_top=True, pooling=pooling, num_classes=num_classes,
                  representation_size=intermediate)
    if t.get("dropout"):  # training only: the model is built for inference or fine-tuning
        warnings.warn(f"{path}: dropout={t['dropout']!r} before the head is not kept "
                      "(keras_vit has no head dropout).", stacklevel=3)
    return fields, tensors


def _normalization(folder, channels):
    """ViTConfig's normalisation fields from the preset's image converter
    (`x * scale + offset`), or include_preprocessing=False without one."""
    converter, path = None, os.path.join(folder, "image_converter.json")
    if os.path.isfile(path):
        converter = read_json(path, "keras-hub image converter").get("config")
    else:
        path = os.path.join(folder, "preprocessor.json")
        if os.path.isfile(path):
            pre = read_json(path, "keras-hub preprocessor").get("config")
            converter = (pre.get("image_converter") or {}).get("config") if isinstance(
                pre, dict) else None
    if not isinstance(converter, dict):
        return dict(include_preprocessing=False)
    values = {}
    for field, default in (("scale", 1.0), ("offset", 0.0)):
        value = converter.get(field)
        value = default if value is None else value
        value = [value] * channels if isinstance(value, (int, float)) else value
        if not (isinstance(value, list) and len(value) == channels and all(
                isinstance(v, (int, float)) and not isinstance(v, bool) and np.isfinite(v)
                for v in value)) or (field == "scale" and not all(v > 0 for v in value)):
            raise CheckpointError(
                f"{path}: {field}={converter.get(field)!r} is not {channels} finite "
                f"number(s){' above 0' if field == 'scale' else ''}.")
        values[field] = np.asarray(value, "float64")
    std = 1.0 / (255.0 * values["scale"])
    mean = -values["offset"] * std
    return dict(include_preprocessing=True, normalization_mean=tuple(map(float, mean)),
                normalization_std=tuple(map(float, std)))
