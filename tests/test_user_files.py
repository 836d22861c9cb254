"""A user's own files (issue 23), each walked in a fresh `python -m keras_vit` process.

Broken images and one-class folders refused in one line naming them, an RGBA drawing on
a transparent canvas read as a drawing, 16-bit and EXIF-rotated images read as they look.
"""

import json
import os
import shutil
import signal
import subprocess
import sys

import numpy as np
import pytest
from PIL import Image

from tests.test_user_paths import ROOT, TINY, USER_ENV, _cli, _digit_folder

# TensorFlow's own start-up lines (its C++ logging, quieted elsewhere), not ours.
TF_LOG = ("WARNING: All log messages before absl", "I0000 ", "W0000 ", "E0000 ")


def _one_error_line(out):
    """The one line a refusal prints (TensorFlow's start-up log aside), no traceback."""
    assert out.returncode == 1, out.stderr[-3000:]
    assert "Traceback" not in out.stderr, out.stderr[-3000:]
    lines = [l for l in out.stderr.splitlines() if l.strip() and not l.startswith(TF_LOG)]
    assert len(lines) == 1, out.stderr[-3000:]
    return lines[0]


def test_a_folder_with_unreadable_images_is_refused_naming_them(tmp_path):
    data = _digit_folder(tmp_path / "digits", per_class=4, classes=("a", "b"), size=16)
    good = (data / "a" / "0.png").read_bytes()
    (data / "a" / "truncated.png").write_bytes(good[: len(good) // 2])
    (data / "b" / "notes.png").write_text("shopping list\n")
    out = _cli("train", "--data", str(data), "--epochs", "1", "--output-dir",
               str(tmp_path / "run"), *TINY)
    line = _one_error_line(out)
    assert "truncated.png" in line and "notes.png" in line and "2 file(s)" in line, line
    assert not (tmp_path / "run" / "model.keras").exists()


def test_a_folder_of_one_class_is_refused_showing_its_sub_folders(tmp_path):
    data = _digit_folder(tmp_path / "digits", per_class=4, classes=("seven",), size=16)
    out = _cli("train", "--data", str(data), "--epochs", "1", "--output-dir",
               str(tmp_path / "run"), *TINY)
    line = _one_error_line(out)
    assert "1 class sub-folder(s) (seven)" in line and "one level too deep" in line, line


def _seven_drawing():
    """A 7 from scikit-learn's digits drawn as black ink on a transparent canvas
    (what paint apps save): RGB all 0, alpha the stroke."""
    from sklearn.datasets import load_digits

    digits = load_digits()
    seven = digits.images[digits.target == 7][0] / 16
    alpha = np.kron(seven, np.ones((8, 8)))  # 64 x 64
    return np.dstack([np.zeros((64, 64, 3)), alpha * 255]).astype(np.uint8)


def test_an_rgba_drawing_on_a_transparent_canvas_is_read_as_drawn(tmp_path):
    path = tmp_path / "seven.png"
    Image.fromarray(_seven_drawing(), "RGBA").save(path)
    out = _cli("predict", "--model", "weights/digits/model.keras", str(path), "--top", "1")
    assert out.returncode == 0, out.stderr[-3000:]
    assert f"{path}: 7 (" in out.stdout, out.stdout  # was "3" (0.63): read as all black


# In-process checks of the one image reader every command uses (numbers, not shapes).

def test_image_reader_scales_16_bit_composites_alpha_and_applies_exif(tmp_path):
    from keras_vit.evaluation import load_images

    deep = np.zeros((6, 10), np.uint16)
    deep[1, 7] = 30000  # one pixel among many, off the diagonal
    Image.fromarray(deep).save(tmp_path / "deep.png")
    read = load_images([tmp_path / "deep.png"], (6, 10), 1)[0, ..., 0]
    expected = np.zeros((6, 10))
    expected[1, 7] = round(30000 / 65535 * 255)  # 117, not clipped to 255
    np.testing.assert_array_equal(read, expected)

    rgba = np.zeros((4, 6, 4), np.uint8)
    rgba[2, 5] = (10, 20, 30, 255)  # one opaque pixel; the rest transparent
    Image.fromarray(rgba, "RGBA").save(tmp_path / "rgba.png")
    read = load_images([tmp_path / "rgba.png"], (4, 6), 3)[0]
    expected = np.full((4, 6, 3), 255.0)
    expected[2, 5] = (10, 20, 30)
    np.testing.assert_array_equal(read, expected)

    marked = np.zeros((4, 6), np.uint8)
    marked[0, 5] = 255  # top right
    exif = Image.Exif()
    exif[0x0112] = 6  # "rotate 90 CW to view"
    Image.fromarray(marked).save(tmp_path / "turned.png", exif=exif)
    read = load_images([tmp_path / "turned.png"], (6, 4), 1)[0, ..., 0]
    assert read.shape == (6, 4) and read[5, 3] == 255 and read.sum() == 255  # bottom right


@pytest.mark.parametrize("kind", ["bomb", "ztxt", "lab"])
def test_hostile_images_are_one_line_or_read(tmp_path, kind):
    from PIL import PngImagePlugin

    from keras_vit.errors import DataError
    from keras_vit.evaluation import load_images

    path = tmp_path / f"{kind}.png"
    if kind == "bomb":
        Image.new("1", (15000, 15000)).save(path)
    elif kind == "ztxt":
        info = PngImagePlugin.PngInfo()
        info.add_text("comment", "x" * (2 * 2**20), zip=True)
        Image.new("L", (4, 4)).save(path, pnginfo=info)
    else:
        path = tmp_path / "lab.tif"
        Image.new("RGB", (4, 4), (200, 10, 10)).convert("LAB").save(path)
    try:
        pixels = load_images([path], (4, 4), 3)
    except DataError as error:
        assert str(path) in str(error) and "\n" not in str(error)
    else:
        assert kind == "lab" and np.isfinite(pixels).all() and pixels.max() <= 255


def test_a_named_variant_keeps_its_patch(tmp_path):
    # Ti/16 at 30 px was trained silently with 3 px patches (101 tokens, 5.36 M parameters).
    out = _cli("train", "--model", "Ti/16", "--image-size", "30", "--epochs", "1",
               "--output-dir", str(tmp_path / "run"), *TINY)
    line = _one_error_line(out)
    assert "--model Ti/16 cuts 16x16 patches" in line and "30x30" in line, line
    assert "--image-size 32, 48" in line and "--set patch_size=P" in line, line
    assert not (tmp_path / "run").exists()


def test_evaluate_reads_a_folder_with_the_models_channels(tmp_path):
    # The shipped digits model is gray; its user's folder is RGB (what finetune accepts).
    data = _digit_folder(tmp_path / "rgb", rgb=True, per_class=6, classes=tuple("0123456789"))
    out = _cli("evaluate", "--model", "weights/digits/model.keras", "--data", str(data),
               "--shots", "none")
    assert out.returncode == 0, out.stderr[-3000:]  # was "the model takes 1-channel images"
    result = json.loads(out.stdout[out.stdout.index("{"):])  # after Keras' "Using 6 files"
    assert result["num_examples"] == 6 and result["top1"] >= 0.5, result  # 5 of 6 here


def test_a_folder_of_rgba_drawings_is_composited_as_read_image_does(tmp_path):
    from keras_vit.data import load_dataset
    from keras_vit.data.image_file import read_image

    rng = np.random.default_rng(0)
    files = []
    for name in ("a", "b"):
        (tmp_path / "train" / name).mkdir(parents=True)
        for i in range(2):
            pixels = rng.integers(0, 256, (12, 16, 4)).astype(np.uint8)  # not square
            pixels[..., 3] = np.where(rng.random((12, 16)) < 0.7, 0, pixels[..., 3])
            files.append(tmp_path / "train" / name / f"{i}.png")
            Image.fromarray(pixels, "RGBA").save(files[-1])
    Image.fromarray(rng.integers(0, 256, (12, 16, 3)).astype(np.uint8)).save(
        tmp_path / "train" / "b" / "opaque.png")
    files.insert(4, tmp_path / "train" / "b" / "opaque.png")  # sorted: 0, 1, opaque
    for channels, tolerance in ((3, 0.51), (1, 1.01)):  # PIL rounds to 8 bits; gray twice
        dataset, info = load_dataset(str(tmp_path), "train", batch_size=8, shuffle=False,
                                     augment=None, num_channels=channels)
        images = np.concatenate([np.asarray(x) for x, _ in dataset])
        expected = np.stack([read_image(f, channels) for f in files])
        assert images.shape == expected.shape == (5, 12, 16, channels)
        np.testing.assert_allclose(images, expected, atol=tolerance)  # black where dropped
    _, info = load_dataset(str(tmp_path), "train", batch_size=8)
    assert info.num_channels == 3  # an RGBA folder reads as RGB, composited


@pytest.mark.parametrize("args, expected", [
    (["--data", "path/to/folder"], "no such folder: path/to/folder"),  # was argument `name`
    (["--set", "num_layer=2"], "argument `--set`: unknown ViTConfig field(s) num_layer"),
])
def test_errors_name_the_flag_typed(tmp_path, args, expected):
    out = _cli("train", *args, "--epochs", "1", "--output-dir", str(tmp_path / "run"))
    line = _one_error_line(out)
    assert expected in line and "model_fields" not in line, line


def test_a_missing_data_folder_from_python_is_no_such_folder():
    # The CLI refuses it before Keras starts (tests/test_user_paths.py); from Python the
    # data loader says the same, not "argument `name`".
    from keras_vit.data import load_dataset
    from keras_vit.errors import DataNotFound

    with pytest.raises(DataNotFound, match=r"^no such folder: path/to/folder \(expected"):
        load_dataset("path/to/folder")


def test_library_argument_names_become_the_commands_flags():
    from keras_vit.cli import build_parser
    from keras_vit.cli.common import name_the_flags

    commands = build_parser()._subparsers._group_actions[0].choices
    train, finetune, convert = commands["train"], commands["finetune"], commands["convert"]
    assert name_the_flags("argument `output_dir`: x. Received: output_dir='a'", train) == (
        "argument `--output-dir`: x. Received: --output-dir 'a'")
    assert name_the_flags("argument `num_heads` from config.json", train) == (
        "argument `num_heads` from config.json")  # not a flag: left as it is
    hint = "cannot tell the format of a.png. Pass format= (npz, timm or hf) if it is."
    assert name_the_flags(hint, finetune) == "cannot tell the format of a.png."
    assert name_the_flags(hint, convert) == hint


def test_benchmark_after_a_non_editable_install(tmp_path):
    # The README's install is `pip install ".[tf]"`: the package in site-packages, the
    # harness in the checkout's benchmarks/ (not in the wheel). Installed here without
    # dependencies into a folder of its own (the test environment's stand in).
    target, work, source = tmp_path / "site", tmp_path / "work", tmp_path / "source"
    work.mkdir()
    source.mkdir()
    for name in os.listdir(ROOT):  # what the wheel is built from (its build/ goes there)
        if name.endswith((".toml", ".md", ".cfg", ".txt")) or name in ("LICENSE",):
            shutil.copy(os.path.join(ROOT, name), source)
    for folder in ("keras_vit", "weights"):
        shutil.copytree(os.path.join(ROOT, folder), source / folder,
                        ignore=shutil.ignore_patterns("__pycache__"))
    build = subprocess.run(
        [sys.executable, "-m", "pip", "install", "-q", "--no-deps", "--no-build-isolation",
         "--target", str(target), str(source)], cwd=work, capture_output=True, text=True,
        timeout=300)
    assert build.returncode == 0, build.stderr[-3000:]
    env = dict(USER_ENV, PYTHONPATH=str(target))
    entry = [str(target / "bin" / "keras-vit"), "benchmark"]
    in_checkout = subprocess.run([*entry, "--help"], cwd=ROOT, capture_output=True,
                                 text=True, env=env, timeout=120)
    assert in_checkout.returncode == 0 and "--quick" in in_checkout.stdout, in_checkout.stderr
    elsewhere = subprocess.run([*entry, "--quick"], cwd=work, capture_output=True,
                               text=True, env=env, timeout=120)
    line = _one_error_line(elsewhere)
    assert "not installed with the package" in line and "checkout's root" in line, line


# --- Saving (hostile files item 7): a missing folder, a full disk, a kill mid-save ---

DIGITS_MODEL = os.path.join(ROOT, "weights", "digits", "model.keras")
# Runs `keras-vit convert` in a fresh process with Keras' zip writer replaced by
# sys.argv[1]: "full" refuses as a full disk does (an OSError naming no file), "hang"
# writes part of the file and then waits to be killed.
SAVE_WITH = """
import errno, sys, time, zipfile
writestr = zipfile.ZipFile.writestr
def full(self, *args, **kwargs):
    raise OSError(errno.ENOSPC, "No space left on device")
def hang(self, *args, **kwargs):
    writestr(self, *args, **kwargs)
    self.fp.flush()
    print("writing", flush=True)
    time.sleep(600)
zipfile.ZipFile.writestr = {"full": full, "hang": hang}[sys.argv[1]]
from keras_vit.cli import main
sys.exit(main(["convert", sys.argv[2], "--output", sys.argv[3], *sys.argv[4:]]))
"""


def _convert_saving_with(how, output, *flags, **popen):
    return subprocess.Popen([sys.executable, "-c", SAVE_WITH, how, DIGITS_MODEL, str(output),
                             *flags], cwd=output.parent, text=True,
                            env=dict(USER_ENV, PYTHONPATH=ROOT),  # this checkout's keras_vit
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, **popen)


def test_a_missing_output_folder_is_named_not_the_temporary(tmp_path):
    out = _cli("convert", DIGITS_MODEL, "--output", str(tmp_path / "nowhere" / "x.keras"))
    line = _one_error_line(out)
    assert f"no such folder: '{tmp_path / 'nowhere'}'" in line, line
    assert ".tmp-" not in line and not (tmp_path / "nowhere").exists()


def test_a_full_disk_is_one_line_and_keeps_what_was_there(tmp_path):
    target = tmp_path / "out.keras"
    target.write_bytes(b"the user's own file")
    run = _convert_saving_with("full", target, "--force")
    _, stderr = run.communicate(timeout=300)
    line = _one_error_line(subprocess.CompletedProcess(run.args, run.returncode, "", stderr))
    assert "No space left on device" in line and str(target) in line, line
    assert target.read_bytes() == b"the user's own file"
    assert sorted(os.listdir(tmp_path)) == ["out.keras"]  # no temporary left


def test_a_save_killed_midway_leaves_a_temporary_the_next_save_removes(tmp_path):
    target = tmp_path / "out.keras"
    run = _convert_saving_with("hang", target)
    try:
        assert run.stdout.readline() == "writing\n", run.stderr.read()[-3000:]
        os.kill(run.pid, signal.SIGKILL)
    finally:
        run.kill()
        run.wait()
    left = os.listdir(tmp_path)
    assert len(left) == 1 and left[0].startswith(".out.tmp-"), left  # never out.keras
    live = tmp_path / f".out.tmp-{os.getpid()}.keras"  # a writer still running: kept
    live.write_bytes(b"")
    assert _cli("convert", DIGITS_MODEL, "--output", str(target)).returncode == 0
    assert sorted(os.listdir(tmp_path)) == sorted([live.name, "out.keras"])


def _pen_on_paper_seven(path):
    """A 7 as a user draws it: black pen on white, 32x32 (the digits are light on dark)."""
    from PIL import ImageDraw

    image = Image.new("L", (32, 32), 255)
    ImageDraw.Draw(image).line([(7, 5), (25, 5), (13, 29)], fill=0, width=4)
    image.save(path)
    Image.eval(image, lambda v: 255 - v).save(path.with_name("light_" + path.name))
    return path, path.with_name("light_" + path.name)


def test_a_trained_model_carries_its_polarity_and_visualize_inverts_as_predict(tmp_path):
    # predict's auto-invert read only metrics.json beside the model, and visualize never
    # inverted unless told: a model moved away from its run folder read pen on paper as is.
    run = tmp_path / "run"
    out = _cli("train", "--epochs", "1", "--output-dir", str(run), *TINY)
    assert out.returncode == 0, out.stderr[-3000:]
    moved = tmp_path / "elsewhere" / "digits.keras"  # no metrics.json beside it
    moved.parent.mkdir()
    shutil.copy(run / "model.keras", moved)
    drawn, light = _pen_on_paper_seven(tmp_path / "seven.png")
    note = "(inverted: its border is brighter than its centre; --no-invert keeps it)"

    out = _cli("predict", "--model", str(moved), str(drawn), str(light))
    assert out.returncode == 0, out.stderr[-3000:]
    lines = dict(line.split(": ", 1) for line in out.stdout.strip().splitlines())
    assert lines[str(drawn)].endswith(note) and "inverted" not in lines[str(light)], lines

    shown = lambda out: [l for l in out.stdout.splitlines() if "inverted" in l]  # noqa: E731
    out = _cli("visualize", "--model", str(moved), str(drawn), str(light),
               "--output-dir", str(tmp_path / "auto"))
    assert out.returncode == 0, out.stderr[-3000:]
    assert shown(out) == [f"{drawn}:  {note}"], out.stdout
    out = _cli("visualize", "--model", str(moved), str(drawn), str(light), "--invert",
               "--output-dir", str(tmp_path / "forced"))
    assert shown(out) == [f"{drawn}:  (inverted: --invert)", f"{light}:  (inverted: --invert)"]
    out = _cli("visualize", "--model", str(moved), str(drawn), "--no-invert",
               "--output-dir", str(tmp_path / "kept"))
    assert out.returncode == 0 and shown(out) == [], out.stdout + out.stderr[-2000:]


def test_a_misspelt_model_name_suggests_the_near_ones(tmp_path):
    out = _cli("train", "--model", "digit", "--epochs", "1", "--output-dir",
               str(tmp_path / "run"), *TINY)
    line = _one_error_line(out)
    assert "unknown variant 'digit'. Did you mean 'digits'?" in line, line
    assert "'small'" in line and "Ti/16" in line and "--model" in line, line
    assert not (tmp_path / "run").exists()


@pytest.mark.parametrize("typed, near", [
    ("b16", "'B/16' or "), ("ViT-Ti-16", "'Ti/16'?"), ("h14", "'H/14' or "),
    ("R50+B16", "'R50+B/16' or 'B/16'?")])
def test_an_unknown_variant_names_the_nearest_variants(typed, near):
    import keras_vit

    with pytest.raises(keras_vit.errors.ArgumentError, match="unknown variant") as caught:
        keras_vit.variant_config(typed)
    assert f"Did you mean {near}" in str(caught.value), str(caught.value)


def test_no_message_installs_the_other_pypi_keras_vit():
    # `keras-vit` on PyPI is another project (1.0.1, 2023): `pip install keras-vit[export]`
    # in a fresh environment installs it. Every install line in the package and the README
    # names an extra of the checkout (".[export]") or another package; the README says why.
    import re

    wrong = re.compile(r"""pip install\s+["']?keras[-_]vit\b""", re.IGNORECASE)
    found = []
    for folder, _, files in os.walk(os.path.join(ROOT, "keras_vit")):
        for name in files:
            if name.endswith(".py"):
                path = os.path.join(folder, name)
                text = open(path, encoding="utf-8").read()
                found += [f"{path}: {m.group(0)}" for m in wrong.finditer(text)]
    assert not found, found
    readme = open(os.path.join(ROOT, "README.md"), encoding="utf-8").read()
    note = readme[readme.index("is another package"):][:200]
    assert [m.start() for m in wrong.finditer(readme)] == [
        m.start() for m in wrong.finditer(readme) if readme.rfind("another package", 0, m.start())
        > m.start() - 120], "README: a `pip install keras-vit` outside the name-clash note"
    assert 'pip install ".[EXTRA]"' in note, note


def test_the_readme_names_the_install_of_every_backend_extra():
    # KERAS_BACKEND=jax without jax says `pip install ".[jax]"`; the README named no [jax].
    import re

    from keras_vit.cli.common import BACKENDS

    readme = open(os.path.join(ROOT, "README.md"), encoding="utf-8").read()
    extras = {re.search(r'\.\[(\w+)\]', line).group(1) for _, line in BACKENDS.values()
              if ".[" in line}
    assert extras == {"tf", "jax"}, extras  # the backends this project installs itself
    named = set()
    for match in re.finditer(r'pip install "\.\[([\w,]+)\]"', readme):
        named |= set(match.group(1).split(","))
    assert extras <= named, (extras, named)
