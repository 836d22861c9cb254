"""The benchmark: a tiny interleaved run, the FLOP count and argument errors."""

import dataclasses

import pytest

from keras_vit import benchmark

TINY = dataclasses.replace(
    benchmark.dry_run_configs(benchmark.CPU_CONFIGS)[1], name="tiny inference"
)


def test_forward_flops_match_published_vit_b16():
    # timm / fvcore count ViT-B/16 at 224 as 17.58 GMACs per image.
    b16 = benchmark.CPU_CONFIGS[1]
    assert b16.forward_flops() == pytest.approx(2 * 17.58e9, rel=2e-3)
    train = benchmark.CPU_CONFIGS[0]
    assert train.step_flops() == 3 * train.forward_flops()


def test_tiny_run_table_has_every_row_with_positive_numbers(tmp_path):
    runners = [
        benchmark.Runner("keras_vit", "tensorflow"),
        benchmark.Runner("keras_vit", "tensorflow", "False"),
        benchmark.Runner("keras_hub", "tensorflow", python=str(tmp_path / "no-python")),
    ]
    results = benchmark.run_benchmark([TINY], runners, reps=2, threads=1, log=None)
    (config,) = results["configs"]
    rows = {row["label"]: row for row in config["rows"]}
    assert list(rows) == [
        "keras_vit (tensorflow)",
        "keras_vit (tensorflow, jit_compile=False)",
        "keras_hub (tensorflow)",
    ]
    for label in list(rows)[:2]:
        row = rows[label]
        assert len(row["all"]) == 2 and min(row["all"]) > 0
        assert row["images_per_s"] > 0 and row["peak_rss_mib"] > 50
        assert 0 < row["fraction_of_peak"]
    # The numpy and TensorFlow GEMMs were timed; the peak is their best.
    assert set(config["matmul"]) >= {"numpy", "tensorflow"}
    assert config["peak_flops_per_s"] == max(config["matmul"].values()) > 0
    # A worker that cannot start is a row with the reason, not a crash.
    assert "no-python" in rows["keras_hub (tensorflow)"]["error"]
    assert "images_per_s" not in rows["keras_hub (tensorflow)"]

    table = benchmark.format_table(results, command="keras-vit benchmark --quick")
    assert "| keras_vit (tensorflow) | " in table
    assert "| keras_hub (tensorflow) | not run: cannot start" in table
    assert "% of matmul peak" in table and "`keras-vit benchmark --quick`" in table


def test_bad_arguments_name_the_argument():
    with pytest.raises(ValueError, match="`reps`"):
        benchmark.run_benchmark([TINY], reps=0)
    with pytest.raises(ValueError, match="`device`"):
        benchmark.run_benchmark([TINY], device="tpu")
    with pytest.raises(ValueError, match="--runner"):
        benchmark.parse_runners(["pytorch"], {})
    with pytest.raises(ValueError, match="--python"):
        benchmark.parse_pythons(["timm"])
