"""Mutated checkpoints and images for tests/test_fuzz.py, and the worker that reads them.

`make_cases(folder, count, seed)` writes `count` cases (each a sub-folder holding one
mutated file or checkpoint folder plus `case.json`: what it is and how it was made),
round-robin over every format. `python tests/fuzz_cases.py FOLDER...` reads each case
with what a user would run on it and prints one JSON line per case:
    ok     a model loaded (or an image read: finite pixels in [0, 255])
    clean  a one-line KerasViTError / OSError naming the file
    bad    a KerasViTError / OSError over several lines or naming no file
    bug    any other exception (its last traceback line)
    hang   over the per-case time limit (signal.alarm)
The parent runs the worker under RLIMIT_AS and a timeout, and reads a worker that
died mid-case (memory) from the case it printed last.
"""

import io
import json
import os
import shutil
import signal
import sys
import traceback
import zipfile

import numpy as np

HERE = os.path.dirname(os.path.abspath(__file__))
FIXTURES = os.path.join(HERE, "fixtures")
FORMATS = ("npz", "bigvision", "timm_file", "timm_hub", "hf", "keras", "image")
CASE_SECONDS = 60


# ---- making cases -------------------------------------------------------------------------

def _npz_items(path):
    with np.load(path, allow_pickle=False) as f:
        return {k: f[k] for k in f.files}


def _st_items(path):
    from safetensors.numpy import load_file
    return load_file(path)


def _mutate_tensors(tensors, rng, allow_complex=True):
    """One mutation of a tensor dict: shape, dtype, NaN/Inf, a missing/extra/renamed key."""
    keys = sorted(tensors)
    key = keys[rng.integers(len(keys))]
    kind = rng.choice(["shape", "bigdim", "dtype", "nan", "drop", "extra", "rename", "scalar"])
    t = dict(tensors)
    if kind == "shape":
        ndim = int(rng.integers(0, 6))
        shape = tuple(int(d) for d in rng.integers(0, 40, ndim))
        t[key] = np.zeros(shape, np.float32) if np.prod(shape) <= 200_000 else np.zeros(3, np.float32)
    elif kind == "bigdim":  # what drove memory to 13 GB: one dimension implying a huge model
        t[key] = np.zeros((1,) * int(rng.integers(0, 4)) + (int(rng.integers(1000, 20001)),),
                          np.float32)
    elif kind == "dtype":
        dtypes = [np.int32, np.int64, np.bool_, np.uint8, np.float16, np.float64]
        dtypes += [np.complex64] if allow_complex else []
        t[key] = t[key].astype(dtypes[rng.integers(len(dtypes))])
    elif kind == "nan":
        value = np.array(t[key], np.float32)
        value.reshape(-1)[rng.integers(value.size)] = rng.choice([np.nan, np.inf, -np.inf])
        t[key] = value
    elif kind == "drop":
        t.pop(key)
    elif kind == "extra":
        t[f"{key}_extra"] = np.ones(int(rng.integers(1, 10)), np.float32)
    elif kind == "rename":
        t[key.replace("0", "7", 1) if "0" in key else key + "x"] = t.pop(key)
    else:
        t[key] = np.float32(1.5)
    return t, f"{kind} {key}"


def _mutate_bytes(path, rng):
    data = bytearray(open(path, "rb").read())
    kind = rng.choice(["truncate", "flip", "garbage"])
    if kind == "truncate":
        data = data[:int(rng.integers(0, len(data)))]
    elif kind == "flip":
        for i in rng.integers(0, len(data), int(rng.integers(1, 12))):
            data[i] = int(rng.integers(256))
    else:
        data = bytes(rng.integers(0, 256, 64, dtype=np.uint8)) + data
    open(path, "wb").write(bytes(data))
    return f"bytes {kind}"


HOSTILE_VALUES = [None, 5, -1, 0, 10**9, 40000, "x", [1], [1, 2], {}, True, float("nan"),
                  float("inf"), 1e308, "deep"]


def _hostile_value(rng):
    value = HOSTILE_VALUES[rng.integers(len(HOSTILE_VALUES))]
    return "[" * 100_000 + "]" * 100_000 if value == "deep" else value


