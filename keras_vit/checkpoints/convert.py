"""The one loading pipeline: resolve -> read and convert -> surgery.

`load` is the only way weights enter a model: `convert_checkpoint`, the named
factories' `weights=` (`keras_vit.checkpoints.factories`) and the fine-tuning
loader all call it. It

1. resolves a registered name (downloaded through `keras.utils.get_file`), a
   local file or a folder;
2. reads the checkpoint once, and infers the architecture from its tensors and
   config files (one module per format, npz.py / timm.py / hf.py, each on the
   `WeightPorter` primitive of port.py);
3. builds the model asked for once, at its own image size and head, and ports
   every tensor: the position embeddings resampled on the way in as the
   checkpoint's source does (`surgery.resample_position_embeddings`), a
   head that is not wanted dropped, a new one zero-initialised.

Strict: every source tensor is used or deliberately dropped, every model
weight set (a new head excepted); what cannot be honoured is refused by name.
"""

import collections
import os
import warnings

import keras
import numpy as np

from keras_vit.checkpoints import hf, hub, keras_hub, labels, npz, registry, safetensors_io, timm, validate
from keras_vit.checkpoints.port import CheckpointError, WeightPorter, read_json
from keras_vit.errors import ArgumentError, DataNotFound, KerasViTError
from keras_vit.models.config import ViTConfig, check_field_names, stem_stride
from keras_vit.models.variants import variant_config
from keras_vit.models.vit import VisionTransformer
from keras_vit.surgery import (
    replace_head,
    resample_position_embeddings,
    resize_position_embeddings,
    transfer_weights,
)
from keras_vit.utils import to_hw

FORMATS = ("npz", "timm", "hf")
MODULES = {"npz": npz, "timm": timm, "hf": hf}
# Fields that describe the network and must come from the checkpoint.
_ARCHITECTURE = ("patch_size", "num_channels", "hidden_size", "num_layers", "num_heads",
                 "mlp_dim", "class_token", "representation_size", "hybrid_layers",
                 "distillation_token", "distilled_head", "num_register_tokens", "fc_norm",
                 "layer_scale_init_value", "gelu_approximate", "layer_norm_epsilon",
                 "qk_norm", "pre_norm", "quick_gelu", "head_bias")
# What an .npz does not record: the original code's flax GELU (tanh) is a
# convention, and timm reads the same files with the exact one.
_NPZ_UNRECORDED = ("gelu_approximate",)
# How each source resamples position embeddings for a new resolution (method,
# antialias): the original code's scipy zoom; timm's resample_abs_pos_embed
# with antialias=True wherever timm changes a model's size; HF's
# interpolate_pos_encoding (plain bicubic). Converted models record it.
RESAMPLE = {"npz": ("linear", False), "timm": ("bicubic", True), "hf": ("bicubic", False)}
_HEAD_LAYERS = ("head", "head_dist", "pre_logits")

Source = collections.namedtuple("Source", "path format tensors fields n_patches layout")


