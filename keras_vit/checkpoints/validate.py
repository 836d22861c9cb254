"""Checks on checkpoint files before anything is built from them.

A checkpoint is data from the internet: a tensor's shape decides the model that
is built, a header decides what is allocated. Every check here runs before the
model exists, and each refusal is one `CheckpointError` line naming the file
and the tensor or field.

- `check_regular_file`: a file inside a checkpoint folder that is a link out
  of it (port.read_json, the bounded JSON read, calls it).
- `check_fields`: the types of the fields read from a config.json.
- `check_safetensors_header`: each entry a dtype, a shape of non-negative
  ints and offsets that match them.
- `check_npz`: each member's declared size capped, its array header read
  and matched to the member's size before anything is decompressed.
- `check_tensors`: floating point, finite.
- `check_budget`: the model the inferred fields describe holds no more
  parameters than the checkpoint has numbers (a (1, 1, 1, 20000) patch
  kernel would imply a 20000-wide model: 13 GB for an 80 kB file).
"""

import json
import math
import os
import zipfile

import numpy as np

from keras_vit.checkpoints.port import CheckpointError, inside, link_roots
from keras_vit.models.config import ViTConfig

# The largest official checkpoint (ViT-H/14, float32) is ~2.5 GB.
MAX_CHECKPOINT_BYTES = 8 * 2**30
MAX_NPZ_MEMBERS = 100_000
MAX_KERAS_CONFIG_BYTES = 4 * 2**20
# A zip bomb inside the 8 GB cap: float weights compress little (random-looking values
# about 1.1x), and what compresses far (a zero-initialised head) is small, under 150 MB
# even for ViT-G's 21k-class head. A member decompressing to more than 256 MiB at more
# than 100x its stored size is refused before anything is read.
MAX_NPZ_RATIO_BYTES = 256 * 2**20
MAX_NPZ_RATIO = 100
# Parameters a checkpoint's shapes may imply beyond the numbers it holds: the
# position table resampled to a size asked for and small bookkeeping.
BUDGET_SLACK = 4096
FLOAT_KINDS = "f"
SAFETENSORS_ITEMSIZE = {
    "F64": 8, "F32": 4, "F16": 2, "BF16": 2, "I64": 8, "I32": 4, "I16": 2, "I8": 1,
    "U64": 8, "U32": 4, "U16": 2, "U8": 1, "BOOL": 1, "F8_E4M3": 1, "F8_E5M2": 1,
}
SAFETENSORS_FLOATS = ("F64", "F32", "F16", "BF16")


def check_regular_file(path, folder=None):
    """Refuses a link leaving `folder` (default: the file's own folder), or a non-file."""
    folder = os.path.dirname(os.path.abspath(path)) if folder is None else folder
    real = os.path.realpath(path)
    if not inside(real, link_roots(folder)):
        raise CheckpointError(f"{path} is a link leaving {folder} (to {real}); refusing to follow it.")
    if os.path.exists(path) and not os.path.isfile(real):
        raise CheckpointError(f"{path} is not a regular file.")


# Field types of the config files read (absent fields keep their defaults).
# "number": a finite int or float; "numbers": one or a list of up to 4 numbers;
# "size": a positive int or a list of two.
HF_CONFIG_FIELDS = {
    "model_type": str, "num_attention_heads": int, "layer_norm_eps": "number",
    "hidden_act": str, "pooler_act": str, "image_size": "size", "patch_size": "size",
    "hidden_size": int, "num_hidden_layers": int, "intermediate_size": int,
    "num_channels": int, "qkv_bias": bool,
}
HF_PREPROCESSOR_FIELDS = {
    "do_rescale": bool, "rescale_factor": "number", "do_normalize": bool,
    "image_mean": "numbers", "image_std": "numbers",
}
TIMM_CONFIG_FIELDS = {
    "architecture": str, "num_classes": int, "global_pool": str, "model_args": dict,
    "pretrained_cfg": dict,
}
TIMM_PRETRAINED_CFG_FIELDS = {"mean": "numbers", "std": "numbers", "input_size": list}


def check_fields(config, schema, path):
    """Refuses a field of `config` (read from `path`) whose value has the wrong type."""
    for key, kind in schema.items():
        if key in config and not _is(config[key], kind):
            expected = kind if isinstance(kind, str) else kind.__name__
            raise CheckpointError(
                f"{path}: field `{key}` should be a {_KIND_NAMES.get(expected, expected)}; "
                f"it is {config[key]!r:.60}.")


_KIND_NAMES = {"number": "finite number", "numbers": "finite number or a list of 1 to 4",
               "size": "positive int or a [height, width] pair", "int": "whole number",
               "str": "string", "bool": "true/false", "dict": "JSON object", "list": "list"}