def _mutate_json_file(path, rng, keys=None):
    """One hostile change to a JSON config: a field's value or type, or the whole file."""
    config = json.load(open(path))
    kind = rng.choice(["field", "field", "field", "list", "dev_zero", "huge", "deep"])
    if kind == "field":
        keys = keys or sorted(config)
        key = keys[rng.integers(len(keys))]
        value = _hostile_value(rng)
        text = json.dumps({**config, key: "@@"}).replace(
            '"@@"', value if isinstance(value, str) and value.startswith("[[") else json.dumps(value))
        open(path, "w").write(text)
        return f"json {key}={str(value)[:20]}"
    os.remove(path)
    if kind == "list":
        open(path, "w").write("[1]")
    elif kind == "dev_zero":
        os.symlink("/dev/zero", path)
    elif kind == "huge":
        open(path, "w").write("{" + " " * (6 * 2**20) + "}")
    else:
        open(path, "w").write("[" * 200_000 + "]" * 200_000)
    return f"json {kind}"


def _write_safetensors_header(path, rng):
    """A hostile safetensors header over the original data."""
    data = open(path, "rb").read()
    n = int.from_bytes(data[:8], "little")
    header, body = json.loads(data[8:8 + n]), data[8 + n:]
    names = sorted(k for k in header if k != "__metadata__")
    name = names[rng.integers(len(names))]
    kind = rng.choice(["entry", "dtype", "shape", "offsets", "list", "metadata"])
    if kind == "entry":
        header[name] = _hostile_value(rng) if rng.random() < 0.9 else 5
    elif kind == "dtype":
        header[name]["dtype"] = ["I32", "BOOL", "XYZ", 5, "U8"][rng.integers(5)]
    elif kind == "shape":
        header[name]["shape"] = [[-1], [2**40], ["a"], [], 7, [2**31, 2**31]][rng.integers(6)]
    elif kind == "offsets":
        header[name]["data_offsets"] = [[0, 2**60], [5, 3], ["a", 1], [0], None][rng.integers(5)]
    elif kind == "list":
        header = [1]
    else:
        header["__metadata__"] = 5
    text = json.dumps(header).encode()
    open(path, "wb").write(len(text).to_bytes(8, "little") + text + body)
    return f"header {kind} {name}"


def _save_st(path, tensors):
    from safetensors.numpy import save_file
    save_file({k: np.ascontiguousarray(v) for k, v in tensors.items()}, path)


def _case_npz(folder, rng, source):
    path = os.path.join(folder, "model.npz")
    kind = rng.choice(["tensors", "tensors", "tensors", "bytes", "forged", "pickle"])
    tensors = _npz_items(source)
    if kind == "tensors":
        tensors, how = _mutate_tensors(tensors, rng)
        np.savez(path, **tensors)
    elif kind == "bytes":
        shutil.copy(source, path)
        how = _mutate_bytes(path, rng)
    elif kind == "forged":  # an array header claiming far more than its member holds
        np.savez(path, **tensors)
        header = io.BytesIO()
        np.lib.format.write_array_header_1_0(
            header, {"descr": "<f4", "fortran_order": False, "shape": (100_000, 100_000)})
        with zipfile.ZipFile(path, "a") as archive:
            archive.writestr("embedding/forged.npy", header.getvalue() + b"\0" * 64)
        how = "forged npy header"
    else:
        np.savez(path, **tensors, extra=np.array([{"a": 1}], dtype=object))
        how = "pickled member"
    return path, how


def _case_timm_file(folder, rng):
    path = os.path.join(folder, "model.safetensors")
    source = os.path.join(FIXTURES, "timm_tiny.safetensors")
    kind = rng.choice(["tensors", "tensors", "header", "header", "bytes"])
    if kind == "tensors":
        tensors, how = _mutate_tensors(_st_items(source), rng, allow_complex=False)
        _save_st(path, tensors)
    else:
        shutil.copy(source, path)
        how = _write_safetensors_header(path, rng) if kind == "header" else _mutate_bytes(path, rng)
    return path, how


def _case_timm_hub(folder, rng):
    hub = os.path.join(folder, "hub")
    os.makedirs(hub)
    shutil.copy(os.path.join(FIXTURES, "timm_tiny.safetensors"), os.path.join(hub, "model.safetensors"))
    config = {"architecture": "vit_custom.test", "num_classes": 5, "global_pool": "token",
              "model_args": {"num_heads": 2},
              "pretrained_cfg": {"mean": [0.5, 0.5, 0.5], "std": [0.5, 0.5, 0.5]}}
    json.dump(config, open(os.path.join(hub, "config.json"), "w"))
    if rng.random() < 0.8:
        how = _mutate_json_file(os.path.join(hub, "config.json"), rng)
    else:
        tensors, how = _mutate_tensors(_st_items(os.path.join(hub, "model.safetensors")), rng,
                                       allow_complex=False)
        _save_st(os.path.join(hub, "model.safetensors"), tensors)
    return hub, how


