"""The original Google `.npz` checkpoints (vit_jax, AugReg) and big_vision's layout.

Keys (flax names, '/'-joined): `embedding/kernel` (P, P, C, D), `cls` (1, 1, D),
`Transformer/posembed_input/pos_embedding` (1, 1+N, D),
`Transformer/encoderblock_{i}/LayerNorm_0|LayerNorm_2`,
`.../MultiHeadDotProductAttention_1/{query,key,value}/kernel` (D, heads, D/heads),
`.../out/kernel` (heads, D/heads, D), `.../MlpBlock_3/Dense_0|Dense_1`,
`Transformer/encoder_norm`, `pre_logits` (i21k files), `head`, and big_vision's
`MAPHead_0/...` attention-pooling head (pool_type="map"). Seen prefixes:
`opt/target/` (older files keep the optimizer's target), `params/` (big_vision,
whose linen numbering is LayerNorm_0, MultiHeadDotProductAttention_0,
LayerNorm_1, MlpBlock_0, whose `pos_embedding` sits at the top and leaves the
class token out, and whose scanned encoders stack every block in
`Transformer/encoderblock/...`). timm's `_load_weights` reads the same files.

The original code runs flax's tanh-approximate GELU and LayerNorm epsilon
1e-6 on pixels scaled to [-1, 1] (x / 127.5 - 1).
"""

import zipfile

import numpy as np

from keras_vit.checkpoints.port import CheckpointError, port_top
from keras_vit.checkpoints.validate import check_npz

PREFIXES = ("opt/target/", "params/img/", "params/", "")


def read(path):
    """All arrays of an `.npz` file, never unpickling (allow_pickle=False)."""
    if not zipfile.is_zipfile(path):
        raise CheckpointError(
            f"{path} is not an .npz file (not a zip archive; truncated, or another format?)."
        )
    try:
        check_npz(path)  # sizes and dtypes, before anything is decompressed
        with np.load(path, allow_pickle=False) as f:
            return {k: f[k] for k in f.files}
    except CheckpointError:
        raise
    except ValueError as error:
        if "pickle" in str(error):
            raise CheckpointError(
                f"{path} holds pickled Python objects; refusing to unpickle an "
                "untrusted file (checkpoints hold plain numeric arrays)."
            ) from error
        raise CheckpointError(f"{path} is not a readable .npz file: {error}") from error
    except Exception as error:  # zip/zlib/CRC/EOF errors of a corrupt file
        raise CheckpointError(
            f"{path} is not a readable .npz file ({type(error).__name__}: {error})."
        ) from error


def _layout(tensors, source):
    prefix = next((p for p in PREFIXES if f"{p}embedding/kernel" in tensors), None)
    if prefix is None:
        raise CheckpointError(
            f"{source} is not a ViT checkpoint in the original layout: no "
            f"`embedding/kernel` under any of the prefixes {list(PREFIXES)}. "
            f"Its first keys: {sorted(tensors)[:5]}"
        )
    if any(k.startswith(f"{prefix}conv_root") or k.startswith(f"{prefix}block1/") for k in tensors):
        raise CheckpointError(
            f"{source} is a hybrid (ResNet + ViT) checkpoint; converting hybrids "
            "from .npz is not supported yet."
        )
    t = {k[len(prefix):]: v for k, v in tensors.items() if k.startswith(prefix)}
    if len(t) != len(tensors):
        others = sorted(k for k in tensors if not k.startswith(prefix))
        raise CheckpointError(
            f"{source}: tensors outside the `{prefix}` prefix: {others[:8]}"
        )
    scanned = "Transformer/encoderblock/LayerNorm_0/scale" in t
    if scanned:  # big_vision scan: one stacked tensor per kind, blocks on axis 0
        depth = t["Transformer/encoderblock/LayerNorm_0/scale"].shape[0]
        for key in [k for k in t if k.startswith("Transformer/encoderblock/")]:
            stacked = t.pop(key)
            rest = key[len("Transformer/encoderblock/"):]
            for i in range(depth):
                t[f"Transformer/encoderblock_{i}/{rest}"] = stacked[i]
    big_vision = prefix.startswith("params/") or "pos_embedding" in t or scanned
    names = (
        ("LayerNorm_0", "MultiHeadDotProductAttention_0", "LayerNorm_1", "MlpBlock_0")
        if big_vision
        else ("LayerNorm_0", "MultiHeadDotProductAttention_1", "LayerNorm_2", "MlpBlock_3")
    )
    return t, names


