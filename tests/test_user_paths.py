"""The user's paths of issue 8, each walked in a fresh process as a user would.

`python -m keras_vit ...` with tiny settings, then a new interpreter that loads what the
command wrote; nothing here calls the internals the commands use.
"""

import argparse
import csv
import json
import math
import os
import re
import shutil
import subprocess
import sys

import numpy as np
import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
TINY = ["--set", "num_layers=1", "--set", "hidden_size=16", "--set", "num_heads=2",
        "--set", "mlp_dim=32", "--no-tensorboard", "--jit-compile", "off"]
# What a user's shell has: no TF_CPP_MIN_LOG_LEVEL of our own making.
USER_ENV = {k: v for k, v in os.environ.items() if k != "TF_CPP_MIN_LOG_LEVEL"}


def _python(code, timeout=300, env=None):
    return subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          timeout=timeout, cwd=ROOT, env=dict(USER_ENV, **(env or {})))


def _cli(*args, timeout=600, env=None):
    return subprocess.run([sys.executable, "-m", "keras_vit", *args], capture_output=True,
                          text=True, timeout=timeout, cwd=ROOT,
                          env=dict(USER_ENV, **(env or {})))


def _one_error_line(out):
    lines = [l for l in out.stderr.splitlines() if l.strip()]
    assert out.returncode != 0
    assert "Traceback" not in out.stderr, out.stderr[-3000:]
    assert len(lines) == 1, out.stderr[-3000:]
    return lines[0]


# --- `--help` and argument errors start no TensorFlow --------------------------------

_RUN_CLI = """
import runpy, sys
sys.argv = ["keras-vit", *{args!r}]
try:
    runpy.run_module("keras_vit", run_name="__main__")
except SystemExit as exit:
    code = exit.code
print("EXIT", code, "tensorflow" in sys.modules, "keras" in sys.modules, file=sys.stderr)
"""


@pytest.mark.parametrize("args", [
    ["--help"], ["train", "--help"], ["finetune", "--help"], ["convert", "--help"],
    ["summary", "--help"], ["train", "--epochs", "many"], ["train", "--nope"], [],
])
def test_help_and_argument_errors_import_no_tensorflow(args):
    out = _python(_RUN_CLI.format(args=args))
    status = out.stderr.strip().splitlines()[-1]
    assert status.split()[2:] == ["False", "False"], out.stderr[-2000:]  # no TF, no Keras
    assert "cpu_feature_guard" not in out.stderr and "absl" not in out.stderr
    assert status.split()[1] in ("0", "2")


@pytest.mark.parametrize("args, line", [
    (["evaluate", "--model", "missing.keras"], "model file not found: missing.keras"),
    (["predict", "missing.png"], "image file not found: missing.png"),
    (["predict", "README.md", "--model", "gone/m.keras"], "model file not found: gone/m.keras"),
    (["visualize", "README.md", "nope.jpg", "--output-dir", "o"],
     "image file not found: nope.jpg"),
    (["export", "missing.keras", "--format", "tflite"], "model file not found: missing.keras"),
    (["convert", "missing.npz", "--output", "x.keras"],
     "No checkpoint file or folder at missing.npz."),
    # train, finetune and pretrain (issue 23 item 10: 18-20 s of TensorFlow start-up first)
    (["train", "--data", "nowhere"], "no such folder: nowhere (expected one of digits, "
     "cifar10, cifar100, oxford_iiit_pet, oxford_flowers102, imagenet2012, "
     "imagenet2012_real, vtab/<task>, or an image folder, one sub-folder per class)"),
    (["pretrain", "--data", "gone/folder/"], "no such folder: gone/folder/ "),
    (["finetune", "--weights", "nowhere"], "No checkpoint file or folder at nowhere, nor a "
     "registered name (VARIANT:TAG such as B/16:augreg_in21k, or TAG with --variant)."),
    (["finetune", "--weights", "README.md", "--data", "cifar"],
     "no such folder: cifar "),
    (["finetune", "--weights", "gone/B_16.npz", "--variant", "B/16"],
     "No checkpoint file or folder at gone/B_16.npz, nor a registered name "),
])
def test_a_missing_input_path_is_refused_before_keras_starts(args, line):
    # Seconds of TensorFlow start-up (10-17 s on a loaded 2-core CPU) for a typo: the
    # marked path arguments are checked first.
    out = _python(_RUN_CLI.format(args=args))
    *printed, status = out.stderr.strip().splitlines()
    assert status.split()[1:] == ["1", "False", "False"], out.stderr[-2000:]
    expected = f"keras-vit {args[0]}: error: {line}"
    # A line ending in a space is the start of what is printed; else all of it.
    assert printed == [expected] or line.endswith(" ") and len(printed) == 1 and printed[
        0].startswith(expected), printed