def _case_hf(folder, rng):
    hf = os.path.join(folder, "hf")
    shutil.copytree(os.path.join(FIXTURES, "hf_tiny"), hf)
    kind = rng.choice(["config", "config", "preprocessor", "tensors", "header"])
    if kind == "config":
        how = _mutate_json_file(os.path.join(hf, "config.json"), rng, keys=[
            "num_attention_heads", "layer_norm_eps", "hidden_act", "model_type", "image_size",
            "hidden_size", "num_hidden_layers", "intermediate_size", "patch_size", "pooler_act",
            "num_channels", "qkv_bias"])
    elif kind == "preprocessor":
        how = _mutate_json_file(os.path.join(hf, "preprocessor_config.json"), rng, keys=[
            "image_mean", "image_std", "rescale_factor", "do_rescale", "do_normalize"])
    elif kind == "tensors":
        path = os.path.join(hf, "model.safetensors")
        tensors, how = _mutate_tensors(_st_items(path), rng, allow_complex=False)
        _save_st(path, tensors)
    else:
        how = _write_safetensors_header(os.path.join(hf, "model.safetensors"), rng)
    return hf, how


def _keras_source(cache):
    path = os.path.join(cache, "tiny.keras")
    if not os.path.exists(path):
        import keras_vit
        keras_vit.convert_checkpoint(os.path.join(FIXTURES, "original_tiny.npz")).save(path)
    return path


def _case_keras(folder, rng, cache):
    path = os.path.join(folder, "model.keras")
    with zipfile.ZipFile(_keras_source(cache)) as archive:
        members = {m: archive.read(m) for m in archive.namelist()}
    config = json.loads(members["config.json"])
    kind = rng.choice(["vit", "vit", "vit", "bytes"])
    if kind == "vit":
        fields = sorted(config["config"]["config"])
        key = fields[rng.integers(len(fields))]
        value = _hostile_value(rng)
        value = [[1]] * 3 if isinstance(value, str) and value.startswith("[[") else value
        config["config"]["config"][key] = value
        how = f"ViTConfig {key}={str(value)[:20]}"
        members["config.json"] = json.dumps(config).encode()
    with zipfile.ZipFile(path, "w") as archive:
        for name, data in members.items():
            archive.writestr(name, data)
    if kind == "bytes":
        how = _mutate_bytes(path, rng)
    return path, how


def _drawing(mode_size=(20, 24)):
    """A light stroke on dark: asymmetric (not square) with one bright diagonal."""
    array = np.zeros(mode_size[::-1], np.uint8)
    for i in range(min(mode_size)):
        array[i, i] = 255
    return array


def _case_image(folder, rng, cache):
    from PIL import Image, PngImagePlugin

    kinds = ["truncate", "flip", "text", "empty", "rgba", "p_transparency", "i16", "i32", "f",
             "cmyk", "lab", "one_bit", "exif", "webp", "gif", "ztxt", "bomb", "la"]
    kind = kinds[rng.integers(len(kinds))]
    path = os.path.join(folder, "image.png")
    gray = Image.fromarray(_drawing())
    if kind in ("truncate", "flip"):
        gray.save(path)
        how = _mutate_bytes(path, rng)
        return path, how
    if kind == "text":
        open(path, "w").write("not an image\n")
    elif kind == "empty":
        open(path, "w").close()
    elif kind == "rgba":
        gray.convert("RGBA").save(path)
    elif kind == "la":
        gray.convert("LA").save(path)
    elif kind == "p_transparency":
        image = gray.convert("P")
        image.info["transparency"] = 0
        image.save(path, transparency=0)
    elif kind == "i16":
        Image.fromarray((_drawing().astype(np.uint16) * 117)).save(path)  # up to 29835
    elif kind == "i32":
        path = os.path.join(folder, "image.tif")
        Image.fromarray(_drawing().astype(np.int32) * 1000).save(path)
    elif kind == "f":
        path = os.path.join(folder, "image.tif")
        Image.fromarray(_drawing().astype(np.float32) / 255).save(path)
    elif kind == "cmyk":
        path = os.path.join(folder, "image.jpg")
        gray.convert("CMYK").save(path)
    elif kind == "lab":
        path = os.path.join(folder, "image.tif")
        gray.convert("RGB").convert("LAB").save(path)
    elif kind == "one_bit":
        gray.convert("1").save(path)
    elif kind == "exif":
        path = os.path.join(folder, "image.jpg")
        exif = Image.Exif()
        exif[0x0112] = 6
        gray.save(path, exif=exif)
    elif kind == "webp":
        gray.save(path, format="WEBP")
    elif kind == "gif":
        gray.save(path, format="GIF", save_all=True, append_images=[gray.rotate(90)])
    elif kind == "ztxt":
        info = PngImagePlugin.PngInfo()
        info.add_text("comment", "x" * (2 * 2**20), zip=True)
        gray.save(path, pnginfo=info)
    else:  # a decompression bomb: 15000 x 15000, 28 kB on disk
        bomb = os.path.join(cache, "bomb.png")
        if not os.path.exists(bomb):
            Image.new("1", (15000, 15000)).save(bomb)
        shutil.copy(bomb, path)
    return path, kind


