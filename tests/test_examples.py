"""Every example script answers --help and runs its --smoke (so none can rot).

The scripts run in this process (imported from examples/), so TensorFlow and
Keras are imported once for all of them.
"""

import importlib.util
import pathlib
import sys

import pytest

EXAMPLES = pathlib.Path(__file__).resolve().parent.parent / "examples"
SCRIPTS = sorted(p.stem for p in EXAMPLES.glob("*.py") if not p.stem.startswith("_"))
OWN = [s for s in SCRIPTS if s != "masked_patch_prediction"]  # that one has its own test


def load(name):
    if str(EXAMPLES) not in sys.path:
        sys.path.insert(0, str(EXAMPLES))  # the scripts import their _helpers
    spec = importlib.util.spec_from_file_location(f"example_{name}", EXAMPLES / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_the_examples_the_issues_name_exist():
    assert {"cifar10_from_scratch", "cifar10_finetune", "oxford_pets_finetune", "few_shot",
            "transfer_higher_resolution", "position_embedding_ablation",
            "data_size_inductive_bias"} <= set(SCRIPTS)


@pytest.mark.parametrize("name", OWN)
def test_example_help(name, capsys):
    with pytest.raises(SystemExit) as exit_info:
        load(name).main(["--help"])
    assert exit_info.value.code == 0
    out = capsys.readouterr().out
    assert "--smoke" in out and out.startswith("usage:")


@pytest.mark.parametrize("name", OWN)
def test_example_smoke(name, capsys):
    assert load(name).main(["--smoke"]) == 0
    assert "%" in capsys.readouterr().out  # every example prints an accuracy


def test_finetune_example_missing_checkpoint_is_one_line(capsys, tmp_path):
    code = load("oxford_pets_finetune").main(["--weights", str(tmp_path / "none.keras")])
    assert code == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "no checkpoint at" in err[0] and "--weights B/16" in err[0]


def test_example_missing_data_is_one_line(capsys, tmp_path):
    code = load("cifar10_from_scratch").main(["--data-dir", str(tmp_path), "--epochs", "1"])
    assert code == 2
    err = [l for l in capsys.readouterr().err.strip().splitlines() if "absl" not in l]
    assert len(err) == 1 and "tfds.load('cifar10')" in err[0] and str(tmp_path) in err[0]


def test_transfer_higher_resolution_at_one_resolution_is_its_own_control(capsys, tmp_path):
    """With --high equal to --low the pipeline must collapse: the resized model is the
    trained one (same accuracy; an untrained one's zero head scores one class's share) and
    the fine-tuning at the "higher" resolution is the control's run, step for step. The
    table written is the one printed."""
    table = tmp_path / "transfer.md"
    argv = ["--smoke", "--high", "16", "--output", str(table)]
    assert load("transfer_higher_resolution").main(argv) == 0
    assert table.read_text() in capsys.readouterr().out
    rows = [line.split(" | ") for line in table.read_text().splitlines()
            if line.startswith("| ") and line[2:].split(" |")[0] not in ("model",)]
    assert [r[0][2:].split(" ")[0] for r in rows] == ["trained", "same,", "fine-tuned",
                                                     "control:"]
    assert [(r[1], r[2]) for r in rows] == [("16", "16")] * 4  # px, tokens
    low, resized, finetuned, control = (float(r[3]) for r in rows)  # seed 0, %
    assert resized == low and finetuned == control