def test_data_and_checkpoint_names_are_not_taken_for_missing_paths():
    import keras_vit
    from keras_vit.cli import build_parser
    from keras_vit.cli.common import DATA_NAMES, check_input_paths

    assert DATA_NAMES == keras_vit.data.DATASETS  # the CLI's copy, kept light
    parser = build_parser()
    for argv in (["train", "--data", "cifar100"], ["pretrain", "--data", "vtab/dtd"],
                 ["finetune", "--weights", "B/16:augreg_in21k", "--data", "digits"],
                 ["finetune", "--weights", "augreg_in21k", "--variant", "B/16"],
                 ["finetune", "--weights", "hf://google/vit-base-patch16-224"],
                 ["train"], ["pretrain"]):
        check_input_paths(parser.parse_args(argv))


def test_registered_and_hub_names_are_not_taken_for_missing_paths():
    from keras_vit.cli import build_parser
    from keras_vit.cli.common import CommandError, check_input_paths

    parser = build_parser()
    for name in ("B/16:augreg_in21k", "hf://google/vit-base-patch16-224", "ViT-B_16"):
        check_input_paths(parser.parse_args(["convert", name, "--output", "x.keras"]))
    for path in ("gone/ViT-B_16.npz", "gone/folder/"):
        with pytest.raises(CommandError, match=f"No checkpoint file or folder at {path}"):
            check_input_paths(parser.parse_args(["convert", path, "--output", "x.keras"]))


# --- a saved model loads after `import keras_vit` alone ------------------------------

_LOAD = """
import json, sys
{imports}
import numpy as np
model = keras.models.load_model(sys.argv[1])
assert type(model.optimizer.learning_rate).__name__  # the schedule deserialised
print(json.dumps(dict(schedule=type(model.optimizer._learning_rate).__name__,
                      tensorflow_before="tensorflow" in sys.modules)))
"""


@pytest.mark.parametrize("imports", ["import keras, keras_vit", "import keras_vit\nimport keras"])
def test_shipped_digits_model_loads_after_import_keras_vit_alone(imports):
    code = _LOAD.format(imports=imports)
    out = subprocess.run([sys.executable, "-c", code, "weights/digits/model.keras"],
                         capture_output=True, text=True, timeout=300, cwd=ROOT)
    assert out.returncode == 0, out.stderr[-3000:]
    assert json.loads(out.stdout.strip().splitlines()[-1])["schedule"] == "WarmupDecay"


_EVALUATE = """
import json, sys
import keras, keras_vit
model = keras.models.load_model(sys.argv[1])
data, _ = keras_vit.data.load_dataset("digits", "test", image_size=model.input.shape[1:3],
                                      batch_size=64)
print(json.dumps(keras_vit.training.test_metrics(model, data, 10)))
"""


def _files(folder):
    return {p: (folder / p).read_bytes() for p in ("model.keras", "metrics.json", "history.csv")}


