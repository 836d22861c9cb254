"""`keras-vit train|finetune` end to end: run folder, resume after SIGKILL, bad input."""

import json
import os
import subprocess
import sys

import pytest

pytest.importorskip("tensorflow")

from keras_vit.training.callbacks import read_history  # noqa: E402
from tests.process_checks import kill_after_epochs  # noqa: E402

TINY = ["--set", "num_layers=1", "--set", "hidden_size=16", "--set", "num_heads=2",
        "--set", "mlp_dim=32", "--jit-compile", "off"]


def _cli(*args, timeout=300):
    env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="3")
    return subprocess.run([sys.executable, "-m", "keras_vit", *args], capture_output=True,
                          text=True, timeout=timeout, env=env)


def test_train_writes_model_metrics_history_and_logs(tmp_path):
    out = _cli("train", "--epochs", "1", "--batch-size", "128", "--output-dir",
               str(tmp_path), *TINY)
    assert out.returncode == 0, out.stderr[-2000:]
    for name in ("model.keras", "metrics.json", "history.csv"):
        assert (tmp_path / name).exists(), name
    assert any(f.startswith("events.out.tfevents") for _, _, files in os.walk(tmp_path / "logs")
               for f in files)
    metrics = json.loads((tmp_path / "metrics.json").read_text())
    assert set(metrics) >= {"test_accuracy", "test_top5_accuracy", "seconds", "config",
                            "command"}
    assert metrics["config"]["model_config"]["num_layers"] == 1
    assert metrics["command"].startswith("keras-vit train --epochs 1")
    printed = json.loads(out.stdout[out.stdout.index("{\n"):])  # after the progress lines
    assert printed["test_accuracy"] == metrics["test_accuracy"]


def test_sigkill_then_rerun_completes_each_epoch_once(tmp_path):
    args = ["train", "--epochs", "10", "--batch-size", "32", "--output-dir", str(tmp_path),
            "--no-tensorboard", *TINY]
    env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="3")
    history = str(tmp_path / "history.csv")
    killed_at = kill_after_epochs([sys.executable, "-m", "keras_vit", *args], history, env=env)
    assert 2 <= killed_at < 10
    assert not (tmp_path / "model.keras").exists()
    out = _cli(*args)
    assert out.returncode == 0, out.stderr[-2000:]
    assert "Resuming from epoch" in out.stderr
    epochs = [int(r["epoch"]) for r in read_history(history)]
    assert epochs == list(range(1, 11))
    assert (tmp_path / "model.keras").exists()
    metrics = json.loads((tmp_path / "metrics.json").read_text())
    assert 2 <= metrics["resumed_from_epoch"] < 10


@pytest.mark.parametrize("args, message", [
    (["train", "--data", "mnist"], "expected one of digits, cifar10"),
    (["train", "--data", "cifar10", "--data-dir", "{tmp}"], "not downloaded"),
    (["train", "--epochs", "0"], "argument `--epochs`, expected a positive integer"),
    (["train", "--set", "num_layerz=2"], "unknown ViTConfig field(s) num_layerz"),
    (["finetune", "--weights", "{tmp}/missing.keras"], "No checkpoint file or folder"),
    (["finetune", "--weights", "{tmp}/bad.keras"], "is not a Keras model file"),
])
def test_bad_input_is_one_line(tmp_path, args, message):
    (tmp_path / "bad.keras").write_text("not a model")
    args = [a.replace("{tmp}", str(tmp_path)) for a in args]
    out = _cli(*args, "--output-dir", str(tmp_path / "run"))
    assert out.returncode == 1
    lines = [l for l in out.stderr.splitlines() if l.startswith("keras-vit ")]
    assert len(lines) == 1 and message in lines[0], out.stderr[-2000:]
    assert "Traceback" not in out.stderr


ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def test_shipped_digits_model_reaches_98_percent_on_the_held_out_split():
    import keras
    import numpy as np
    import tensorflow as tf

    from keras_vit.data import load_digits_arrays

    folder = os.path.join(ROOT, "weights", "digits")
    model = keras.models.load_model(os.path.join(folder, "model.keras"))
    images, labels = load_digits_arrays("test")
    images = tf.image.resize(images, model.input.shape[1:3], method="bilinear").numpy()
    accuracy = float((model.predict(images, verbose=0).argmax(-1) == labels).mean())
    metrics = json.loads(open(os.path.join(folder, "metrics.json")).read())
    assert accuracy >= 0.98
    assert accuracy == pytest.approx(metrics["test_accuracy"])
    assert metrics["command"] == "keras-vit train --output-dir weights/digits"
    assert os.path.getsize(os.path.join(folder, "model.keras")) < 5 * 2**20


def test_checkpoint_list_matches_the_registry():
    from keras_vit.checkpoints import registry

    with open(os.path.join(ROOT, "weights", "CHECKPOINTS.md")) as f:
        assert registry.markdown_table() in f.read()


def test_finetune_takes_variant_and_set_for_what_a_checkpoint_does_not_record(tmp_path):
    """A timm state dict records no head count: `finetune` says which field is missing,
    by the flag that gives it, and `--set num_heads=2` fine-tunes it (as `convert` does)."""
    timm = os.path.join(os.path.dirname(__file__), "fixtures", "timm_tiny.safetensors")
    out = _cli("finetune", "--weights", timm, "--epochs", "1", "--batch-size", "128",
               "--no-tensorboard", "--jit-compile", "off", "--output-dir", str(tmp_path / "a"))
    assert out.returncode == 1
    lines = [l for l in out.stderr.splitlines() if l.startswith("keras-vit ")]
    assert len(lines) == 1 and "num_heads" in lines[0], out.stderr[-2000:]
    out = _cli("finetune", "--weights", timm, "--set", "num_heads=2", "--epochs", "1",
               "--batch-size", "128", "--no-tensorboard", "--jit-compile", "off",
               "--output-dir", str(tmp_path / "b"))
    assert out.returncode == 0, out.stderr[-2000:]
    metrics = json.loads((tmp_path / "b" / "metrics.json").read_text())
    assert metrics["config"]["model_config"]["num_heads"] == 2
    assert metrics["config"]["model_config"]["num_classes"] == 10
