"""keras-hub ViT presets: the folder `ViTBackbone.save_to_preset` writes
(config.json, metadata.json, model.weights.h5; Kaggle's `keras/vit` presets).

The weights file is Keras 3's HDF5 layout, read with h5py (no pickle):
`layers/vi_t_patching_and_embedding/{patch_embedding,position_embedding}/vars/*`
and its own `vars/0` (the class token), `layers/vi_t_encoder/encoder_layers/
<block>/{layer_norm_1,mha/{query,key,value,output}_dense,layer_norm_2,mlp/dense_*}`
and `layers/vi_t_encoder/layer_norm`. Its MultiHeadAttention kernels are
(D, H, D/H) and (H, D/H, D): reshaped into our fused qkv and output Denses.

The backbone takes pixels already scaled (keras-hub's image converter does
that), so the model is built with include_preprocessing=False and returns every
token (include_top=False, pooling=None), as `ViTBackbone` does. A classifier
preset's head (task.json / task.weights.h5) is not read.
"""

import os
import re

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
_ENCODER = "layers/vi_t_encoder/"


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
    config = ViTConfig(
        image_size=(h, w), patch_size=patch, num_channels=channels, hidden_size=c["hidden_dim"],
        num_layers=c["num_layers"], num_heads=c["num_heads"], mlp_dim=c["mlp_dim"],
        layer_norm_epsilon=c.get("layer_norm_epsilon", 1e-6),
        class_token=c.get("use_class_token", True), include_top=False, pooling=None,
        include_preprocessing=False, dropout_rate=c.get("dropout_rate", 0.0),
        attention_dropout_rate=c.get("attention_dropout", 0.0))
    path = os.path.join(folder, "model.weights.h5")
    if not os.path.isfile(path):
        raise CheckpointError(f"{folder} has no model.weights.h5.")
    tensors = read_h5(path)
    validate.check_tensors(tensors, path)
    model = VisionTransformer(config, dtype=dtype, name=name or "vit")
    porter = WeightPorter(model, tensors, source=path)
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
    porter.finish()
    return model