def test_a_run_folder_loads_fresh_is_never_clobbered_and_extends(tmp_path):
    run = tmp_path / "run"
    out = _cli("train", "--epochs", "1", "--output-dir", str(run), *TINY)
    assert out.returncode == 0, out.stderr[-3000:]
    # Redirected output: one line per epoch (Keras' verbose=2), no progress bar.
    assert [l for l in out.stdout.splitlines() if l.startswith("45/45 - ")]
    assert not [c for c in ("\x1b[", "\b", "\r", "\u2501") if c in out.stdout + out.stderr]
    assert not [l for l in out.stderr.splitlines() if "cpu_feature_guard" in l or "oneDNN" in l]
    recorded = json.loads((run / "metrics.json").read_text())
    assert recorded["command"].startswith("keras-vit train --epochs 1 --output-dir")
    assert recorded["class_names"] == [str(i) for i in range(10)]

    # A fresh process: `import keras, keras_vit`, load, predict as the run evaluated.
    out = subprocess.run([sys.executable, "-c", _EVALUATE, str(run / "model.keras")],
                         capture_output=True, text=True, timeout=300, cwd=ROOT)
    assert out.returncode == 0, out.stderr[-3000:]
    fresh = json.loads(out.stdout.strip().splitlines()[-1])
    assert fresh["test_examples"] == recorded["test_examples"] == 360
    assert fresh["test_accuracy"] == recorded["test_accuracy"]
    assert fresh["test_loss"] == pytest.approx(recorded["test_loss"], rel=1e-5)

    # Other options: refused in one line naming the folder, old -> new, the ways out.
    before = _files(run)
    for extra, difference in ((["--mixed-precision"], "mixed_precision False -> True"),
                              (["--set", "num_layers=2"], "num_layers 1 -> 2")):
        out = _cli("train", "--epochs", "1", "--output-dir", str(run), *TINY, *extra)
        line = _one_error_line(out)
        assert str(run) in line and difference in line, line
        assert "--output-dir NEW" in line and "--overwrite" in line, line
        assert _files(run) == before

    # The same command again: nothing to do, nothing rewritten.
    out = _cli("train", "--epochs", "1", "--output-dir", str(run), *TINY)
    assert out.returncode == 0 and "were already done" in out.stderr, out.stderr[-3000:]
    assert _files(run) == before

    # A larger --epochs extends the run (and says so); seconds add up over segments.
    out = _cli("train", "--epochs", "3", "--output-dir", str(run), *TINY)
    assert out.returncode == 0, out.stderr[-3000:]
    assert "Extending the run" in out.stderr and "from 1 to 3 epochs" in out.stderr
    assert "Resuming from epoch 1 of 3" in out.stderr
    with open(run / "history.csv") as f:
        rows = list(csv.DictReader(f))
    assert [r["epoch"] for r in rows] == ["1", "2", "3"]
    metrics = json.loads((run / "metrics.json").read_text())
    assert [(s["from_epoch"], s["to_epoch"]) for s in metrics["segments"]] == [(0, 1), (1, 3)]
    # The schedule is recomputed over 3 epochs (as timm does), by value: the line's rates
    # and history.csv's learning_rate column against warmup + cosine written out here.
    config = metrics["config"]
    steps, peak = config["steps_per_epoch"], config["learning_rate"]

    def rate(step, epochs):
        total = epochs * steps
        warmup = min(round(config["warmup_epochs"] * steps), total - 1)
        if step < warmup:
            return peak * (step + 1) / warmup
        return peak * 0.5 * (1 + math.cos(math.pi * min((step - warmup) / (total - warmup), 1)))

    line = next(l for l in out.stderr.splitlines() if l.startswith("Extending the run"))
    before, start, end = (float(x) for x in re.search(
        r"goes from (\S+) \(end of epoch 1.* up to (\S+) at the start of epoch 2 "
        r"\((\S+) at its end\)", line).groups())
    assert "recomputed over 3 epochs" in line, line
    assert before == pytest.approx(rate(steps, 1), abs=1e-9)  # the old schedule's end: 0
    assert start == pytest.approx(rate(steps, 3), rel=1e-5) and start > 0.3 * peak
    assert end == pytest.approx(rate(2 * steps, 3), rel=1e-5)
    assert float(rows[0]["learning_rate"]) == pytest.approx(before, abs=1e-9)
    for epoch in (2, 3):
        assert float(rows[epoch - 1]["learning_rate"]) == pytest.approx(
            rate(epoch * steps, 3), rel=1e-5, abs=1e-9)
    assert float(rows[1]["learning_rate"]) == pytest.approx(end, rel=1e-5)
    assert metrics["seconds"] == pytest.approx(sum(s["seconds"] for s in metrics["segments"]))
    assert metrics["seconds"] > metrics["segments"][-1]["seconds"]

    # --overwrite starts over with the new options.
    out = _cli("train", "--epochs", "1", "--output-dir", str(run), *TINY, "--set",
               "num_layers=2", "--overwrite")
    assert out.returncode == 0, out.stderr[-3000:]
    metrics = json.loads((run / "metrics.json").read_text())
    assert metrics["config"]["model_config"]["num_layers"] == 2 and metrics["epochs"] == 1
    assert len((run / "history.csv").read_text().splitlines()) == 2