def _is(value, kind):
    finite = lambda v: (isinstance(v, (int, float)) and not isinstance(v, bool)  # noqa: E731
                        and math.isfinite(v))
    if kind == "number":
        return finite(value)
    if kind == "numbers":
        values = value if isinstance(value, list) else [value]
        return 1 <= len(values) <= 4 and all(finite(v) for v in values)
    if kind == "size":
        values = value if isinstance(value, list) else [value]
        return len(values) in (1, 2) and all(type(v) is int and v > 0 for v in values)
    if kind is int:
        return type(value) is int
    return isinstance(value, kind)


def check_safetensors_header(header, path, data_bytes):
    """Each tensor entry: a known dtype, a shape, offsets inside the data that fit both."""
    if not isinstance(header, dict):
        raise CheckpointError(f"{path}: the safetensors header is not a JSON object.")
    for name, entry in header.items():
        if name == "__metadata__":
            if not isinstance(entry, dict):
                raise CheckpointError(f"{path}: header field `__metadata__` is not an object.")
            continue
        if not isinstance(entry, dict):
            raise CheckpointError(f"{path}: header entry `{name}` is not an object: {entry!r:.40}")
        dtype, shape, offsets = entry.get("dtype"), entry.get("shape"), entry.get("data_offsets")
        if dtype not in SAFETENSORS_ITEMSIZE:
            raise CheckpointError(f"{path}: tensor `{name}` has an unknown dtype {dtype!r:.40}.")
        if (not isinstance(shape, list) or len(shape) > 8
                or not all(type(d) is int and d >= 0 for d in shape)):
            raise CheckpointError(f"{path}: tensor `{name}` has an invalid shape {shape!r:.60}.")
        if (not isinstance(offsets, list) or len(offsets) != 2
                or not all(type(o) is int for o in offsets)
                or not 0 <= offsets[0] <= offsets[1] <= data_bytes):
            raise CheckpointError(
                f"{path}: tensor `{name}` has invalid data_offsets {offsets!r:.60} "
                f"(the data is {data_bytes} bytes).")
        if offsets[1] - offsets[0] != math.prod(shape) * SAFETENSORS_ITEMSIZE[dtype]:
            raise CheckpointError(
                f"{path}: tensor `{name}` ({dtype}, shape {shape}) does not fit its "
                f"{offsets[1] - offsets[0]} bytes.")
        if dtype not in SAFETENSORS_FLOATS:
            raise CheckpointError(
                f"{path}: tensor `{name}` is {dtype}; a ViT checkpoint holds floating-point "
                "weights.")


def check_npz(path):
    """Caps an .npz's members and matches each array header to its member before reading."""
    with zipfile.ZipFile(path) as archive:
        members = archive.infolist()
        if len(members) > MAX_NPZ_MEMBERS:
            raise CheckpointError(f"{path} has {len(members)} members; not a checkpoint.")
        total = sum(m.file_size for m in members)
        if total > MAX_CHECKPOINT_BYTES:
            raise CheckpointError(
                f"{path} would decompress to {total} bytes (more than "
                f"{MAX_CHECKPOINT_BYTES}); refusing it.")
        for member in members:
            if (member.file_size > MAX_NPZ_RATIO_BYTES
                    and member.file_size > MAX_NPZ_RATIO * max(member.compress_size, 1)):
                raise CheckpointError(
                    f"{path}: member `{member.filename}` would decompress to "
                    f"{member.file_size} bytes from {member.compress_size} "
                    f"({member.file_size // max(member.compress_size, 1)}x; weights compress "
                    f"less than {MAX_NPZ_RATIO}x); refusing it.")
            with archive.open(member) as f:
                try:
                    version = np.lib.format.read_magic(f)
                    if version == (1, 0):
                        shape, fortran, dtype = np.lib.format.read_array_header_1_0(f)
                    else:
                        shape, fortran, dtype = np.lib.format.read_array_header_2_0(f)
                except (ValueError, OSError, EOFError, SyntaxError, TypeError) as error:
                    raise CheckpointError(
                        f"{path}: member `{member.filename}` is not a NumPy array "
                        f"({_first_line(error)}).") from error
                key = member.filename[:-4] if member.filename.endswith(".npy") else member.filename
                if dtype.hasobject:
                    raise CheckpointError(
                        f"{path} holds pickled Python objects (`{key}`); refusing to unpickle "
                        "an untrusted file (checkpoints hold plain numeric arrays).")
                if dtype.kind not in FLOAT_KINDS:
                    raise CheckpointError(
                        f"{path}: tensor `{key}` is {dtype}; a ViT checkpoint holds "
                        "floating-point weights.")
                needed = math.prod(shape) * dtype.itemsize
                if needed > member.file_size:
                    raise CheckpointError(
                        f"{path}: tensor `{key}` claims shape {shape} ({needed} bytes) in a "
                        f"{member.file_size}-byte member; truncated or forged.")


