"""`convert_checkpoint` and `load_pretrained`: a checkpoint in, a Keras model out.

One converter per source (npz.py, timm.py, hf.py), each on the
`WeightPorter` primitive. The architecture is read from the checkpoint where
it can be (tensor shapes, config.json) and from `variant` or overrides where it
cannot (the heads of a timm state dict); normalisation, GELU and LayerNorm
epsilon follow the source.
"""

import os

import numpy as np

from keras_vit.checkpoints import hf, npz, registry, safetensors_io, timm
from keras_vit.checkpoints.port import CheckpointError, WeightPorter

FORMATS = ("npz", "timm", "hf")
# Fields that describe the network and must come from the checkpoint.
_ARCHITECTURE = ("patch_size", "num_channels", "hidden_size", "num_layers", "num_heads",
                 "mlp_dim", "class_token", "representation_size", "hybrid_layers")
# How each source resamples position embeddings when the resolution changes.
_RESAMPLE = {"npz": "linear", "timm": "bicubic", "hf": "bicubic"}


def detect_format(path):
    """"npz", "timm" or "hf" for a local file or folder."""
    if os.path.isdir(path):
        config = os.path.join(path, "config.json")
        if not os.path.exists(config):
            raise CheckpointError(
                f"{path} is a folder without config.json; expected an HF or timm hub folder."
            )
        meta = hf.read_json(config, "config")
        if "architecture" in meta:
            return "timm"
        if meta.get("model_type") == "vit":
            return "hf"
        raise CheckpointError(
            f"{config} names neither a timm `architecture` nor HF model_type 'vit'."
        )
    if os.path.basename(path) == "config.json":
        return detect_format(os.path.dirname(path) or ".")
    with open(path, "rb") as f:
        magic = f.read(4)
    if magic == b"PK\x03\x04" or path.endswith(".npz"):
        return "npz"
    keys = safetensors_io.keys(path)
    if keys is None:
        raise CheckpointError(
            f"cannot tell the format of {path}: not an .npz (zip) archive, not a "
            "readable .safetensors file, not a folder with config.json. Pass "
            "format= (npz, timm or hf) if it is one of them."
        )
    if "patch_embed.proj.weight" in keys:
        return "timm"
    if any(k.endswith("embeddings.patch_embeddings.projection.weight") for k in keys):
        return "hf"
    raise CheckpointError(
        f"{path} is a .safetensors file but neither a timm nor an HF ViT state dict "
        f"(first keys: {sorted(keys)[:5]})."
    )


def _read(path, fmt, variant, overrides):
    """(tensors, inferred fields, patch count, layout) of a local checkpoint."""
    if fmt == "npz":
        tensors = npz.read(path) if not os.path.isdir(path) else _no_file(path, "npz")
        tensors, fields, n, layout = npz.infer_config(tensors, path)
        return tensors, fields, n, layout, npz
    if fmt == "timm":
        meta = {}
        folder = path if os.path.isdir(path) else None
        if folder:
            cfg = hf.read_json(os.path.join(folder, "config.json"), "timm config")
            pre = cfg.get("pretrained_cfg", {})
            meta = {k: pre[k] for k in ("mean", "std") if k in pre}
            meta["variant"] = timm.variant_from_architecture(cfg.get("architecture"))
            if "num_classes" in cfg:
                meta["num_classes"] = cfg["num_classes"]
            path = os.path.join(folder, "model.safetensors")
        tensors = safetensors_io.read(path)
        meta["image_size"] = overrides.get("image_size")
        fields, n, layout = timm.infer_config(tensors, path, meta)
        if "num_heads" not in overrides and not variant and not meta.get("variant"):
            raise CheckpointError(
                f"{path}: a timm state dict does not record the number of heads; pass "
                "variant= (e.g. 'B/16') or num_heads= (CLI: --variant or --set num_heads=N)."
            )
        layout["variant"] = meta.get("variant")
        return tensors, fields, n, layout, timm
    if fmt == "hf":
        folder = path if os.path.isdir(path) else os.path.dirname(path) or "."
        weights = path if not os.path.isdir(path) else os.path.join(folder, "model.safetensors")
        if not os.path.exists(weights):
            raise CheckpointError(f"{folder} has no model.safetensors (only safetensors are read).")
        meta = hf.read_meta(folder)
        tensors = hf.normalise_keys(safetensors_io.read(weights))
        fields, n, layout = hf.infer_config(tensors, weights, meta)
        return tensors, fields, n, layout, hf
    raise ValueError(
        f"Received an invalid value for argument `format`, expected one of "
        f"{', '.join(FORMATS)}. Received: format={fmt!r}"
    )


def _no_file(path, fmt):
    raise CheckpointError(f"{path} is a folder; the {fmt} format is one file.")


def _variant_fields(variant):
    from keras_vit.models.variants import variant_config

    c = variant_config(variant)
    return {k: getattr(c, k) for k in ("patch_size", "hidden_size", "num_layers",
                                       "num_heads", "mlp_dim")}


