"""The user's paths of issue 8, each walked in a fresh process as a user would.

`python -m keras_vit ...` with tiny settings, then a new interpreter that loads what the
command wrote; nothing here calls the internals the commands use.
"""

import json
import os
import subprocess
import sys

import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
TINY = ["--set", "num_layers=1", "--set", "hidden_size=16", "--set", "num_heads=2",
        "--set", "mlp_dim=32", "--no-tensorboard"]


def _python(code, timeout=300, env=None):
    return subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          timeout=timeout, cwd=ROOT, env=dict(os.environ, **(env or {})))


def _cli(*args, timeout=300, env=None):
    return subprocess.run([sys.executable, "-m", "keras_vit", *args], capture_output=True,
                          text=True, timeout=timeout, cwd=ROOT,
                          env=dict(os.environ, **(env or {})))


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


def test_a_trained_model_predicts_in_a_fresh_process_as_its_run_evaluated(tmp_path):
    run = tmp_path / "run"
    out = _cli("train", "--epochs", "1", "--output-dir", str(run), *TINY)
    assert out.returncode == 0, out.stderr[-3000:]
    recorded = json.loads((run / "metrics.json").read_text())
    out = subprocess.run([sys.executable, "-c", _EVALUATE, str(run / "model.keras")],
                         capture_output=True, text=True, timeout=300, cwd=ROOT)
    assert out.returncode == 0, out.stderr[-3000:]
    fresh = json.loads(out.stdout.strip().splitlines()[-1])
    assert fresh["test_examples"] == recorded["test_examples"] == 360
    assert fresh["test_accuracy"] == recorded["test_accuracy"]
    assert fresh["test_loss"] == pytest.approx(recorded["test_loss"], rel=1e-5)


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