def check_tensors(tensors, path):
    """Every tensor floating point and finite (a NaN weight makes every prediction NaN)."""
    for key, value in tensors.items():
        array = np.asarray(value)
        if array.dtype.kind not in FLOAT_KINDS:
            raise CheckpointError(
                f"{path}: tensor `{key}` is {array.dtype}; a ViT checkpoint holds "
                "floating-point weights.")
        if not np.isfinite(array).all():
            raise CheckpointError(f"{path}: tensor `{key}` holds NaN or infinite values.")


def check_budget(num_params, tensors, path, extra=0):
    """Refuses a configuration with more parameters than the checkpoint has numbers.

    Args:
        num_params: parameters of the model the checkpoint's shapes imply.
        tensors: the checkpoint's tensors.
        path: the file (for the message).
        extra: parameters the model adds on purpose (a new head, a larger
            position table). Defaults to 0.
    """
    held = sum(int(np.prod(np.shape(t))) for t in tensors.values())
    if num_params > held + extra + BUDGET_SLACK:
        raise CheckpointError(
            f"{path}: its tensor shapes imply a model of {num_params} parameters, but it "
            f"holds only {held} numbers; a tensor's shape is wrong.")


def config_params(config):
    """The parameter count of the model a `ViTConfig` describes, without building it."""
    d, p, c = config.hidden_size, config.patch_size, config.num_channels
    layers = config.num_layers or 0
    n = config.num_patches + config.num_prefix_tokens
    block = 4 * d * d + 2 * d * config.mlp_dim
    return p * p * c * d + n * d + layers * block


def _first_line(error):
    return str(error).splitlines()[0][:200] if str(error) else type(error).__name__


def check_keras_file(path):
    """Checks a `.keras` file's ViTConfig before Keras builds it.

    A `.keras` file's config.json is built as written: `num_layers` 10**9 hangs,
    `image_size` 40000 allocates gigabytes. The config is validated as a user's
    is (`ViTConfig.from_dict`) and the model it describes must fit the weights
    the file holds (one byte per parameter at the least: int8-quantized).
    """
    try:
        with zipfile.ZipFile(path) as archive:
            members = {m.filename: m for m in archive.infolist()}
            member = members.get("config.json")
            if member is None:
                return  # Keras' own loader reports it
            if member.file_size > MAX_KERAS_CONFIG_BYTES:
                raise CheckpointError(
                    f"{path}: its config.json is {member.file_size} bytes; not a model config.")
            config = json.loads(archive.read(member))
            weights = sum(m.file_size for name, m in members.items() if name.endswith(".h5"))
    except (zipfile.BadZipFile, ValueError, RecursionError, OSError, EOFError) as error:
        if isinstance(error, CheckpointError):
            raise
        return  # not a readable zip: the caller's own check says so
    inner = config.get("config") if isinstance(config, dict) else None
    if (not isinstance(config, dict) or config.get("class_name") != "VisionTransformer"
            or not isinstance(inner, dict) or not isinstance(inner.get("config"), dict)):
        return
    try:
        vit = ViTConfig.from_dict(inner["config"])
    except (TypeError, ValueError) as error:
        raise CheckpointError(
            f"{path}: config.json field `config`: {str(error).splitlines()[0][:200]}") from error
    params = config_params(vit)
    if params > weights + BUDGET_SLACK:
        raise CheckpointError(
            f"{path}: its config.json describes a model of {params} parameters, but the "
            f"file holds {weights} bytes of weights; the config is wrong.")


# HF config.json fields the tensors also decide: config field -> ViTConfig field.
HF_RECORDED = {"hidden_size": "hidden_size", "num_hidden_layers": "num_layers",
               "intermediate_size": "mlp_dim", "patch_size": "patch_size",
               "num_channels": "num_channels"}


def check_recorded_fields(config, fields, path, tensors_path, recorded=HF_RECORDED):
    """Refuses a config field that contradicts what the tensors say, naming both."""
    for key, name in recorded.items():
        if key in config and name in fields and config[key] != fields[name]:
            raise CheckpointError(
                f"{path}: field `{key}` is {config[key]!r}, but the tensors of "
                f"{tensors_path} give {name}={fields[name]!r}.")