def detect_format(path):
    """"npz", "timm" or "hf" for a local file or folder."""
    if os.path.isdir(path):
        config = os.path.join(path, "config.json")
        if not os.path.exists(config):
            raise CheckpointError(
                f"{path} is a folder without config.json; expected an HF or timm hub folder."
            )
        meta = read_json(config, "config")
        if "architecture" in meta:
            return "timm"
        model_type = meta.get("model_type")
        if isinstance(model_type, str) and (model_type in hf.MODEL_TYPES
                                            or model_type in hf.REFUSED):
            return "hf"  # a refused family is refused by name, with why, when read
        raise CheckpointError(
            f"{config} names neither a timm `architecture` nor an HF model_type in "
            f"{list(hf.MODEL_TYPES)} (it says model_type={meta.get('model_type')!r})."
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


def read(path, format, variant=None, image_size=None):
    """Reads a local checkpoint once: a `Source` (tensors, inferred fields, layout).

    Every tensor is checked (floating point, finite) before its shapes are read.
    """
    try:
        return _read(path, format, variant, image_size)
    except (KeyError, IndexError, ValueError) as error:
        if isinstance(error, KerasViTError):
            raise
        # The readers index tensors and unpack shapes the file decides: a tensor
        # missing (KeyError) or of another rank (IndexError, ValueError "unpack").
        raise CheckpointError(
            f"{path}: a tensor is missing or has the wrong rank for its layout "
            f"({type(error).__name__}: {str(error)[:120]})."
        ) from error


def _read(path, format, variant, image_size):
    if format == "npz":
        if os.path.isdir(path):
            raise CheckpointError(f"{path} is a folder; the npz format is one file.")
        tensors, fields, n, layout = npz.infer_config(npz.read(path), path)
        layout = dict(layout, unrecorded=_NPZ_UNRECORDED)
    elif format == "timm":
        meta = {}
        if os.path.isdir(path):
            meta = timm.hub_meta(read_json(os.path.join(path, "config.json"), "timm config"),
                                 os.path.join(path, "config.json"))
            folder, path = path, os.path.join(path, "model.safetensors")
            if not os.path.exists(path):
                raise CheckpointError(f"{path} is missing (only safetensors are read).")
            validate.check_regular_file(path, folder)
        if image_size is not None and "image_size" not in meta:
            meta["image_size"] = image_size
        tensors = safetensors_io.read(path)
        fields, n, layout = timm.infer_config(tensors, path, meta)
    elif format == "hf":
        folder = path if os.path.isdir(path) else os.path.dirname(path) or "."
        path = path if not os.path.isdir(path) else os.path.join(folder, "model.safetensors")
        if not os.path.exists(path):
            raise CheckpointError(f"{folder} has no model.safetensors (only safetensors are read).")
        validate.check_regular_file(path, folder)
        meta = hf.read_meta(folder)
        tensors = hf.normalise_keys(safetensors_io.read(path))
        fields, n, layout = hf.infer_config(tensors, path, meta)
        validate.check_recorded_fields(meta[0], fields, os.path.join(folder, "config.json"), path)
    else:
        raise ArgumentError(
            f"Received an invalid value for argument `format`, expected one of "
            f"{', '.join(FORMATS)}. Received: format={format!r}"
        )
    validate.check_tensors(tensors, path)
    method, antialias = RESAMPLE[format]
    fields.setdefault("resample_method", method)
    fields.setdefault("resample_antialias", antialias)
    return Source(path, format, tensors, fields, n, layout)


def _native_image_size(fields, n_patches, wanted, source):
    """The image size the checkpoint's position embedding was made for."""
    step = fields["patch_size"] * stem_stride(fields.get("hybrid_layers"))
    if n_patches is None:  # no position embedding: any size
        return wanted or fields.get("image_size", 224)
    for size in (fields.get("image_size"), wanted):  # a recorded size, then the one asked for
        if size is not None:
            h, w = to_hw("image_size", size)
            if (h // step) * (w // step) == n_patches:
                return size
    side = int(round(np.sqrt(n_patches)))
    if side * side != n_patches:
        raise CheckpointError(
            f"{source}: the position embedding has {n_patches} patch tokens, not a "
            "square grid, and no config gives its size; pass image_size=(height, width) "
            "(CLI: --set image_size=H,W)."
        )
    return side * step


def load(source, format=None, variant=None, dtype=None, name=None, new_head=False,
         **overrides):
    """A model with a checkpoint's weights: resolve -> read and convert -> surgery.

    The network (width, depth, heads, tokens, GELU, epsilon, normalisation)
    follows the checkpoint; `overrides` set the rest (image size, classes,
    dropout rates, ...). A different `image_size` resamples the position
    embeddings as the checkpoint's source does (recorded in the model's
    `resample_method` / `resample_antialias`, which later resizes follow).

    Args:
        source: a registered name ("B/16:augreg_in21k", or "augreg_in21k"
            with `variant`), a local file or a folder.
        format: "npz", "timm", "hf" or None (inferred). Defaults to None.
        variant: a variant name such as "B/16": what a file does not record
            (a timm state dict's heads) and a check of what it does.
            Defaults to None.
        dtype: dtype policy. Defaults to the global one.
        name: model name. Defaults to "vit".
        new_head: bool. True (fine-tuning, the factories): a `num_classes`
            other than the checkpoint's gives a new zero head, and the
            pre-logits layer goes as in the original fine-tuning. False
            (conversion): such a request is an error. Defaults to False.
        **overrides: `ViTConfig` fields.

    Returns:
        A `keras_vit.VisionTransformer`.
    """
    check_field_names(overrides)
    path, entry = resolve(source, variant)
    if entry is None and path.endswith(".keras"):
        return _from_keras_file(path, dtype, name, new_head, overrides)
    if entry is None and keras_hub.is_preset(path):  # a keras-hub ViT preset
        if overrides:
            raise CheckpointError(
                f"{path} is a keras-hub preset, loaded as it is (its head, or every "
                f"token); {sorted(overrides)} cannot be set on loading: convert "
                "it, then use keras_vit.replace_head / resize_position_embeddings.")
        return keras_hub.load_preset(path, dtype=dtype, name=name)
    if entry is not None:
        format = format or entry.format
        variant = variant or entry.variant
    if not os.path.exists(path):
        raise DataNotFound(f"No checkpoint file or folder at {path}.")
    if format is not None and format not in FORMATS:
        raise ArgumentError(
            f"Received an invalid value for argument `format`, expected one of "
            f"{', '.join(FORMATS)}. Received: format={format!r}"
        )
    src = read(path, format or detect_format(path), variant, overrides.get("image_size"))
    path, fields = src.path, dict(src.fields)
    variant = variant or src.layout.get("variant")  # a timm hub folder's architecture
    if variant:
        for key, value in _variant_fields(variant).items():
            if key == "num_heads" and "num_heads" not in fields:
                fields["num_heads"] = value
            elif fields.get(key, value) != value:
                raise CheckpointError(
                    f"{path} does not hold a {variant}: its {key} is {fields[key]}, a "
                    f"{variant} has {value}."
                )
    unrecorded = src.layout.get("unrecorded", ())
    for key, value in overrides.items():
        if key in unrecorded and key in fields and fields[key] != value:
            warnings.warn(
                f"{path} does not record {key}; using {key}={value!r} as asked (the "
                f"default would be {fields[key]!r}).", stacklevel=3)
            fields[key] = value
        elif key in _ARCHITECTURE and key in fields and fields[key] != value:
            raise CheckpointError(
                f"{path}: override {key}={value!r} contradicts the checkpoint, whose "
                f"{key} is {fields[key]!r}."
            )
        if key in _ARCHITECTURE and key not in fields:
            fields[key] = value  # what the file does not record (a state dict's heads)
    if "num_heads" not in fields:
        raise CheckpointError(
            f"{path}: a timm state dict does not record the number of heads; pass "
            "variant= (e.g. 'B/16') or num_heads= (CLI: --variant or --set num_heads=N)."
        )

    if "normalization_mean" in unrecorded and not {"normalization_mean", "normalization_std",
                                                   "include_preprocessing"} & set(overrides):
        warnings.warn(
            f"{path} records no normalisation; assumed x / 127.5 - 1 (mean = std = 0.5). "
            "For ImageNet's (DeiT, most timm fine-tunes) pass normalization_mean="
            "(0.485, 0.456, 0.406), normalization_std=(0.229, 0.224, 0.225) (CLI: --set "
            "normalization_mean=0.485,0.456,0.406 --set normalization_std=0.229,0.224,0.225).",
            stacklevel=3)

    # The head: the checkpoint's, a new zero one, or none (features).
    layout = dict(src.layout)
    if entry is not None and entry.tag == "orig_in21k" and "num_classes" in fields:
        # vision_transformer issues #10 and #32: these files' 21843-way head is all
        # zeros (timm: "classifier not valid", num_classes=0). Never serve it.
        fields.pop("num_classes")
        layout["invalid_head"] = True
        if overrides.get("include_top", True) and overrides.get("num_classes") is None:
            raise CheckpointError(
                f"{entry.name} carries no valid classifier (its 21843-way head is all "
                "zeros, vision_transformer issues #10 and #32): pass num_classes=K for a "
                "new zero head, or include_top=False for features."
            )
    has_head = "num_classes" in fields
    wanted = overrides.get("num_classes")
    include_top = overrides.get("include_top", has_head or wanted is not None)
    keep_head = include_top and has_head and wanted in (None, fields.get("num_classes"))
    if include_top and has_head and not keep_head and not new_head:
        raise CheckpointError(
            f"{path}: override num_classes={wanted} contradicts the checkpoint's head of "
            f"{fields['num_classes']} classes; convert, then use "
            "keras_vit.replace_head for a new head."
        )
    fresh = include_top and not keep_head
    if fresh and wanted is None:
        raise CheckpointError(
            f"{path} has no classification head; pass num_classes= for a new zero "
            "head, or include_top=False for features."
        )
    new_layers = ()
    if fresh:
        new_layers = ("head", "head_dist")
        if new_head and "representation_size" in fields:  # the original fine-tuning
            fields.pop("representation_size")
            new_layers += ("pre_logits",)
        fields["num_classes"] = wanted
        fields["head_bias"] = True  # a new classifier, even after CLIP's bias-free projection
    fields["include_top"] = bool(include_top)
    if keep_head:  # the checkpoint's own class names, or ImageNet's for an ImageNet head
        fields["class_names"] = labels.class_names(path, src.format, fields["num_classes"], entry)
    if "pooling" in overrides and overrides["pooling"] is None and fields.get(
            "representation_size") is not None:
        # Every token asked for: the pre-logits Dense (HF ViTModel's pooler) reads only
        # the pooled token, so it has nothing to act on.
        warnings.warn(
            f"{path}: pooling=None gives every token; its pre-logits layer (HF's pooler, "
            "`pre_logits`) acts on the pooled token only and is dropped.", stacklevel=3)
        fields.pop("representation_size")

    native_size = _native_image_size(fields, src.n_patches, overrides.get("image_size"), path)
    try:
        native = ViTConfig.from_dict({**fields, "image_size": native_size})
    except ArgumentError as error:  # a value the file gave, not one the user typed
        raise CheckpointError(f"{path} describes an invalid model: {error}") from error
    # Before anything is allocated: the shapes read must describe a model this file fills.
    validate.check_budget(validate.config_params(native), src.tensors, path)
    config = native.replace(**{k: v for k, v in overrides.items() if k not in _ARCHITECTURE})
    model = VisionTransformer(config, dtype=dtype, name=name or "vit")
    porter = WeightPorter(model, src.tensors, source=path, new_layers=new_layers,
                          posemb=_posemb_resampler(native, config))
    MODULES[src.format].port(porter, config, layout)
    porter.finish(allowed_unset=new_layers)
    return model


def _from_keras_file(path, dtype, name, new_head, overrides):
    """A saved keras_vit model, through the same surgery (head, size, policy)."""
    validate.check_keras_file(path)
    try:
        model = keras.models.load_model(path)
    except Exception as error:
        raise ArgumentError(
            f"Received an invalid value for argument `weights`: {path} is not a "
            f"Keras model file ({type(error).__name__})."
        ) from error
    if getattr(model, "config", None) is None:
        raise ArgumentError(
            "Received an invalid value for argument `weights`: expected a keras_vit "
            f"VisionTransformer. Received: a {type(model).__name__} from {path}"
        )
    overrides = dict(overrides)
    wanted = overrides.pop("num_classes", None)
    image_size = overrides.pop("image_size", None)
    config = model.config
    if wanted is not None and (not config.include_top or config.num_classes != wanted):
        if not new_head:
            raise CheckpointError(
                f"{path}: num_classes={wanted} differs from the model's head; use "
                "keras_vit.replace_head for a new head."
            )
        model = replace_head(model, wanted)
    if image_size is not None and to_hw("image_size", image_size) != model.config.image_hw:
        model = resize_position_embeddings(model, image_size)
    policy = keras.dtype_policies.get(dtype) if dtype else None
    if overrides or (policy and policy.name != model.dtype_policy.name):
        recast = VisionTransformer(model.config.replace(**overrides),
                                   dtype=policy or model.dtype_policy, name=name or model.name)
        transfer_weights(model, recast)  # variables stay float32 under mixed policies
        model = recast
    return model


def _variant_fields(variant):
    c = variant_config(variant)
    return {k: getattr(c, k) for k in ("patch_size", "hidden_size", "num_layers",
                                       "num_heads", "mlp_dim")}


def _posemb_resampler(native, config):
    """The transform of a position-embedding table from the native grid to `config`'s."""
    if native.grid_size == config.grid_size:
        return None

    def resample(table):
        return resample_position_embeddings(
            table, config.grid_size, config.num_prefix_tokens, config.resample_method,
            old_grid=native.grid_size, antialias=config.resample_antialias,
        )

    return resample


def convert_checkpoint(source, format=None, variant=None, dtype=None, name=None,
                       **config_overrides):
    """Converts a ViT checkpoint to a Keras `VisionTransformer`.

    Strict: every source tensor is used and every model weight set; a tensor
    that does not fit names itself and both shapes.

    Args:
        source: a local path (an original `.npz`, a timm `.safetensors` state
            dict or hub folder, an HF ViT or DeiT folder with config.json and
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
            resamples the position embeddings as the source does (linear for
            the original files, antialiased bicubic for timm, plain bicubic
            for HF); training fields (dropout_rate, ...) are free.
            `include_top=False` drops the head.

    Returns:
        A `keras_vit.VisionTransformer` taking [0, 255] pixels, normalised as
        the source expects.

    Example:

    >>> model = keras_vit.convert_checkpoint("ViT-B_16.npz")
    """
    return load(source, format=format, variant=variant, dtype=dtype, name=name,
                **config_overrides)


def load_pretrained(weights, config, variant=None, dtype=None, name=None):
    """A model with `config`'s task fields and a checkpoint's weights.

    `load(weights, new_head=True, ...)` with the image size, classes, dropout
    rates and pooling of `config`; its architecture must match the checkpoint.
    """
    fields = ("image_size", "num_classes", "dropout_rate", "attention_dropout_rate",
              "drop_path_rate", "include_top", "include_preprocessing")
    overrides = {k: getattr(config, k) for k in fields}
    for key in ("hidden_size", "num_layers", "num_heads", "mlp_dim", "patch_size",
                "num_channels"):
        overrides[key] = getattr(config, key)
    return load(weights, variant=variant, dtype=dtype, name=name, new_head=True, **overrides)


def resolve(source, variant=None):
    """(local path, registry entry or None): downloads registered names."""
    if not isinstance(source, (str, os.PathLike)):
        raise ArgumentError(
            "Received an invalid value for argument `source`, expected a path or a "
            f"registered checkpoint name. Received: source={source!r}"
        )
    source = os.fspath(source)
    if hub.is_hub_name(source):  # hf://owner/name: its snapshot in the hub cache
        return hub.download(source), None
    if os.path.exists(source):
        return source, None
    entry = registry.find(source, variant)
    if entry is None:
        if os.sep in source or "." in os.path.basename(source):
            raise DataNotFound(f"No checkpoint file or folder at {source}.")
        known = ", ".join(registry.names(variant) or registry.names())
        raise ArgumentError(
            f"Received an invalid value for argument `weights`: {source!r} is neither a "
            f"local file nor a registered checkpoint. Registered: {known}"
        )
    return download(entry), entry


def download(entry):
    """The local path of a registered checkpoint, through `keras.utils.get_file`."""
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
        ) from error
