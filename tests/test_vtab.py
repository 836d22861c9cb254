"""VTAB-1k (keras_vit.evaluation.vtab) and `keras-vit vtab`, on tfds mock data."""

import json
import os

import numpy as np
import pytest

import keras_vit
from keras_vit.cli import main
from keras_vit.evaluation import (
    VTAB_SETTING,
    VTAB_TASKS,
    load_vtab_split,
    run_vtab,
    summarize_vtab,
    vtab_splits,
)

tfds = pytest.importorskip("tensorflow_datasets")

# task_adaptation (commit d7630d3) split strings with the tfds sizes they are
# computed from, copied from task_adaptation/data/<name>.py.
TASK_ADAPTATION = {
    "cifar100": ("train[:800]+train[45000:45200]", "test"),  # cifar.py, 90 % of 50,000
    "caltech101": ("train[:800]+train[2754:2954]", "test"),  # caltech.py, 90 % of 3,060
    "oxford_iiit_pet": ("train[:800]+train[2944:3144]", "test"),  # 80 % of 3,680
    "dtd": ("train[:800]+validation[:200]", "test"),
    "eurosat": ("train[:800]+train[16200:16400]", "train[21600:]"),  # 60/20/20 of 27,000
    "dsprites_label_x_position": ("train[:800]+train[589824:590024]", "train[663552:]"),
    "smallnorb_label_azimuth": ("train[:800]+test[:200]", "test[50%:]"),
    "clevr_count_all": ("train[:800]+train[63000:63200]", "validation"),
}
SIZES = {"cifar100": {"train": 50000, "test": 10000}, "dtd": {"train": 1880,
         "validation": 1880, "test": 1880}, "eurosat": {"train": 27000},
         "smallnorb_label_azimuth": {"train": 24300, "test": 24300}}


class _Split:
    def __init__(self, n):
        self.num_examples, self.shard_lengths = n, [n]


def _count(expression, sizes):
    """Examples a tfds split expression selects, by tfds' own parser."""
    instruction = tfds.core.ReadInstruction.from_spec(expression)
    total = 0
    for part in instruction.to_absolute({k: _Split(n) for k, n in sizes.items()}):
        n = sizes[part.splitname]
        total += (n if part.to is None else part.to) - (part.from_ or 0)
    return total


def test_vtab_tasks_are_task_adaptations_19_by_group():
    groups = [t.group for t in VTAB_TASKS.values()]
    assert len(VTAB_TASKS) == 19
    assert (groups.count("natural"), groups.count("specialized"),
            groups.count("structured")) == (7, 4, 8)
    for name, (train, test) in TASK_ADAPTATION.items():
        splits = vtab_splits(name)
        assert splits["train800val200"].replace("[0:200]", "[:200]") == train, name
        assert splits["test"] == test, name
    # A prepared data set's own size wins over the catalog's.
    assert vtab_splits("cifar100", train_size=1000)["val200"] == "train[900:1100]"


@pytest.mark.parametrize("name", sorted(SIZES))
def test_vtab_trains_on_1000_examples_and_scores_on_test(name):
    splits = vtab_splits(name)
    sizes = dict(SIZES[name])
    if name == "eurosat":
        assert _count(splits["test"], sizes) == 27000 - 16200 - 5400
    assert _count(splits["train800"], sizes) == 800
    assert _count(splits["val200"], sizes) == 200
    assert _count(splits["train800val200"], sizes) == 1000


def test_summarize_vtab_means_by_value():
    top1 = {"cifar100": 0.5, "dtd": 0.7, "eurosat": 0.9, "dmlab": 0.2, "kitti_closest_vehicle_distance": 0.4}
    summary = summarize_vtab(top1, list(top1) + ["svhn"])
    assert summary["groups"]["natural"] == {"mean": pytest.approx(0.6), "tasks_done": 2,
                                            "tasks_total": 3}
    assert summary["groups"]["specialized"]["mean"] == pytest.approx(0.9)
    assert summary["groups"]["structured"]["mean"] == pytest.approx(0.3)
    assert summary["mean"] == pytest.approx(np.mean(list(top1.values())))
    assert (summary["tasks_done"], summary["tasks_total"]) == (5, 6)


def test_vtab_setting_is_the_papers():
    # ViT paper App. B.1.1 / Table 4: lr 0.01, 2500 steps, batch 512, 384 px.
    assert (VTAB_SETTING["learning_rate"], VTAB_SETTING["steps"], VTAB_SETTING["batch_size"],
            VTAB_SETTING["image_size"], VTAB_SETTING["momentum"]) == (0.01, 2500, 512, 384, 0.9)


def test_vtab_split_is_deterministic_and_has_three_channels():
    with tfds.testing.mock_data(num_examples=6):
        first = [b for b in load_vtab_split("smallnorb_label_elevation", "train800val200", 8, 6)
                 .as_numpy_iterator()]
        second = [b for b in load_vtab_split("smallnorb_label_elevation", "train800val200", 8,
                                             6).as_numpy_iterator()]
    images, labels = first[0]
    assert images.shape == (6, 8, 8, 3) and labels.dtype == np.int32
    np.testing.assert_array_equal(images[..., 0], images[..., 2])  # grey tiled to RGB
    for (a, b), (c, d) in zip(first, second):
        np.testing.assert_array_equal(a, c)
        np.testing.assert_array_equal(b, d)


