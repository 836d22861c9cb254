"""Hostile files: mutated checkpoints of every format, .keras models and images.

Every case must end in a loaded model (an image read) or one line from a
KerasViTError / OSError naming the file, within 60 s and 4 GB. The cases run in
worker processes under RLIMIT_AS; a worker that dies mid-case (memory) or runs
past its timeout fails the case it was on. Short by default (a few dozen cases);
`-m slow` runs 1,000 (`python tests/test_fuzz.py 1000` prints the tally).
"""

import collections
import json
import os
import resource
import subprocess
import sys

import pytest

from tests.fuzz_cases import CASE_SECONDS, make_cases

MEMORY_BYTES = 4 * 2**30
WORKER = os.path.join(os.path.dirname(os.path.abspath(__file__)), "fuzz_cases.py")


def _limit_memory():
    resource.setrlimit(resource.RLIMIT_AS, (MEMORY_BYTES, MEMORY_BYTES))


def run_cases(cases, per_worker):
    """Outcome dicts for `cases`, read by workers of `per_worker` cases each."""
    results = []
    pending = list(cases)
    while pending:
        batch, pending = pending[:per_worker], pending[per_worker:]
        env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="3")
        try:
            done = subprocess.run(
                [sys.executable, WORKER, *batch], capture_output=True, text=True, env=env,
                preexec_fn=_limit_memory, timeout=60 + CASE_SECONDS * len(batch))
            out, err = done.stdout, done.stderr
        except subprocess.TimeoutExpired as expired:
            out, err = expired.stdout or "", "timeout"
            out = out.decode() if isinstance(out, bytes) else out
        lines = [json.loads(line) for line in out.splitlines() if line.startswith("{")]
        finished = {r["case"] for r in lines if "outcome" in r}
        results.extend(r for r in lines if "outcome" in r)
        started = [r["start"] for r in lines if "start" in r and r["start"] not in finished]
        if started or len(finished) < len(batch):  # died on a case: fail it, rerun the rest
            dead = started[0] if started else batch[len(finished)]
            meta = json.load(open(os.path.join(dead, "case.json")))
            results.append({"case": dead, "format": meta["format"], "how": meta["how"],
                            "outcome": "died", "detail": err[-600:]})
            pending = [c for c in batch if c not in finished and c != dead] + pending
    return results


def check(results):
    tally = collections.Counter((r["format"], r["outcome"]) for r in results)
    failures = [r for r in results if r["outcome"] not in ("ok", "clean")]
    shown = "\n".join(f"{r['case']} [{r['how']}] {r['outcome']}: {r['detail']}"
                      for r in failures[:10])
    assert not failures, f"{len(failures)} of {len(results)} cases failed:\n{shown}"
    return tally


def test_fuzz_short(tmp_path):
    cases = make_cases(str(tmp_path), 35, seed=1)
    results = run_cases(cases, per_worker=len(cases))
    tally = check(results)
    assert sum(n for (_, o), n in tally.items() if o == "clean") >= 10  # the mutations bite


@pytest.mark.slow
def test_fuzz_long(tmp_path):
    check(run_cases(make_cases(str(tmp_path), 1000, seed=2), per_worker=50))


if __name__ == "__main__":
    import tempfile
    import time

    count = int(sys.argv[1]) if len(sys.argv) > 1 else 1000
    with tempfile.TemporaryDirectory() as folder:
        start = time.time()
        results = run_cases(make_cases(folder, count, seed=2), per_worker=50)
        print(json.dumps({"seconds": round(time.time() - start),
                          "tally": {f"{f} {o}": n for (f, o), n in sorted(
                              collections.Counter((r["format"], r["outcome"])
                                                  for r in results).items())}}, indent=1))
        for r in results:
            if r["outcome"] not in ("ok", "clean"):
                print(r["how"], r["outcome"], r["detail"][-300:].replace("\n", " | "))


# Named hostile files, one root cause each (the fuzz run's findings), in-process.

FIXTURES = os.path.join(os.path.dirname(os.path.abspath(__file__)), "fixtures")


def _npz(path, change):
    import numpy as np

    with np.load(os.path.join(FIXTURES, "original_tiny.npz"), allow_pickle=False) as f:
        tensors = {k: f[k] for k in f.files}
    change(tensors)
    np.savez(path, **tensors)
    return str(path)


def _refused(match, *args, **kwargs):
    import keras_vit
    from keras_vit.checkpoints import CheckpointError

    with pytest.raises(CheckpointError, match=match) as error:
        keras_vit.convert_checkpoint(*args, **kwargs)
    assert "\n" not in str(error.value)
    return str(error.value)


def test_a_shape_implying_a_huge_model_is_refused_before_building(tmp_path):
    import numpy as np

    def wide(t):  # (8, 8, 3, 24) -> (1, 1, 1, 2000): a 2000-wide model from an 80 kB file
        t["embedding/kernel"] = np.zeros((1, 1, 1, 2000), np.float32)
    path = _npz(tmp_path / "wide.npz", wide)
    message = _refused("imply a model of", path)
    assert path in message