def _grid_config(fields, n_patches, overrides, source):
    """The config at the checkpoint's own grid, and the image size asked for."""
    from keras_vit.models.config import ViTConfig

    wanted = overrides.get("image_size")
    layers = fields.get("hybrid_layers")
    # Pixels per grid cell: the patch, times the hybrid ResNet stem's stride.
    patch = fields["patch_size"] * (4 * 2 ** (len(layers) - 1) if layers else 1)
    if n_patches is None:  # no position embedding: any size
        return ViTConfig.from_dict({**fields, "image_size": wanted or fields.get("image_size", 224)}), None
    if wanted is not None:
        hw = (wanted, wanted) if isinstance(wanted, int) else tuple(wanted)
        if (hw[0] // patch) * (hw[1] // patch) == n_patches:
            return ViTConfig.from_dict({**fields, "image_size": hw if hw[0] != hw[1] else hw[0]}), None
    side = int(round(np.sqrt(n_patches)))
    if side * side != n_patches:
        raise CheckpointError(
            f"{source}: the position embedding has {n_patches} patch tokens, not a "
            "square grid; pass image_size=(height, width) (CLI: --set image_size=H,W)."
        )
    native = side * patch
    fields = {**fields, "image_size": native}
    return ViTConfig.from_dict(fields), wanted


def convert_checkpoint(source, format=None, variant=None, dtype=None, name=None,
                       **config_overrides):
    """Converts a ViT checkpoint to a Keras `VisionTransformer`.

    Strict: every source tensor is used and every model weight set; a tensor
    that does not fit names itself and both shapes.

    Args:
        source: a local path (an original `.npz`, a timm `.safetensors` state
            dict or hub folder, an HF folder with config.json and
            model.safetensors) or a registered name such as
            "B/16:augreg_in21k" (downloaded through `keras.utils.get_file`).
        format: "npz", "timm" or "hf"; None infers it from the file.
            Defaults to None.
        variant: a variant name such as "B/16" for what the file does not
            record (a timm state dict's number of heads). Defaults to None.
        dtype: dtype policy of the model. Defaults to the global policy.
        name: model name. Defaults to "vit".
        **config_overrides: `ViTConfig` fields. Architecture fields must agree
            with the checkpoint; `image_size` other than the checkpoint's
            resamples the position embeddings (linear for the original files,
            bicubic for timm and HF, as each source does); training fields
            (dropout_rate, ...) are free. `include_top=False` drops the head.

    Returns:
        A `keras_vit.VisionTransformer` taking [0, 255] pixels, normalised as
        the source expects.

    Example:

    >>> model = keras_vit.convert_checkpoint("ViT-B_16.npz")
    """
    return _convert(source, format, variant, dtype, name, None, config_overrides)[0]


def _convert(source, format, variant, dtype, name, zero_head_classes, config_overrides):
    """(model, whether the source had a head); `zero_head_classes` fills a missing head."""
    from keras_vit.models.config import field_names

    unknown = sorted(set(config_overrides) - set(field_names()))
    if unknown:
        raise ValueError(
            f"Unknown ViTConfig field(s) {unknown}. Expected any of: {', '.join(field_names())}"
        )
    path, entry = resolve(source, variant)
    if entry is not None:
        format = format or entry.format
        variant = variant or entry.variant
    if not os.path.exists(path):
        raise FileNotFoundError(f"No checkpoint file or folder at {path}.")
    if format is not None and format not in FORMATS:
        raise ValueError(
            f"Received an invalid value for argument `format`, expected one of "
            f"{', '.join(FORMATS)}. Received: format={format!r}"
        )
    format = format or detect_format(path)
    overrides = dict(config_overrides)
    tensors, fields, n_patches, layout, module = _read(path, format, variant, overrides)
    variant = variant or layout.get("variant")  # a timm hub folder's architecture
    if variant:
        for key, value in _variant_fields(variant).items():
            if key == "num_heads" and "num_heads" not in fields:
                fields["num_heads"] = value
            elif fields.get(key, value) != value:
                raise CheckpointError(
                    f"{path} does not hold a {variant}: its {key} is {fields[key]}, a "
                    f"{variant} has {value}."
                )
    has_head = "num_classes" in fields
    for key, value in overrides.items():
        if key in _ARCHITECTURE and key in fields and fields[key] != value:
            raise CheckpointError(
                f"{path}: override {key}={value!r} contradicts the checkpoint, whose "
                f"{key} is {fields[key]!r}."
            )
        if key == "num_classes" and has_head and value != fields["num_classes"]:
            raise CheckpointError(
                f"{path}: override num_classes={value} contradicts the checkpoint's head of "
                f"{fields['num_classes']} classes; convert, then use "
                "keras_vit.replace_head for a new head."
            )
    if not has_head and zero_head_classes:
        fields["num_classes"] = zero_head_classes
    new_head = not has_head and bool(
        zero_head_classes or overrides.get("include_top") or "num_classes" in overrides)
    fields.setdefault("include_top", has_head or new_head)
    if not fields["include_top"] and "representation_size" in fields and "include_top" not in overrides:
        raise CheckpointError(
            f"{path} has a pre-logits layer but no head; pass num_classes= for a "
            "new zero head after it."
        )
    fields.update({k: v for k, v in overrides.items() if k != "image_size"})
    if "num_heads" not in fields:
        raise CheckpointError(f"{path}: the number of heads is unknown; pass num_heads=.")
    config, resize_to = _grid_config(fields, n_patches, overrides, path)

    from keras_vit.models.vit import VisionTransformer

    model = VisionTransformer(config, dtype=dtype, name=name or "vit")
    porter = WeightPorter(model, tensors, source=path)
    module.port(porter, config, layout)
    porter.finish(allowed_unset=("head",) if new_head else ())
    if resize_to is not None and config.replace(image_size=resize_to).grid_size != config.grid_size:
        from keras_vit.surgery import resize_position_embeddings

        model = resize_position_embeddings(model, resize_to, method=_RESAMPLE[format])
    return model, has_head


def resolve(source, variant=None):
    """(local path, registry entry or None): downloads registered names."""
    if not isinstance(source, (str, os.PathLike)):
        raise ValueError(
            "Received an invalid value for argument `source`, expected a path or a "
            f"registered checkpoint name. Received: source={source!r}"
        )
    source = os.fspath(source)
    if os.path.exists(source):
        return source, None
    entry = registry.find(source, variant)
    if entry is None:
        if os.sep in source or "." in os.path.basename(source):
            raise FileNotFoundError(f"No checkpoint file or folder at {source}.")
        known = ", ".join(registry.names(variant) or registry.names())
        raise ValueError(
            f"Received an invalid value for argument `weights`: {source!r} is neither a "
            f"local file nor a registered checkpoint. Registered: {known}"
        )
    return download(entry), entry


def download(entry):
    """The local path of a registered checkpoint, through `keras.utils.get_file`."""
    import keras

    try:
        return keras.utils.get_file(
            fname=entry.filename, origin=entry.url, file_hash=entry.sha256,
            hash_algorithm="sha256", cache_subdir="models/keras_vit",
        )
    except Exception as error:  # offline, HTTP errors, hash mismatch
        raise CheckpointError(
            f"could not download {entry.name} from {entry.url} ({type(error).__name__}: "
            f"{str(error).splitlines()[0] if str(error) else ''}). Download it "
            f"elsewhere and pass the local file instead of the name, e.g. "
            f"weights='/path/to/{entry.url.rsplit('/', 1)[-1]}'."
        ) from None


# Fields a user chooses when fine-tuning (everything else follows the checkpoint).
_USER_FIELDS = ("image_size", "num_classes", "dropout_rate", "attention_dropout_rate",
                "drop_path_rate", "include_top", "include_preprocessing", "pooling")


def load_pretrained(weights, config, variant=None, dtype=None, name=None, method=None):
    """A model with `config`'s task fields and a checkpoint's weights (the factories' loader).

    The network (width, depth, heads, GELU, epsilon, normalisation) follows the
    checkpoint; image size, classes and dropout rates follow `config`. If the
    classes differ from the checkpoint's head, the head (and any pre-logits
    layer, as the original fine-tuning does) gives way to a zero head; if the
    image size differs, the position embeddings are resampled ("linear" for
    the original files, "bicubic" for timm and HF, unless `method` says).

    Args:
        weights: a registered name ("augreg_in21k", "B/16:augreg_in21k") or a
            local path.
        config: the `ViTConfig` asked for.
        variant: the factory's variant, e.g. "B/16". Defaults to None.
        dtype: dtype policy. Defaults to None.
        name: model name. Defaults to None.
        method: None, "linear" or "bicubic". Defaults to None.

    Returns:
        A `keras_vit.VisionTransformer`.
    """
    from keras_vit.models.vit import VisionTransformer
    from keras_vit.surgery import transfer_weights

    path, entry = resolve(weights, variant)
    fmt = entry.format if entry else detect_format(path)
    source, had_head = _convert(path, fmt, variant, dtype, None, config.num_classes, {})
    src = source.config
    for key in ("hidden_size", "num_layers", "num_heads", "mlp_dim", "patch_size", "num_channels"):
        if getattr(src, key) != getattr(config, key):
            raise CheckpointError(
                f"{weights} holds a model with {key}={getattr(src, key)}, but the "
                f"model asked for has {key}={getattr(config, key)}."
            )
    keep_head = (had_head and src.include_top and config.include_top
                 and config.num_classes == src.num_classes)
    target = src.replace(
        **{k: getattr(config, k) for k in _USER_FIELDS},
        representation_size=src.representation_size if keep_head else config.representation_size,
    )
    model = VisionTransformer(target, dtype=dtype, name=name or "vit")
    skip = () if keep_head else ("head", "pre_logits")
    transfer_weights(source, model, skip=skip, posemb_grids=(src.grid_size, target.grid_size),
                     method=method or _RESAMPLE[fmt])
    return model