def make_cases(folder, count, seed=0):
    """`count` case folders under `folder`, round-robin over FORMATS; returns their paths."""
    cache = os.path.join(folder, "_cache")
    os.makedirs(cache, exist_ok=True)
    cases = []
    for i in range(count):
        rng = np.random.default_rng([seed, i])
        fmt = FORMATS[i % len(FORMATS)]
        case = os.path.join(folder, f"{i:04d}_{fmt}")
        os.makedirs(case)
        if fmt in ("npz", "bigvision"):
            name = "original_tiny.npz" if fmt == "npz" else "bigvision_tiny.npz"
            path, how = _case_npz(case, rng, os.path.join(FIXTURES, name))
        elif fmt == "timm_file":
            path, how = _case_timm_file(case, rng)
        elif fmt == "timm_hub":
            path, how = _case_timm_hub(case, rng)
        elif fmt == "hf":
            path, how = _case_hf(case, rng)
        elif fmt == "keras":
            path, how = _case_keras(case, rng, cache)
        else:
            path, how = _case_image(case, rng, cache)
        json.dump({"format": fmt, "path": path, "how": how}, open(os.path.join(case, "case.json"), "w"))
        cases.append(case)
    return cases


# ---- reading cases (the worker) -----------------------------------------------------------

class CaseTimeout(Exception):
    pass


def _alarm(signum, frame):
    raise CaseTimeout()


def read_case(case):
    """What a user's command does with the case: load the checkpoint or model, read the image."""
    import keras_vit
    from keras_vit.evaluation import load_images, load_model

    meta = json.load(open(os.path.join(case, "case.json")))
    path, fmt = meta["path"], meta["format"]
    if fmt == "image":
        pixels = load_images([path], (16, 20), 3)
        assert pixels.shape == (1, 16, 20, 3) and np.isfinite(pixels).all()
        assert pixels.min() >= 0 and pixels.max() <= 255
        return
    if fmt == "keras":
        load_model(path)
        return
    keras_vit.convert_checkpoint(path, **({"num_heads": 2} if fmt == "timm_file" else {}))


def classify(case):
    meta = json.load(open(os.path.join(case, "case.json")))
    from keras_vit.errors import KerasViTError

    signal.alarm(CASE_SECONDS)
    try:
        read_case(case)
        outcome, detail = "ok", ""
    except CaseTimeout:
        outcome, detail = "hang", f"over {CASE_SECONDS} s"
    except (KerasViTError, OSError) as error:
        message = str(error)
        names = os.path.basename(meta["path"]) in message or meta["path"] in message
        outcome = "clean" if names and "\n" not in message.strip() else "bad"
        detail = f"{type(error).__name__}: {message[:300]}"
    except BaseException as error:  # noqa: BLE001 - every other exception is a finding
        outcome = "bug"
        detail = "".join(traceback.format_exception(error)[-3:])[-600:]
    finally:
        signal.alarm(0)
    return {"case": case, "format": meta["format"], "how": meta["how"], "outcome": outcome,
            "detail": detail}


def main(cases):
    signal.signal(signal.SIGALRM, _alarm)
    for case in cases:
        print(json.dumps({"start": case}), flush=True)
        print(json.dumps(classify(case)), flush=True)


if __name__ == "__main__":
    main(sys.argv[1:])
