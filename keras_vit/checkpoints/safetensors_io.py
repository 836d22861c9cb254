"""Reading `.safetensors` files (never pickle) with one-line errors."""

import json
import os
import struct

from keras_vit.checkpoints.port import CheckpointError
from keras_vit.checkpoints.validate import check_safetensors_header


def read(path):
    """All tensors of a `.safetensors` file as NumPy arrays."""
    from safetensors import SafetensorError
    from safetensors.numpy import load_file

    size = os.path.getsize(path)
    with open(path, "rb") as f:
        head = f.read(8)
        if len(head) < 8:
            raise CheckpointError(f"{path} is not a .safetensors file (only {size} bytes).")
        n = struct.unpack("<Q", head)[0]
        if n > size - 8 or n > 100 * 2**20:
            raise CheckpointError(
                f"{path} is not a .safetensors file (its header length {n} does not "
                f"fit a {size}-byte file; truncated, or another format?)."
            )
        try:
            header = json.loads(f.read(n))
        except (ValueError, RecursionError) as error:
            raise CheckpointError(f"{path} is not a .safetensors file (unreadable header).") from error
    if isinstance(header, dict):
        ends = [v["data_offsets"][1] for k, v in header.items() if k != "__metadata__"
                and isinstance(v, dict) and isinstance(v.get("data_offsets"), list)
                and len(v["data_offsets"]) == 2 and type(v["data_offsets"][1]) is int]
        if ends and 8 + n + max(ends) > size:
            raise CheckpointError(
                f"{path} is truncated: its header describes {8 + n + max(ends)} bytes, "
                f"the file has {size}."
            )
    check_safetensors_header(header, path, size - 8 - n)
    try:
        return load_file(path)
    except (SafetensorError, ValueError, TypeError, OSError) as error:
        raise CheckpointError(f"{path} is not a readable .safetensors file: {error}") from error


def keys(path):
    """The tensor names in a `.safetensors` header, or None if it is not one."""
    try:
        with open(path, "rb") as f:
            n = struct.unpack("<Q", f.read(8))[0]
            if n > 100 * 2**20:
                return None
            header = json.loads(f.read(n))
            return [k for k in header if k != "__metadata__"] if isinstance(header, dict) else None
    except (OSError, ValueError, RecursionError, struct.error, UnicodeDecodeError):
        return None
