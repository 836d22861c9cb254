"""The benchmark harness (benchmarks/): a tiny interleaved run, the FLOP count,
skipped peers, argument errors, and the thin `keras-vit benchmark` command."""

import ast
import dataclasses
import os
import subprocess
import sys

import pytest

from benchmarks import configs, driver, report
from keras_vit.cli import benchmark as benchmark_command
from keras_vit.cli import main

TINY = dataclasses.replace(configs.dry_run_configs(configs.CPU_CONFIGS)[1], name="tiny inference")
TINY_TRAIN = dataclasses.replace(configs.dry_run_configs(configs.CPU_CONFIGS)[0], name="tiny train")


def vit_parameters(c):
    """Trainable parameters of a class-token ViT of `c`'s shape, counted here from the
    paper's layers (patch projection, class token, position embedding, pre-norm blocks
    with a fused q/k/v, final norm, head), not by any framework."""
    n = (c.image_size // c.patch_size) ** 2
    d, m = c.hidden_size, c.mlp_dim
    embed = (c.patch_size**2 * 3 * d + d) + d + (n + 1) * d
    block = 2 * (2 * d) + (d * 3 * d + 3 * d) + (d * d + d) + (d * m + m) + (m * d + d)
    return embed + c.num_layers * block + 2 * d + (d * c.num_classes + c.num_classes)


def zeromodels_python():
    """An interpreter with ZeroModels: $ZEROMODELS_PYTHON, else make_peer_envs.sh's."""
    return os.environ.get("ZEROMODELS_PYTHON") or driver.default_pythons().get("zeromodels")


def test_forward_flops_match_published_vit_b16():
    # timm / fvcore count ViT-B/16 at 224 as 17.58 GMACs per image.
    b16 = configs.CPU_CONFIGS[1]
    assert b16.forward_flops() == pytest.approx(2 * 17.58e9, rel=2e-3)
    train = configs.CPU_CONFIGS[0]
    assert train.step_flops() == 3 * train.forward_flops()


def test_tiny_run_table_has_every_row_and_skips_missing_peers(tmp_path):
    runners = [
        configs.Runner("keras_vit", "tensorflow"),
        configs.Runner("keras_vit", "tensorflow", "False"),
        configs.Runner("keras_hub", "tensorflow", python=str(tmp_path / "no-python")),
        # This interpreter has no keras_hub: the worker says so.
        configs.Runner("keras_hub", "tensorflow", python=sys.executable),
        # nor ZeroModels (it lives in benchmarks/envs/zeromodels)
        configs.Runner("zeromodels", "tensorflow", python=sys.executable),
    ]
    results = driver.run_benchmark([TINY], runners, reps=2, threads=1, log=None)
    (config,) = results["configs"]
    rows = config["rows"]
    assert [row["label"] for row in rows] == [
        "keras_vit (tensorflow)",
        "keras_vit (tensorflow, jit_compile=False)",
        "keras_hub (tensorflow)",
        "keras_hub (tensorflow)",
        "zeromodels (tensorflow)",
    ]
    for row in rows[:2]:
        assert len(row["all"]) == 2 and min(row["all"]) > 0
        assert row["images_per_s"] > 0 and row["peak_rss_mib"] > 50
        assert 0 < row["fraction_of_peak"]
        assert row["parameters"] == vit_parameters(TINY)  # the configuration's model
    # The numpy and TensorFlow GEMMs were timed; the peak is their best.
    assert set(config["matmul"]) >= {"numpy", "tensorflow"}
    assert config["peak_flops_per_s"] == max(config["matmul"].values()) > 0
    # A peer that cannot run is a skipped row saying how to enable it, not a crash.
    assert rows[2]["skipped"].startswith(f"no interpreter at {tmp_path / 'no-python'}; ")
    assert rows[3]["skipped"].startswith(f"keras_hub is not installed for {sys.executable}; ")
    for row in rows[2:4]:
        assert "to enable: benchmarks/make_peer_envs.sh" in row["skipped"]
        assert "--python keras_hub=PATH" in row["skipped"] and "images_per_s" not in row
    assert rows[4]["skipped"].startswith(f"zeromodels is not installed for {sys.executable}; ")
    assert "--python zeromodels=PATH" in rows[4]["skipped"] and "images_per_s" not in rows[4]

    table = report.format_table(results, command="keras-vit benchmark --quick")
    assert "| keras_vit (tensorflow) | " in table
    skipped = [line for line in table.splitlines() if "| keras_hub (tensorflow) |" in line]
    assert len(skipped) == 2
    assert all(line.startswith("| keras_hub (tensorflow) | skipped: ") for line in skipped)
    assert "% of matmul peak" in table and "`keras-vit benchmark --quick`" in table


def test_runner_arguments_become_rows():
    runners = driver.parse_runners(
        ["keras_vit:jax", "keras_hub:tensorflow:True", "timm:compile"], {"timm": "/venv/python"})
    assert [r.label for r in runners] == [
        "keras_vit (jax)", "keras_hub (tensorflow, jit_compile=True)", "timm (torch.compile)"]
    assert runners[2].python == "/venv/python" and runners[0].python is None


def test_zeromodels_is_a_peer_row_of_the_cpu_table(tmp_path, monkeypatch):
    # make_peer_envs.sh's environment is found where the script puts it...
    python = tmp_path / driver.ENVS / "zeromodels" / "bin" / "python"
    python.parent.mkdir(parents=True)
    python.touch()
    monkeypatch.setattr(driver, "CHECKOUT", str(tmp_path))
    assert driver.default_pythons() == {"zeromodels": str(python)}
    # ...and runs the default CPU row, XLA left to Keras' "auto" (off on a CPU)
    rows = configs.default_runners("cpu", driver.default_pythons())
    (row,) = [r for r in rows if r.framework == "zeromodels"]
    assert (row.label, row.backend, row.jit_compile, row.python) == (
        "zeromodels (tensorflow)", "tensorflow", "auto", str(python))
    assert "zeromodels" not in {r.framework for r in configs.default_runners("gpu")}
    # --runner/--python name it as they name the others
    (forced,) = driver.parse_runners(["zeromodels:tensorflow:True"], {"zeromodels": "/zm"})
    assert forced.label == "zeromodels (tensorflow, jit_compile=True)" and forced.python == "/zm"
    assert driver.parse_pythons([f"zeromodels={python}"]) == {"zeromodels": str(python)}


def test_zeromodels_row_trains_and_predicts_the_configured_vit():
    python = zeromodels_python()
    if not python or not os.path.exists(python):
        pytest.skip("no interpreter with ZeroModels (benchmarks/make_peer_envs.sh zeromodels, "
                    "or ZEROMODELS_PYTHON)")
    import keras

    runners = [configs.Runner("zeromodels", "tensorflow", python=python)]
    results = driver.run_benchmark([TINY_TRAIN, TINY], runners, reps=1, threads=1,
                                   measure_matmul=False, log=None)
    for config, c in zip(results["configs"], (TINY_TRAIN, TINY)):
        (row,) = config["rows"]
        assert "error" not in row and "skipped" not in row, row
        assert row["images_per_s"] > 0 and len(row["all"]) == 1
        # the same ViT as keras_vit's row, on the same Keras: only the graph differs
        assert row["parameters"] == vit_parameters(c)
        assert row["versions"]["keras"] == keras.__version__ and "zeromodels" in row["versions"]
        assert row["jit"] == "False"  # Keras' own "auto" on a CPU


def test_bad_arguments_name_the_argument():
    with pytest.raises(ValueError, match="`reps`"):
        driver.run_benchmark([TINY], reps=0)
    with pytest.raises(ValueError, match="`device`"):
        driver.run_benchmark([TINY], device="tpu")
    with pytest.raises(ValueError, match="--runner"):
        driver.parse_runners(["pytorch"], {})
    with pytest.raises(ValueError, match="--python"):
        driver.parse_pythons(["timm"])


def test_harness_and_command_import_no_framework():
    code = (
        "import sys; import benchmarks.driver, benchmarks.workers; "
        "heavy = [m for m in ('numpy', 'keras', 'tensorflow', 'torch', 'jax') if m in sys.modules]; "
        "assert not heavy, heavy"
    )
    subprocess.run([sys.executable, "-c", code], check=True, cwd=driver.CHECKOUT)
    # The command module's own imports: the standard library and the CLI's common module.
    tree = ast.parse(open(benchmark_command.__file__).read())
    names = {alias.name for node in tree.body if isinstance(node, ast.Import)
             for alias in node.names}
    names |= {node.module for node in tree.body if isinstance(node, ast.ImportFrom)}
    assert names <= {"importlib", "pathlib", "sys", "keras_vit.cli.common"}, names


def test_command_finds_the_checkout_harness_or_says_how_to_get_it(
        tmp_path, monkeypatch, capsys):
    assert benchmark_command.CHECKOUT / "benchmarks" / "driver.py" == driver.CHECKOUT_DRIVER
    with pytest.raises(SystemExit):
        main(["benchmark", "--help"])
    assert "--runner FRAMEWORK[:BACKEND[:JIT]]" in capsys.readouterr().out
    # As installed from a wheel: no benchmarks/ beside the package, nor in the current
    # folder (tests/test_user_files.py runs the installed command in and out of a checkout).
    monkeypatch.setattr(benchmark_command, "CHECKOUT", tmp_path)
    monkeypatch.chdir(tmp_path)
    assert main(["benchmark", "--quick"]) == 1
    captured = capsys.readouterr()
    (line,) = captured.err.strip().splitlines()
    assert line.startswith("keras-vit benchmark: error: the benchmark harness is not installed")
    assert "source checkout" in line and "Traceback" not in captured.err
