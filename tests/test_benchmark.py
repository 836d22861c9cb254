"""The benchmark harness (benchmarks/): a tiny interleaved run, the FLOP count,
skipped peers, argument errors, and the thin `keras-vit benchmark` command."""

import ast
import dataclasses
import subprocess
import sys

import pytest

from benchmarks import configs, driver, report
from keras_vit.cli import benchmark as benchmark_command
from keras_vit.cli import main

TINY = dataclasses.replace(configs.dry_run_configs(configs.CPU_CONFIGS)[1], name="tiny inference")


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
    ]
    results = driver.run_benchmark([TINY], runners, reps=2, threads=1, log=None)
    (config,) = results["configs"]
    rows = config["rows"]
    assert [row["label"] for row in rows] == [
        "keras_vit (tensorflow)",
        "keras_vit (tensorflow, jit_compile=False)",
        "keras_hub (tensorflow)",
        "keras_hub (tensorflow)",
    ]
    for row in rows[:2]:
        assert len(row["all"]) == 2 and min(row["all"]) > 0
        assert row["images_per_s"] > 0 and row["peak_rss_mib"] > 50
        assert 0 < row["fraction_of_peak"]
    # The numpy and TensorFlow GEMMs were timed; the peak is their best.
    assert set(config["matmul"]) >= {"numpy", "tensorflow"}
    assert config["peak_flops_per_s"] == max(config["matmul"].values()) > 0
    # A peer that cannot run is a skipped row saying how to enable it, not a crash.
    assert rows[2]["skipped"].startswith(f"no interpreter at {tmp_path / 'no-python'}; ")
    assert rows[3]["skipped"].startswith(f"keras_hub is not installed for {sys.executable}; ")
    for row in rows[2:]:
        assert "to enable: benchmarks/make_peer_envs.sh" in row["skipped"]
        assert "--python keras_hub=PATH" in row["skipped"] and "images_per_s" not in row

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