@pytest.mark.parametrize("where", ["{file}", "{file}/run"])
def test_output_dir_at_or_under_a_file_is_one_line(tmp_path, where):
    (tmp_path / "file").write_text("mine")
    target = where.format(file=tmp_path / "file")
    line = _one_error_line(_cli("train", "--output-dir", target, *TINY))
    assert "output_dir" in line and "a file, not a folder" in line and target in line
    assert (tmp_path / "file").read_text() == "mine"


def test_shipped_model_predicts_as_its_metrics_say():
    out = subprocess.run([sys.executable, "-c", _EVALUATE, "weights/digits/model.keras"],
                         capture_output=True, text=True, timeout=300, cwd=ROOT)
    assert out.returncode == 0, out.stderr[-3000:]
    fresh = json.loads(out.stdout.strip().splitlines()[-1])
    recorded = json.loads(open(os.path.join(ROOT, "weights/digits/metrics.json")).read())
    assert fresh["test_accuracy"] == pytest.approx(recorded["test_accuracy"])
    assert fresh["test_accuracy"] >= 0.98


def test_subpackages_and_layers_are_attributes_of_keras_vit():
    out = _python("import sys, keras_vit\n"
                  "assert 'tensorflow' not in sys.modules and 'keras' not in sys.modules\n"
                  "print(keras_vit.data.load_dataset.__name__, keras_vit.training.train.__name__,"
                  " keras_vit.layers.StdConv2D is keras_vit.StdConv2D, 'StdConv2D' in dir(keras_vit))")
    assert out.returncode == 0, out.stderr[-3000:]
    assert out.stdout.split() == ["load_dataset", "train", "True", "True"]


# --- image folders: native size and channels, --set before validation ----------------

def _png(path, pixels):
    """Writes a uint8 (H, W) or (H, W, 3) array as a PNG (zlib only)."""
    import struct
    import zlib

    import numpy as np

    pixels = np.asarray(pixels, dtype=np.uint8)
    height, width = pixels.shape[:2]
    color = 0 if pixels.ndim == 2 else 2
    rows = b"".join(b"\x00" + row.tobytes() for row in pixels.reshape(height, width, -1))

    def chunk(kind, data):
        return (struct.pack(">I", len(data)) + kind + data
                + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF))

    header = struct.pack(">IIBBBBB", width, height, 8, color, 0, 0, 0)
    path.write_bytes(b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header)
                     + chunk(b"IDAT", zlib.compress(rows)) + chunk(b"IEND", b""))


