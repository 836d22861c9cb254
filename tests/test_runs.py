"""The run executor (keras_vit.training.Run): one XLA decision, one compile site, and the
arrows between training and evaluation."""

import ast
import os

import keras
import pytest

from keras_vit.training import DIGITS_RECIPE, Run, runs
from keras_vit import utils

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
PACKAGE = os.path.join(ROOT, "keras_vit")


def _sources(folder=PACKAGE):
    for where, _, files in os.walk(folder):
        for name in sorted(files):
            if name.endswith(".py"):
                path = os.path.join(where, name)
                with open(path) as f:
                    yield os.path.relpath(path, ROOT), ast.parse(f.read())


@pytest.mark.parametrize("accelerator", [False, True])
def test_xla_policy_takes_distribution_and_objective_by_value(monkeypatch, accelerator):
    if keras.backend.backend() != "tensorflow":
        pytest.skip("auto_jit_compile's answer differs by backend; this table is TensorFlow's")
    monkeypatch.setattr(runs, "has_accelerator", lambda: accelerator)
    monkeypatch.setattr(utils, "has_accelerator", lambda: accelerator)
    resolve = runs.resolve_jit_compile
    # (jit_compile, distribute, xla_on_cpu) -> compiled with XLA, on a CPU / an accelerator
    table = {
        ("auto", False, True): (True, True),  # utils.auto_jit_compile: on for TF on a CPU
        ("auto", True, True): (False, True),  # no XLA across virtual CPU replicas
        ("auto", False, False): (False, True),  # an objective measured slower on a CPU
        (None, True, False): (False, True),
        ("on", False, False): (True, True),  # asked for: as given
        (True, True, True): (False, True),  # ... except distributing on a CPU
        ("off", False, True): (False, False),
        (False, True, True): (False, False),
    }
    for (given, distribute, xla_on_cpu), expected in table.items():
        got = resolve(given, distribute=distribute, xla_on_cpu=xla_on_cpu)
        assert got is expected[accelerator], (given, distribute, xla_on_cpu)


def test_run_compile_asks_the_policy_once_and_records_its_answer(tmp_path, monkeypatch):
    if keras.backend.backend() != "tensorflow":
        pytest.skip("the CPU answer of auto_jit_compile is TensorFlow's here")
    monkeypatch.setattr(runs, "has_accelerator", lambda: False)
    asked = []
    policy = runs.resolve_jit_compile
    monkeypatch.setattr(runs, "resolve_jit_compile", lambda *a, **k: asked.append(a) or policy(*a, **k))
    run = Run(DIGITS_RECIPE, {}, "digits", "train", tmp_path / "run", 0, "auto", verbose=0)
    for xla_on_cpu, expected in ((True, True), (False, False)):
        model = keras.Sequential([keras.Input((3,)), keras.layers.Dense(2)])
        assert run.compile(model, "sgd", loss="mse", steps_per_execution=3,
                           xla_on_cpu=xla_on_cpu) == (expected, 3)
        assert model.jit_compile is expected
        assert run.compiled == {"jit_compile": expected, "steps_per_execution": 3}
    assert len(asked) == 2


def test_one_training_compile_and_evaluation_never_imports_training():
    compiles, imports = [], []
    for path, tree in _sources():
        for node in ast.walk(tree):
            if (isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute)
                    and node.func.attr == "compile"
                    and not (isinstance(node.func.value, ast.Name) and node.func.value.id in
                             ("re", "run"))):
                compiles.append(f"{path}:{node.lineno}")
        if path.startswith(os.path.join("keras_vit", "evaluation")):
            for node in tree.body:  # module level (evaluation/__init__'s lazy old names aside)
                names = ([a.name for a in node.names] if isinstance(node, ast.Import) else
                         [node.module or ""] if isinstance(node, ast.ImportFrom) else [])
                imports += [f"{path}: {n}" for n in names
                            if n.startswith(("keras_vit.training", "keras_vit.vtab"))]
    assert compiles == [os.path.join("keras_vit", "training", "runs.py") + ":" +
                        str(_line_of("model.compile(optimizer=optimizer"))]
    assert imports == []


def _line_of(text):
    with open(os.path.join(PACKAGE, "training", "runs.py")) as f:
        return next(i for i, line in enumerate(f, 1) if text in line)