def test_npz_members_forged_typed_or_not_finite_are_refused(tmp_path):
    import io
    import zipfile

    import numpy as np

    forged = _npz(tmp_path / "forged.npz", lambda t: None)
    header = io.BytesIO()
    np.lib.format.write_array_header_1_0(
        header, {"descr": "<f4", "fortran_order": False, "shape": (100_000, 100_000)})
    with zipfile.ZipFile(forged, "a") as archive:
        archive.writestr("extra.npy", header.getvalue() + b"\0" * 64)
    _refused(r"`extra` claims shape \(100000, 100000\)", forged)

    def integer(t):
        t["head/bias"] = t["head/bias"].astype(np.int32)
    _refused("`head/bias` is int32", _npz(tmp_path / "int.npz", integer))

    def flat(t):  # reshaped on its way into qkv before any shape check
        t["Transformer/encoderblock_1/MultiHeadDotProductAttention_1/key/kernel"] = \
            np.zeros(3, np.float32)
    _refused(r"`transformer_block_1/attention/qkv/kernel`.*key/kernel` \(3,\)",
             _npz(tmp_path / "flat.npz", flat))

    def nan(t):
        t["Transformer/encoder_norm/scale"][3] = np.nan
    _refused("`Transformer/encoder_norm/scale` holds NaN", _npz(tmp_path / "nan.npz", nan))


def test_an_npz_member_that_decompresses_like_a_bomb_is_refused_before_reading(tmp_path):
    # Hostile files item 2: under the 8 GB cap, a 300 MiB member of zeros stored in about
    # 300 kB (1000x) would be decompressed whole before "not used by the model".
    import io
    import zipfile

    import numpy as np

    path = _npz(tmp_path / "bomb.npz", lambda t: None)
    header = io.BytesIO()
    np.lib.format.write_array_header_1_0(
        header, {"descr": "<f4", "fortran_order": False, "shape": (75 * 2**20,)})
    with zipfile.ZipFile(path, "a", compression=zipfile.ZIP_DEFLATED) as archive:
        with archive.open("bomb.npy", "w", force_zip64=True) as member:
            member.write(header.getvalue())
            zeros = bytes(2**22)
            for _ in range(75):
                member.write(zeros)
    assert os.path.getsize(path) < 2 * 2**20
    _refused(r"`bomb.npy` would decompress to 314572\d{3} bytes from \d+ \(\d+x", path)


def test_safetensors_header_entries_are_validated_before_use(tmp_path):
    data = open(os.path.join(FIXTURES, "timm_tiny.safetensors"), "rb").read()
    n = int.from_bytes(data[:8], "little")
    header = json.loads(data[8:8 + n])
    name = sorted(k for k in header if k != "__metadata__")[0]
    for value, match in ((5, f"header entry `{name}` is not an object"),
                         ({**header[name], "dtype": "I32"}, f"`{name}` is I32"),
                         ({**header[name], "shape": [-1]}, f"`{name}` has an invalid shape")):
        text = json.dumps({**header, name: value}).encode()
        path = tmp_path / "model.safetensors"
        path.write_bytes(len(text).to_bytes(8, "little") + text + data[8 + n:])
        _refused(match, str(path), num_heads=2)


def test_hf_config_fields_are_type_checked_and_must_agree_with_the_tensors(tmp_path):
    import shutil

    hf = tmp_path / "hf"
    shutil.copytree(os.path.join(FIXTURES, "hf_tiny"), hf)
    config = json.loads((hf / "config.json").read_text())
    for change, match in (({"num_attention_heads": None}, "`num_attention_heads` should be"),
                          ({"layer_norm_eps": float("nan")}, "`layer_norm_eps` should be"),
                          ({"num_hidden_layers": 3}, "`num_hidden_layers` is 3, but the tensors")):
        (hf / "config.json").write_text(json.dumps({**config, **change}))
        assert "config.json" in _refused(match, str(hf))
    (hf / "config.json").write_text("[1]")
    _refused("should hold a JSON object", str(hf))
    (hf / "config.json").write_text(json.dumps({**config, "model_type": [1, 2]}))
    _refused(r"names neither .* model_type=\[1, 2\]", str(hf))  # found by test_fuzz_long


def test_a_keras_config_describing_a_huge_model_is_refused_before_building(tmp_path):
    import zipfile

    import keras_vit
    from keras_vit.errors import KerasViTError
    from keras_vit.evaluation import load_model

    source = tmp_path / "tiny.keras"
    keras_vit.convert_checkpoint(os.path.join(FIXTURES, "original_tiny.npz")).save(source)
    with zipfile.ZipFile(source) as archive:
        members = {m: archive.read(m) for m in archive.namelist()}
    config = json.loads(members["config.json"])
    config["config"]["config"]["image_size"] = [4000, 4000]  # 6 M position parameters
    members["config.json"] = json.dumps(config).encode()
    hostile = tmp_path / "hostile.keras"
    with zipfile.ZipFile(hostile, "w") as archive:
        for name, data in members.items():
            archive.writestr(name, data)
    with pytest.raises(KerasViTError, match="describes a model of") as error:
        load_model(hostile)
    assert str(hostile) in str(error.value)


@pytest.mark.parametrize("how", ["link_to_dev_zero", "over_4_mb"])
def test_a_config_json_is_read_bounded_and_never_through_a_link_out(tmp_path, how):
    # Hostile files item 2: a config.json linked to /dev/zero filled 8 GB.
    import shutil

    folder = tmp_path / "hf"
    shutil.copytree(os.path.join(FIXTURES, "hf_tiny"), folder)
    config = folder / "config.json"
    text = config.read_text()
    config.unlink()
    if how == "link_to_dev_zero":
        os.symlink("/dev/zero", config)
        message = _refused("is not a regular file in its folder", str(folder))
    else:
        config.write_text(" " * (5 * 2**20) + text)  # valid JSON, 5 MB
        message = _refused(r"is over 4194304 bytes", str(folder))
    assert str(config) in message