def _digit_folder(root, per_class=12, classes=("zero", "one", "two"), size=28, rgb=False):
    """Digits as size x size PNGs, light on dark, one sub-folder per class name."""
    import numpy as np
    from sklearn.datasets import load_digits

    digits = load_digits()
    for label, name in enumerate(classes):
        (root / name).mkdir(parents=True)
        images = digits.images[digits.target == label][:per_class]
        for i, image in enumerate(images):
            big = np.kron(image * 255 / 16, np.ones((size // 8 + 1, size // 8 + 1)))[:size, :size]
            _png(root / name / f"{i}.png", np.stack([big] * 3, -1) if rgb else big)
    return root


def test_train_on_a_folder_of_small_gray_images_with_no_flags(tmp_path):
    data = _digit_folder(tmp_path / "digits28")
    run = tmp_path / "run"
    out = _cli("train", "--data", str(data), "--epochs", "1", "--output-dir", str(run),
               "--no-tensorboard", "--jit-compile", "off")
    assert out.returncode == 0, out.stderr[-3000:]
    assert "28x28x1" in out.stderr and "small-images recipe" in out.stderr, out.stderr[-2000:]
    # The 90/10 split of a folder without train/ and test/, said once (Keras printed
    # "Using 3 files for validation." for each of train's and test's reads): 36 images.
    assert out.stdout.count("held out for testing") == 1, out.stdout[-2000:]
    assert "36 images in 3 classes" in out.stdout and "33 for training, 3 held" in out.stdout
    assert "files for validation" not in out.stdout + out.stderr, out.stdout[-2000:]
    config = json.loads((run / "metrics.json").read_text())["config"]
    model = config["model_config"]
    assert (model["image_size"], model["num_channels"], model["patch_size"]) == ([28, 28], 1, 4)
    assert json.loads((run / "metrics.json").read_text())["class_names"] == ["one", "two", "zero"]
    # predict names the folder's classes.
    image = data / "two" / "0.png"
    out = _cli("predict", "--model", str(run / "model.keras"), str(image), "--top", "3")
    assert out.returncode == 0, out.stderr[-3000:]
    assert {"one", "two", "zero"} <= set(out.stdout.replace(",", " ").replace(":", " ").split())


def test_set_applies_before_validation_and_rgb_folder_feeds_a_gray_model(tmp_path):
    data = _digit_folder(tmp_path / "rgb", rgb=True, per_class=6)
    run = tmp_path / "run"
    # Ti/16 at 28 px would fail the divisibility check; --set patch_size=7 comes first.
    out = _cli("train", "--data", str(data), "--model", "Ti/16", "--image-size", "28",
               "--set", "patch_size=7", "--epochs", "1", "--output-dir", str(run), *TINY)
    assert out.returncode == 0, out.stderr[-3000:]
    model = json.loads((run / "metrics.json").read_text())["config"]["model_config"]
    assert (model["patch_size"], model["num_channels"]) == (7, 3)
    # The shipped digits model is grayscale: the RGB folder is read as gray for it.
    out = _cli("finetune", "--weights", "weights/digits/model.keras", "--data", str(data),
               "--epochs", "1", "--batch-size", "8", "--output-dir", str(tmp_path / "ft"),
               "--no-tensorboard", "--jit-compile", "off")
    assert out.returncode == 0, out.stderr[-3000:]
    assert json.loads((tmp_path / "ft" / "metrics.json").read_text())["test_examples"] > 0


# --- one grammar, one error rule, the umask -------------------------------------------

@pytest.mark.portable
@pytest.mark.parametrize("text, value", [
    ("16,16", (16, 16)), ("[16, 16]", [16, 16]), ("gap", "gap"), ('"gap"', "gap"),
    ("true", True), ("False", False), ("none", None), ("null", None), ("0.1", 0.1),
    ("3", 3), ("1e-3", 1e-3),
])
def test_one_set_grammar_for_every_command(text, value):
    from keras_vit.cli.common import parse_field_value, parse_fields

    assert parse_field_value(text) == value
    assert parse_fields([f"field={text}"]) == {"field": value}


@pytest.mark.portable
def test_only_the_librarys_errors_are_one_line_a_bug_keeps_its_traceback(capsys):
    from keras_vit import cli
    from keras_vit.errors import ArgumentError, KerasViTError

    def command(error):
        def run(args):
            raise error
        return run

    parser = cli.build_parser()
    for error, one_line in ((ArgumentError("bad `x`"), True), (KeyError("bug"), False),
                            (TypeError("bug"), False)):
        args = parser.parse_args(["summary"])
        original = cli.build_parser
        try:
            cli.build_parser = lambda: _Fixed(args, command(error))
            if one_line:
                assert cli.main(["summary"]) == 1
                assert capsys.readouterr().err.strip() == "keras-vit summary: error: bad `x`"
            else:
                with pytest.raises(type(error)):
                    cli.main(["summary"])
        finally:
            cli.build_parser = original
    assert issubclass(KerasViTError, ValueError)
    # A ValueError raised inside a third-party library is a bug of ours, not a user's.
    import numpy as np

    try:
        np.reshape(np.zeros(3), (2, 2))
    except ValueError as error:
        assert not cli.common.is_user_error(error)


def _plain_value_error_from_a_keras_vit_raise(*args, **kwargs):
    """A bug of ours: an unfitted probe used (its `raise ValueError` is in keras_vit)."""
    import keras_vit.evaluation

    keras_vit.evaluation.LeastSquaresProbe(num_classes=2).predict(np.zeros((1, 2)))


@pytest.mark.portable
def test_a_plain_value_error_inside_keras_vit_keeps_its_traceback(monkeypatch, capsys):
    """What `keras-vit summary` calls raises a plain ValueError from inside keras_vit's
    own code: a bug, so main() re-raises it (traceback) instead of printing one line."""
    import keras_vit
    from keras_vit import cli

    monkeypatch.setattr(keras_vit, "ViT", _plain_value_error_from_a_keras_vit_raise)
    with pytest.raises(ValueError) as error:
        cli.main(["summary", "Ti/16"])
    assert not isinstance(error.value, keras_vit.errors.KerasViTError)
    assert "error:" not in capsys.readouterr().err


@pytest.mark.portable
def test_an_os_refusal_of_a_named_path_is_one_line_other_os_errors_are_bugs(tmp_path, capsys):
    from keras_vit import cli

    for error in (PermissionError(13, "Permission denied", str(tmp_path / "m.keras")),
                  IsADirectoryError(21, "Is a directory", str(tmp_path))):
        assert cli.common.is_user_error(error)
    assert not cli.common.is_user_error(OSError(28, "No space left on device"))
    # A directory given as a model: one line naming it, through the library's own type.
    assert cli.main(["summary", str(tmp_path) + "/.keras"]) == 1
    err = capsys.readouterr().err.strip()
    assert err.startswith("keras-vit summary: error:") and str(tmp_path) in err, err


@pytest.mark.portable
def test_summary_refuses_a_size_given_twice_in_one_line(capsys):
    """`--image-size 64 --set image_size=32` was a TypeError traceback (two values)."""
    from keras_vit import cli

    assert cli.main(["summary", "Ti/16", "--image-size", "64", "--set", "image_size=32"]) == 1
    err = capsys.readouterr().err.strip()
    assert err == ("keras-vit summary: error: Received two values for `image_size`: "
                   "--image-size 64 and --set image_size=32; pass one."), err


@pytest.mark.portable
def test_the_librarys_refusals_are_its_own_error_types(tmp_path):
    """A sample across the package: config fields, checkpoints, model files."""
    import keras_vit
    from keras_vit.checkpoints.port import CheckpointError
    from keras_vit.errors import ArgumentError, DataError, DataNotFound, KerasViTError

    (tmp_path / "garbage.npz").write_bytes(b"PK\x03\x04 not really a zip")
    (tmp_path / "text.keras").write_text("not a model")
    cases = [
        (lambda: keras_vit.ViTConfig(hidden_size=30, num_heads=4), ArgumentError, "hidden_size"),
        (lambda: keras_vit.ViTConfig.from_dict({"num_layerz": 2}), ArgumentError, "num_layerz"),
        (lambda: keras_vit.ViT("X/16"), ArgumentError, "unknown variant"),
        (lambda: keras_vit.layers.Patches(4)(np.zeros((2, 8, 8))), ArgumentError, "Patches"),
        (lambda: keras_vit.convert_checkpoint(str(tmp_path / "missing.npz")), DataNotFound,
         "No checkpoint file"),
        (lambda: keras_vit.convert_checkpoint(str(tmp_path / "garbage.npz")), CheckpointError,
         "garbage.npz"),
        (lambda: keras_vit.evaluation.load_model(tmp_path / "none.keras"), DataNotFound,
         "not found"),
        (lambda: keras_vit.evaluation.load_model(tmp_path / "text.keras"), DataError,
         "not a Keras model file"),
    ]
    for call, kind, text in cases:
        with pytest.raises(kind, match=text) as error:
            call()
        assert isinstance(error.value, KerasViTError) and isinstance(error.value, ValueError)
    assert issubclass(DataNotFound, FileNotFoundError)


def test_a_data_folder_without_classes_is_a_data_error(tmp_path):
    import keras_vit
    from keras_vit.errors import DataError

    with pytest.raises(DataError, match="no class sub-folders"):
        keras_vit.data.load_dataset(str(tmp_path))


class _Fixed:
    def __init__(self, args, run):
        self.args, args.run = args, run

    def parse_args(self, argv):
        return self.args


@pytest.mark.parametrize("umask", [0o022, 0o027])
def test_convert_writes_with_the_users_umask(tmp_path, umask, capsys):
    from keras_vit import cli

    out = tmp_path / "m.keras"
    old = os.umask(umask)
    try:
        assert cli.main(["convert", os.path.join(ROOT, "tests/fixtures/original_tiny.npz"),
                         "--output", str(out)]) == 0, capsys.readouterr().err
    finally:
        os.umask(old)
    assert out.stat().st_mode & 0o777 == 0o666 & ~umask
    assert [p.name for p in tmp_path.iterdir()] == ["m.keras"]


def test_tensorflow_start_up_lines_only_with_verbose():
    def tf_lines(text):
        return [l for l in text.splitlines() if l[:5] in ("I0000", "W0000", "E0000")
                or "absl::InitializeLog" in l or "oneDNN" in l or "cpu_feature_guard" in l]

    args = ["summary", "Ti/16", "--image-size", "32", "--num-classes", "3"]
    # TF_ENABLE_ONEDNN_OPTS=1 is what TensorFlow does by itself on Intel (and AVX-512 AMD)
    # CPUs: it logs its oneDNN notice through absl before TF_CPP_MIN_LOG_LEVEL applies.
    for env in ({}, {"TF_ENABLE_ONEDNN_OPTS": "1"}):
        quiet = _cli(*args, env=env)
        assert quiet.returncode == 0, quiet.stderr[-3000:]
        assert tf_lines(quiet.stderr) == [], env
    bare = _python("import tensorflow", env={"TF_ENABLE_ONEDNN_OPTS": "1"})
    if tf_lines(bare.stderr):  # what this TensorFlow prints when not told otherwise
        loud = _cli("--verbose", *args, env={"TF_ENABLE_ONEDNN_OPTS": "1"})
        assert loud.returncode == 0 and tf_lines(loud.stderr), loud.stderr[-3000:]


# A fresh process where `jax` cannot be imported (as in an environment without it).
WITHOUT_JAX = """
import sys
sys.modules["jax"] = None
from keras_vit.cli import main
sys.exit(main(["train", "--data", "cifar10"]))  # a name: past the early path check
"""


@pytest.mark.parametrize("backend, env, expected", [
    ("jax", {"KERAS_BACKEND": "jax"},
     'KERAS_BACKEND=jax, but jax is not installed: pip install ".[jax]"'),
    ("typo", {"KERAS_BACKEND": "jaxx"},
     "KERAS_BACKEND=jaxx is not a Keras backend; expected one of tensorflow, jax, torch"),
    ("keras.json", {}, '"backend": "jax" in {home}/keras.json, but jax is not installed'),
])
def test_a_backend_that_is_not_installed_is_one_line(tmp_path, backend, env, expected):
    (tmp_path / "keras.json").write_text(json.dumps({"backend": "jax"}))
    user = {k: v for k, v in USER_ENV.items() if k != "KERAS_BACKEND"}
    out = subprocess.run([sys.executable, "-c", WITHOUT_JAX], capture_output=True, text=True,
                         timeout=120, cwd=ROOT, env=dict(user, KERAS_HOME=str(tmp_path), **env))
    line = _one_error_line(out)
    assert line.startswith("keras-vit train: error: ") and expected.format(
        home=tmp_path) in line, line


def test_quiet_import_drops_only_tensorflow_log_lines(capfd):
    """What the quiet import writes back: every line that is not in absl's log format."""
    from keras_vit.cli.common import _without_tensorflow_log

    with _without_tensorflow_log():
        os.write(2, b"WARNING: All log messages before absl::InitializeLog() is called are "
                    b"written to STDERR\n"
                    b"I0000 00:00:1796619704.568716   17996 port.cc:153] oneDNN custom "
                    b"operations are on.\n"
                    b"/x/module.py:3: UserWarning: a warning of the import itself\n"
                    b"E0000 00:00:1796619704.5   17996 cuda_dnn.cc:8310] Unable to register\n"
                    b"I0000 is not a log line\n")
    assert capfd.readouterr().err == ("/x/module.py:3: UserWarning: a warning of the import "
                                      "itself\nI0000 is not a log line\n")


def test_run_folder_rules_without_training(tmp_path):
    """The rerun rules on a folder as `train` leaves it (cheap twin of the walk above)."""
    import keras_vit
    from keras_vit.errors import RunFolderError
    from keras_vit.training.runs import prepare_run_folder as prepare

    old = dict(epochs=4, seed=0, mixed_precision=False, jit_compile=True,
               model_config=dict(num_layers=1, hidden_size=16))
    (tmp_path / "checkpoint").mkdir()
    (tmp_path / "checkpoint" / "state.json").write_text(json.dumps(
        dict(epoch=4, weights="epoch-4.weights.h5", config=old)))
    (tmp_path / "model.keras").write_text("the user's model")
    assert keras_vit.training.recorded_config(str(tmp_path)) == old
    prepare(str(tmp_path), dict(old, jit_compile=False), False, False)  # execution detail
    prepare(str(tmp_path), dict(old, epochs=6), False, False)  # extends
    for new, shown in ((dict(old, epochs=2), "epochs 4 -> 2"),
                       (dict(old, seed=1), "seed 0 -> 1"),
                       (dict(old, model_config=dict(num_layers=2, hidden_size=16)),
                        "num_layers 1 -> 2")):
        with pytest.raises(RunFolderError, match="--overwrite") as error:
            prepare(str(tmp_path), new, False, False)
        assert shown in str(error.value) and str(tmp_path) in str(error.value)
    assert (tmp_path / "model.keras").read_text() == "the user's model"
    # Training state with no record of its options (an older pretrain wrote such) is
    # not resumed under today's; a finished run whose checkpoint/ was deleted is not
    # retrained over (restore would find nothing and train from epoch 0).
    state = tmp_path / "checkpoint" / "state.json"
    state.write_text(json.dumps(dict(epoch=4, weights="epoch-4.weights.h5")))
    with pytest.raises(RunFolderError, match="no record of the options.*--overwrite"):
        prepare(str(tmp_path), old, False, False)
    state.write_text(json.dumps(dict(epoch=4, weights="epoch-4.weights.h5", config=old)))
    shutil.move(tmp_path / "checkpoint", tmp_path.parent / "moved-checkpoint")
    (tmp_path / "metrics.json").write_text(json.dumps(dict(config=old)))
    for new in (old, dict(old, epochs=6)):
        with pytest.raises(RunFolderError, match="no checkpoint/ to resume or extend"):
            prepare(str(tmp_path), new, False, False)
    assert (tmp_path / "model.keras").read_text() == "the user's model"
    prepare(str(tmp_path), dict(old, seed=1), True, False)  # --overwrite: start over
    assert sorted(p.name for p in tmp_path.iterdir()) == []


def test_no_help_text_shows_a_doubled_percent_sign():
    # argparse %-formats help= strings but prints description= as written.
    from keras_vit.cli import build_parser

    parser = build_parser()
    sub = next(a for a in parser._actions if isinstance(a, argparse._SubParsersAction))
    for name, command in sub.choices.items():
        assert "%%" not in command.format_help(), name