def infer_config(tensors, source):
    """(prefix-free tensors, ViTConfig fields from the shapes, patch count, layout)."""
    t, names = _layout(tensors, source)
    kernel = t["embedding/kernel"]
    if kernel.ndim != 4 or kernel.shape[0] != kernel.shape[1]:
        raise CheckpointError(
            f"{source}: `embedding/kernel` should be (P, P, C, D); got {kernel.shape}."
        )
    patch, _, channels, width = kernel.shape
    layers = 0
    while f"Transformer/encoderblock_{layers}/{names[0]}/scale" in t:
        layers += 1
    if layers == 0:
        raise CheckpointError(f"{source}: no `Transformer/encoderblock_0` tensors.")
    block = "Transformer/encoderblock_0/"
    heads = t[f"{block}{names[1]}/query/kernel"].shape[1]
    mlp = t[f"{block}{names[3]}/Dense_0/kernel"].shape[1]
    class_token = "cls" in t
    posemb_key = (
        "pos_embedding" if "pos_embedding" in t else "Transformer/posembed_input/pos_embedding"
    )
    fields = dict(
        patch_size=int(patch), num_channels=int(channels), hidden_size=int(width),
        num_layers=layers, num_heads=int(heads), mlp_dim=int(mlp),
        class_token=class_token,
        pooling="map" if "MAPHead_0/probe" in t else "token" if class_token else "gap",
        layer_norm_epsilon=1e-6, gelu_approximate=True,  # flax's nn.gelu
        normalization_mean=(0.5,), normalization_std=(0.5,),
        position_embedding="learned" if posemb_key in t else "none",
    )
    if "pre_logits/kernel" in t:
        fields["representation_size"] = int(t["pre_logits/kernel"].shape[1])
    if "head/kernel" in t:
        fields["num_classes"] = int(t["head/kernel"].shape[1])
    n_tokens = t[posemb_key].shape[1] if posemb_key in t else None
    # big_vision's table leaves the class token out; the original's includes it.
    n_patches = None if n_tokens is None else n_tokens - (posemb_key != "pos_embedding") * class_token
    return t, fields, n_patches, dict(names=names, posemb_key=posemb_key)


def port(porter, config, layout):
    """Ports the (prefix-free) tensors of `porter` into its model."""
    ln0, mha, ln1, mlp = layout["names"]
    d = config.hidden_size
    porter.port("embedding/kernel", "patch_embedding/kernel", lambda k: k.reshape(-1, k.shape[-1]))
    porter.port("embedding/bias", "patch_embedding/bias")
    if config.class_token:
        porter.port("cls", "patch_encoder/class_token")
    if config.position_embedding == "learned":
        key = layout["posemb_key"]
        path = "patch_encoder/position_embedding/embeddings"
        if key == "pos_embedding" and config.class_token:
            # big_vision adds the table before prepending the class token, so
            # the class token's own embedding is zero.
            porter.port(key, path, lambda p: np.concatenate([np.zeros_like(p[:, :1]), p], 1))
        else:
            porter.port(key, path)
    for i in range(config.num_layers):
        src, dst = f"Transformer/encoderblock_{i}/", f"transformer_block_{i}/"
        for s, k in ((ln0, "layer_norm_1"), (ln1, "layer_norm_2")):
            porter.port(f"{src}{s}/scale", f"{dst}{k}/gamma")
            porter.port(f"{src}{s}/bias", f"{dst}{k}/beta")
        qkv = tuple(f"{src}{mha}/{n}/kernel" for n in ("query", "key", "value"))
        porter.port(qkv, f"{dst}attention/qkv/kernel",
                    lambda *w: np.concatenate([x.reshape(d, -1) for x in w], axis=1))  # (D, 3D)
        qkv = tuple(f"{src}{mha}/{n}/bias" for n in ("query", "key", "value"))
        porter.port(qkv, f"{dst}attention/qkv/bias",
                    lambda *b: np.concatenate([x.reshape(-1) for x in b]))
        porter.port(f"{src}{mha}/out/kernel", f"{dst}attention/output/kernel",
                    lambda k: k.reshape(-1, d))  # (heads*hd, D)
        porter.port(f"{src}{mha}/out/bias", f"{dst}attention/output/bias")
        for j in (0, 1):
            for leaf in ("kernel", "bias"):
                porter.port(f"{src}{mlp}/Dense_{j}/{leaf}", f"{dst}mlp/dense_{j + 1}/{leaf}")
    porter.port("Transformer/encoder_norm/scale", "encoder_norm/gamma")
    porter.port("Transformer/encoder_norm/bias", "encoder_norm/beta")
    if config.pooling == "map":  # big_vision's MAPHead
        src, mha = "MAPHead_0/", "MAPHead_0/MultiHeadDotProductAttention_0/"
        porter.port(f"{src}probe", "map_head/probe")
        for n, k in (("query", "query"), ("key", "key"), ("value", "value"), ("out", "output")):
            porter.port(f"{mha}{n}/kernel", f"map_head/{k}/kernel", lambda w: w.reshape(d, d))
            porter.port(f"{mha}{n}/bias", f"map_head/{k}/bias", lambda b: b.reshape(-1))
        porter.port(f"{src}LayerNorm_0/scale", "map_head/layer_norm/gamma")
        porter.port(f"{src}LayerNorm_0/bias", "map_head/layer_norm/beta")
        for j in (0, 1):
            for leaf in ("kernel", "bias"):
                porter.port(f"{src}MlpBlock_0/Dense_{j}/{leaf}", f"map_head/mlp/dense_{j + 1}/{leaf}")
    port_top(porter, config, ("pre_logits/kernel", "pre_logits/bias"),
             ("head/kernel", "head/bias"), transpose=False)