@pytest.fixture
def tiny_weights(tmp_path):
    model = keras_vit.ViT(image_size=16, patch_size=8, num_channels=3, hidden_size=16,
                          num_layers=1, num_heads=2, mlp_dim=16, num_classes=5)
    path = tmp_path / "tiny.keras"
    model.save(path)
    return str(path)


def test_vtab_command_on_mock_data_with_resume(tiny_weights, tmp_path, capsys):
    out = tmp_path / "vtab"
    argv = ["vtab", "--weights", tiny_weights, "--tasks",
            "cifar100,dsprites_label_orientation", "--output-dir", str(out),
            "--steps", "2", "--batch-size", "4", "--accumulation-steps", "2",
            "--image-size", "0", "--eval-batch-size", "8"]
    with tfds.testing.mock_data(num_examples=10):
        assert main(argv) == 0
    printed = capsys.readouterr().out
    summary = json.loads((out / "vtab.json").read_text())
    assert set(summary["tasks"]) == {"cifar100", "dsprites_label_orientation"}
    for name, result in summary["tasks"].items():
        assert result["num_test_examples"] == 10 and 0.0 <= result["top1"] <= 1.0
        assert result["group"] == VTAB_TASKS[name].group
    assert result["splits"]["train"] == "train[:800]+train[589824:590024]"
    top1 = {n: r["top1"] for n, r in summary["tasks"].items()}
    assert summary["groups"]["natural"]["mean"] == pytest.approx(top1["cifar100"])
    assert "specialized" not in summary["groups"]
    assert summary["mean"] == pytest.approx(np.mean(list(top1.values())))
    markdown = (out / "vtab.md").read_text()
    assert markdown in printed and "| structured | dsprites_label_orientation |" in markdown

    # Resume: a second run trains nothing and keeps the saved results.
    before = (out / "tasks" / "cifar100.json").stat().st_mtime_ns
    with tfds.testing.mock_data(num_examples=10):
        assert main(argv) == 0
    assert "cifar100: done earlier" in capsys.readouterr().out
    assert (out / "tasks" / "cifar100.json").stat().st_mtime_ns == before

    # Another setting into the same folder is refused, not overwritten.
    with tfds.testing.mock_data(num_examples=10):
        assert main(argv[:-6] + ["--steps", "3", "--batch-size", "4", "--image-size", "0"]) == 1
    assert "another setting" in capsys.readouterr().err


def test_vtab_missing_data_is_skipped_with_what_to_download(tiny_weights, tmp_path):
    lines = []
    summary = run_vtab(tiny_weights, tasks=["dtd", "svhn"], data_dir=str(tmp_path / "empty"),
                       output_dir=str(tmp_path / "out"), steps=1, batch_size=2,
                       image_size=None, log=lines.append)
    assert summary["tasks"] == {} and set(summary["skipped"]) == {"dtd", "svhn"}
    assert "tfds.load('svhn_cropped')" in summary["skipped"]["svhn"]
    assert str(tmp_path / "empty") in summary["skipped"]["dtd"]
    assert summary["mean"] is None and len(lines) == 2
    assert not os.listdir(tmp_path / "out" / "tasks")  # a skipped task is retried next time


def test_vtab_schedule_counts_updates_not_micro_batches(tiny_weights, monkeypatch):
    # 4 updates of 2 micro-batches each: every update must get the rate of its place
    # on a cosine over the 4 updates (on today's Keras the schedule moves every
    # micro-batch; a schedule over 4 steps gave the last two updates a rate of 0).
    import keras

    rates, fit = [], keras.Model.fit

    class Rates(keras.callbacks.Callback):
        def on_train_batch_begin(self, batch, logs=None):
            rates.append(float(keras.ops.convert_to_numpy(self.model.optimizer.learning_rate)))

    def recording_fit(self, *args, callbacks=None, **kwargs):
        return fit(self, *args, callbacks=[*(callbacks or []), Rates()], **kwargs)

    monkeypatch.setattr(keras.Model, "fit", recording_fit)
    steps, accumulation, rate = 4, 2, 0.01
    with tfds.testing.mock_data(num_examples=10):
        keras_vit.evaluation.finetune_vtab_task(
            tiny_weights, "cifar100", steps=steps, batch_size=4, learning_rate=rate,
            image_size=None, gradient_accumulation_steps=accumulation, eval_batch_size=8)
    assert len(rates) == steps * accumulation
    applied = rates[accumulation - 1::accumulation]  # the micro-batch that applies the update
    # Update u is applied after u + (accumulation - 1) / accumulation updates' worth.
    done = np.arange(steps) + (accumulation - 1) / accumulation
    expected = 0.5 * rate * (1 + np.cos(np.pi * done / steps))
    np.testing.assert_allclose(applied, expected, rtol=1e-4)
