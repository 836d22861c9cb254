"""keras_vit.training: schedules by value, optimizers, resume, NaN, distribution."""

import json
import math
import os
import subprocess
import sys
import textwrap

import numpy as np
import pytest

tf = pytest.importorskip("tensorflow")
import keras  # noqa: E402

from keras_vit.training import (  # noqa: E402
    ResumableCheckpoint,
    TrainingDiverged,
    WarmupDecay,
    finetuning_optimizer,
    make_schedule,
    pretraining_optimizer,
    warmup_decay,
)
from keras_vit.training.callbacks import read_history, read_state, write_history  # noqa: E402

TINY = dict(patch_size=4, hidden_size=16, num_layers=1, num_heads=2, mlp_dim=32)


def test_warmup_cosine_by_value():
    # Warmup 10 steps to 1e-3, cosine to 0 at step 110.
    f = lambda s: warmup_decay(s, 1e-3, total_steps=110, warmup_steps=10)  # noqa: E731
    assert f(0) == pytest.approx(1e-4)
    assert f(4) == pytest.approx(5e-4)
    assert f(9) == pytest.approx(1e-3)
    assert f(10) == pytest.approx(1e-3)
    assert f(60) == pytest.approx(0.5e-3)  # half way: cos(pi/2) = 0
    assert f(35) == pytest.approx(1e-3 * 0.5 * (1 + math.cos(math.pi / 4)))
    assert f(110) == pytest.approx(0.0, abs=1e-12) and f(500) == pytest.approx(0.0, abs=1e-12)


def test_warmup_linear_by_value():
    f = lambda s: warmup_decay(s, 2.0, 20, 4, decay="linear", end_learning_rate=0.5)  # noqa: E731
    assert [f(s) for s in (0, 3)] == pytest.approx([0.5, 2.0])
    assert f(12) == pytest.approx(0.5 + 1.5 * 0.5)
    assert f(20) == pytest.approx(0.5)


@pytest.mark.parametrize("decay", ["cosine", "linear"])
def test_keras_schedule_equals_the_pure_function(decay):
    schedule = WarmupDecay(3e-3, total_steps=50, warmup_steps=7, decay=decay,
                           end_learning_rate=1e-5)
    steps = [0, 1, 6, 7, 8, 20, 49, 50, 80]
    got = [float(keras.ops.convert_to_numpy(schedule(s))) for s in steps]
    expected = [warmup_decay(s, 3e-3, 50, 7, decay, 1e-5) for s in steps]
    np.testing.assert_allclose(got, expected, rtol=1e-5)
    again = WarmupDecay.from_config(schedule.get_config())
    assert again.get_config() == schedule.get_config()
    no_warmup = WarmupDecay(1.0, total_steps=10)
    assert float(keras.ops.convert_to_numpy(no_warmup(0))) == pytest.approx(1.0)


def test_schedule_rejects_bad_arguments():
    with pytest.raises(ValueError, match="`decay`.*Received: decay='step'"):
        WarmupDecay(1e-3, 10, decay="step")
    with pytest.raises(ValueError, match="`total_steps`"):
        WarmupDecay(1e-3, 0)


def test_extending_a_run_says_how_the_recomputed_schedule_moves_the_rate():
    """60 -> 80 epochs of the digits recipe (45 steps an epoch, 3 warmup epochs): the
    schedule is recomputed over 80 epochs, and the line gives its rates by value."""
    from keras_vit.training.runs import extension_note

    old = dict(epochs=60, steps_per_epoch=45, learning_rate=2e-3, warmup_epochs=3,
               decay="cosine")
    line = extension_note("runs/digits", old, dict(old, epochs=80))
    total, warmup = 80 * 45, 3 * 45

    def cosine(step):
        return 2e-3 * 0.5 * (1 + math.cos(math.pi * (step - warmup) / (total - warmup)))

    assert line.startswith("Extending the run in runs/digits from 60 to 80 epochs: ")
    assert "recomputed over 80 epochs" in line
    assert "goes from 0 (end of epoch 60" in line  # the old cosine's end
    assert f"back up to {cosine(60 * 45):.6g} at the start of epoch 61" in line
    assert f"({cosine(61 * 45):.6g} at its end)" in line


def test_make_schedule_counts_steps_per_epoch():
    schedule = make_schedule(1e-3, epochs=10, steps_per_epoch=45, warmup_epochs=2)
    assert (schedule.total_steps, schedule.warmup_steps) == (450, 90)


def test_recipe_optimizers():
    model = keras.Sequential([keras.Input((4,)), keras.layers.Dense(3),
                              keras.layers.LayerNormalization()])
    adamw = pretraining_optimizer(1e-3, weight_decay=0.1, model=model,
                                  gradient_accumulation_steps=4)
    assert isinstance(adamw, keras.optimizers.AdamW)
    assert (adamw.beta_1, adamw.beta_2, adamw.global_clipnorm) == (0.9, 0.999, 1.0)
    assert adamw.weight_decay == 0.1 and adamw.gradient_accumulation_steps == 4
    adamw.build(model.trainable_variables)
    decayed = {v.name: adamw._use_weight_decay(v) for v in model.trainable_variables}
    assert decayed == {"kernel": True, "bias": False, "gamma": False, "beta": False}
    sgd = finetuning_optimizer(0.01)
    assert isinstance(sgd, keras.optimizers.SGD)
    assert (sgd.momentum, sgd.global_clipnorm, sgd.weight_decay) == (0.9, 1.0, None)
    with pytest.raises(ValueError, match="gradient_accumulation_steps"):
        pretraining_optimizer(1e-3, gradient_accumulation_steps=0)


def test_gradient_accumulation_equals_one_big_batch():
    """Two accumulated batches of 4 give the update of one batch of 8 (SGD)."""
    rng = np.random.default_rng(0)
    x = rng.normal(size=(8, 5)).astype("float32")
    y = rng.normal(size=(8, 2)).astype("float32")

    def run(batch, accumulate):
        keras.utils.set_random_seed(1)
        model = keras.Sequential([keras.Input((5,)), keras.layers.Dense(2)])
        model.compile(keras.optimizers.SGD(0.1, gradient_accumulation_steps=accumulate),
                      "mse")
        model.fit(x, y, batch_size=batch, epochs=1, shuffle=False, verbose=0)
        return model.get_weights()

    for a, b in zip(run(8, None), run(4, 2)):
        np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-6)


def _small_model():
    model = keras.Sequential([keras.Input((3,)), keras.layers.Dense(2)])
    model.compile(keras.optimizers.Adam(0.01), "mse")
    return model


def test_resume_cuts_history_to_the_committed_epoch(tmp_path):
    """A kill between writing history.csv and committing state.json repeats no row."""
    x = np.ones((4, 3), "float32")
    y = np.zeros((4, 2), "float32")
    model = _small_model()
    callback = ResumableCheckpoint(str(tmp_path / "ckpt"), str(tmp_path / "history.csv"))
    model.fit(x, y, epochs=2, verbose=0, callbacks=[callback])
    assert read_state(str(tmp_path / "ckpt"))["epoch"] == 2
    weights = model.get_weights()
    rows = read_history(str(tmp_path / "history.csv"))
    # Simulate the kill: a row for epoch 3 written, its state never committed.
    write_history(str(tmp_path / "history.csv"), rows + [dict(rows[-1], epoch="3")])
    fresh = _small_model()
    callback = ResumableCheckpoint(str(tmp_path / "ckpt"), str(tmp_path / "history.csv"))
    assert callback.restore(fresh) == 2
    assert [r["epoch"] for r in read_history(str(tmp_path / "history.csv"))] == ["1", "2"]
    for a, b in zip(fresh.get_weights(), weights):
        np.testing.assert_array_equal(a, b)
    fresh.fit(x, y, epochs=4, initial_epoch=2, verbose=0, callbacks=[callback])
    assert [r["epoch"] for r in read_history(str(tmp_path / "history.csv"))] == [
        "1", "2", "3", "4"]
    assert os.listdir(tmp_path / "ckpt") == ["state.json", "epoch-4.weights.h5"] or sorted(
        os.listdir(tmp_path / "ckpt")) == ["epoch-4.weights.h5", "state.json"]


def test_nan_stops_and_keeps_the_last_good_state(tmp_path):
    """Epoch 2's data holds a NaN: training stops, epoch 1's state stays."""
    passes = []

    def generator():
        passes.append(1)
        for i in range(4):
            value = np.nan if len(passes) == 2 and i == 2 else 1.0
            yield np.full((2, 3), value, "float32"), np.zeros((2, 2), "float32")

    dataset = tf.data.Dataset.from_generator(
        generator, output_signature=(tf.TensorSpec((2, 3)), tf.TensorSpec((2, 2))))
    model = _small_model()
    callback = ResumableCheckpoint(str(tmp_path / "ckpt"), str(tmp_path / "history.csv"))
    model.fit(dataset, epochs=5, verbose=0, callbacks=[callback])
    assert callback.diverged == (2, 3)
    assert read_state(str(tmp_path / "ckpt"))["epoch"] == 1
    assert [r["epoch"] for r in read_history(str(tmp_path / "history.csv"))] == ["1"]
    fresh = _small_model()
    callback.restore(fresh)
    assert all(np.isfinite(w).all() for w in fresh.get_weights())


def test_train_stops_on_nan_with_a_clear_message(tmp_path, monkeypatch):
    """Through `train`: the message names the epoch and where the good model is."""
    import keras_vit.data
    from keras_vit.training import train

    real = keras_vit.data.load_dataset

    def poisoned(name, split="train", **kwargs):
        dataset, info = real(name, split, **kwargs)
        if split != "train":
            return dataset, info
        passes = []

        def generator():  # the second pass over the data (epoch 2) is all NaN
            passes.append(1)
            for images, labels in dataset:
                yield images.numpy() * (np.nan if len(passes) >= 2 else 1.0), labels.numpy()

        signature = (tf.TensorSpec((None, None, None, 1), tf.float32),
                     tf.TensorSpec((None,), tf.int32))
        return tf.data.Dataset.from_generator(generator, output_signature=signature), info

    monkeypatch.setattr(keras_vit.data, "load_dataset", poisoned)
    with pytest.raises(TrainingDiverged, match=r"NaN or infinite at epoch 2.*last good model "
                       r"\(epoch 1\)"):
        train("digits", model=TINY, output_dir=str(tmp_path), epochs=3, batch_size=256,
              jit_compile=False, tensorboard=False, verbose=0)
    assert os.path.exists(tmp_path / "model.keras")
    saved = keras.models.load_model(tmp_path / "model.keras")
    assert all(np.isfinite(w).all() for w in saved.get_weights())
    assert [r["epoch"] for r in read_history(str(tmp_path / "history.csv"))] == ["1"]


def test_train_on_digits_writes_the_run_folder(tmp_path):
    from keras_vit.training import train

    metrics = train("digits", model=TINY, output_dir=str(tmp_path), epochs=4,
                    batch_size=64, learning_rate=5e-3, warmup_epochs=0, jit_compile=False,
                    verbose=0)
    for name in ("model.keras", "metrics.json", "history.csv", "logs"):
        assert os.path.exists(tmp_path / name), name
    with open(tmp_path / "metrics.json") as f:
        saved = json.load(f)
    assert saved["test_accuracy"] == metrics["test_accuracy"]
    assert saved["config"]["model_config"]["hidden_size"] == 16
    assert saved["config"]["learning_rate"] == 5e-3 and saved["config"]["epochs"] == 4
    # The reported figures are those of the saved model on the held-out split.
    from keras_vit.data import load_digits_arrays

    x_test, y_test = load_digits_arrays("test")
    model = keras.models.load_model(tmp_path / "model.keras")
    x_test = tf.image.resize(x_test, (16, 16), method="bilinear").numpy()  # the recipe's size
    logits = model.predict(x_test, verbose=0)
    assert metrics["test_accuracy"] == pytest.approx((logits.argmax(-1) == y_test).mean())
    top5 = np.argsort(-logits, -1)[:, :5]
    assert metrics["test_top5_accuracy"] == pytest.approx(
        (top5 == y_test[:, None]).any(-1).mean())
    # The zero head starts at loss ln(10) and chance accuracy: four epochs do better.
    assert metrics["test_loss"] < math.log(10) - 0.05 and metrics["test_accuracy"] > 0.13
    rows = read_history(str(tmp_path / "history.csv"))
    assert [r["epoch"] for r in rows] == ["1", "2", "3", "4"]
    assert float(rows[3]["loss"]) < float(rows[0]["loss"])
    # Run again: nothing left to do; the finished run's files are left as they are.
    before = {n: (tmp_path / n).read_bytes() for n in ("model.keras", "metrics.json")}
    again = train("digits", model=TINY, output_dir=str(tmp_path), epochs=4, batch_size=64,
                  learning_rate=5e-3, warmup_epochs=0, jit_compile=False, verbose=0)
    assert again == saved
    assert {n: (tmp_path / n).read_bytes() for n in before} == before


def test_train_rejects_bad_arguments(tmp_path):
    from keras_vit.training import train

    with pytest.raises(ValueError, match="`epochs`.*Received: epochs=0"):
        train(epochs=0, output_dir=str(tmp_path))
    with pytest.raises(ValueError, match="`learning_rate`"):
        train(learning_rate=-1.0, output_dir=str(tmp_path))
    with pytest.raises(ValueError, match="`model`.*unknown variant 'Q/16'"):
        train(model="Q/16", epochs=1, output_dir=str(tmp_path))
    with pytest.raises(ValueError, match="`jit_compile`"):
        train(jit_compile="sometimes", output_dir=str(tmp_path))


def test_finetune_resizes_and_replaces_the_head(tmp_path):
    """A digits model fine-tuned at 16 px: grid 2x2 -> 4x4, zero head, SGD recipe."""
    import keras_vit
    from keras_vit.training import finetune

    source = keras_vit.ViT(image_size=8, num_channels=1, num_classes=7, **TINY)
    source.save(tmp_path / "source.keras")
    metrics = finetune(str(tmp_path / "source.keras"), "digits", image_size=16, epochs=1,
                       batch_size=256, output_dir=str(tmp_path / "ft"), jit_compile=False,
                       mixed_precision=True, tensorboard=False, verbose=0)
    model = keras.models.load_model(tmp_path / "ft" / "model.keras")
    assert model.config.image_hw == (16, 16) and model.config.num_classes == 10
    # The batch given stands; the rate is the small-data plan's (digits: 1,437 images).
    assert metrics["config"]["batch_size"] == 256 and metrics["config"]["learning_rate"] == 0.03
    assert metrics["config"]["mixed_precision"] is True
    assert model.dtype_policy.name == "mixed_bfloat16"  # on a CPU; float16 on a GPU
    # The position embeddings started from the resampled ones of the source.
    resized = keras_vit.resize_position_embeddings(source, 16)
    before = resized.get_layer("patch_encoder").position_embedding_layer.embeddings
    after = model.get_layer("patch_encoder").position_embedding_layer.embeddings
    assert before.shape == after.shape == (1, 17, 16)
    with pytest.raises(ValueError, match="`epochs`, expected a positive integer"):
        finetune(str(tmp_path / "source.keras"), "digits", epochs=0,
                 output_dir=str(tmp_path / "bad"))
    assert not os.path.exists(tmp_path / "bad")


def test_load_for_finetuning_recasts_to_a_mixed_policy(tmp_path):
    """dtype="mixed_bfloat16": the same float32 weights, bf16 compute, close logits."""
    import keras_vit
    from keras_vit.training.train import load_for_finetuning

    source = keras_vit.ViT(image_size=8, num_channels=1, num_classes=10, **TINY)
    head = source.get_layer("head")
    head.kernel.assign(np.random.default_rng(0).normal(size=head.kernel.shape))
    source.save(tmp_path / "source.keras")
    mixed = load_for_finetuning(str(tmp_path / "source.keras"), 10, dtype="mixed_bfloat16")
    assert mixed.dtype_policy.name == "mixed_bfloat16"
    for a, b in zip(source.weights, mixed.weights, strict=True):
        assert a.path == b.path and b.dtype == "float32"
        np.testing.assert_array_equal(keras.ops.convert_to_numpy(a),
                                      keras.ops.convert_to_numpy(b))
    x = np.random.default_rng(1).uniform(0, 255, (4, 8, 8, 1)).astype("float32")
    want = keras.ops.convert_to_numpy(source(x))
    got = keras.ops.convert_to_numpy(mixed(x))
    assert got.dtype == np.float32  # the head computes in float32
    np.testing.assert_allclose(got, want, atol=0.05 * np.abs(want).max())
    assert np.abs(got - want).max() > 0  # bf16 compute really happened


DISTRIBUTED = textwrap.dedent("""
    import json, sys
    import tensorflow as tf
    cpu = tf.config.list_physical_devices("CPU")[0]
    tf.config.set_logical_device_configuration(
        cpu, [tf.config.LogicalDeviceConfiguration()] * 2)
    from keras_vit.training import train
    m = train("digits", model=dict(patch_size=4, hidden_size=16, num_layers=1, num_heads=2,
              mlp_dim=32), output_dir=sys.argv[1], epochs=1, batch_size=64,
              distribute=True, tensorboard=False, verbose=0)
    print(json.dumps({"replicas": m["config"]["replicas"], "acc": m["test_accuracy"]}))
""")


def test_distribute_over_two_virtual_cpus(tmp_path):
    out = subprocess.run([sys.executable, "-c", DISTRIBUTED, str(tmp_path)],
                         capture_output=True, text=True, timeout=300)
    assert out.returncode == 0, out.stderr[-2000:]
    result = json.loads(out.stdout.strip().splitlines()[-1])
    assert result["replicas"] == 2
    assert os.path.exists(tmp_path / "model.keras")


def test_distribute_on_jax_over_two_virtual_cpus(tmp_path):
    pytest.importorskip("jax")
    env = dict(os.environ, KERAS_BACKEND="jax", TF_CPP_MIN_LOG_LEVEL="3",
               XLA_FLAGS="--xla_force_host_platform_device_count=2")
    script = DISTRIBUTED.split("from keras_vit.training import train", 1)[1]
    script = "import json, sys\nfrom keras_vit.training import train" + script.replace(
        "distribute=True,", "distribute=True, jit_compile=False,")
    out = subprocess.run([sys.executable, "-c", script, str(tmp_path)], capture_output=True,
                         text=True, timeout=300, env=env)
    assert out.returncode == 0, out.stderr[-2000:]
    assert json.loads(out.stdout.strip().splitlines()[-1])["replicas"] == 2
    assert "DataParallel" not in out.stdout  # logs go to stderr, the result to stdout
    with open(tmp_path / "metrics.json") as f:
        assert json.load(f)["backend"] == "jax"


@pytest.mark.skipif(keras.backend.backend() != "tensorflow", reason="a TensorFlow limit")
@pytest.mark.parametrize("entry", ["train", "finetune"])
def test_accumulation_under_mirrored_strategy_is_refused(entry, tmp_path):
    from keras_vit import training

    with pytest.raises(ValueError, match="gradient_accumulation_steps=2, distribute=True"):
        getattr(training, entry)(
            *(() if entry == "train" else (str(tmp_path / "missing.keras"),)),
            output_dir=str(tmp_path), distribute=True, gradient_accumulation_steps=2)


def test_float16_training_scales_the_loss(tmp_path, monkeypatch):
    """mixed_float16 (what --mixed-precision means on a GPU) trains with a
    LossScaleOptimizer: Keras' compile wraps it for the model's float16 policy."""
    from keras_vit.training import runs, train

    monkeypatch.setattr(runs, "_policy", lambda on: "mixed_float16" if on else None)
    train("digits", model=dict(TINY), image_size=8, epochs=1, batch_size=256,
                       output_dir=str(tmp_path), mixed_precision=True, jit_compile=False,
                       tensorboard=False, verbose=0)
    model = keras.models.load_model(tmp_path / "model.keras")
    assert model.dtype_policy.name == "mixed_float16"
    assert isinstance(model.optimizer, keras.optimizers.LossScaleOptimizer)


def test_cpu_steps_per_execution_by_value():
    from keras_vit.training.runs import cpu_steps_per_execution

    # A divisor of the epoch's steps up to 16 when one is at least 8, else 16 (or all).
    expected = {60: 15, 24: 12, 100: 10, 7: 7, 17: 16, 13: 13, 34: 16, 48: 16, 1: 1}
    assert {s: cpu_steps_per_execution(s) for s in expected} == expected
    assert cpu_steps_per_execution(30, most=4) == 3


def test_train_on_the_finetune_recipe_trains_with_sgd_and_says_so(tmp_path, capsys):
    # The optimizer is the recipe's, not the command's: train = AdamW was the old rule.
    from keras_vit.errors import ArgumentError
    from keras_vit.training import train

    with pytest.raises(ArgumentError, match="recipe 'finetune' names no model.*--model"):
        train("digits", recipe="finetune", output_dir=str(tmp_path / "none"), verbose=0)
    train("digits", recipe="finetune", model=dict(TINY), image_size=8, epochs=1,
          batch_size=256, recipe_set=dict(momentum=0.7), output_dir=str(tmp_path / "run"),
          jit_compile=False, tensorboard=False, verbose=2)
    line = next(l for l in capsys.readouterr().err.splitlines() if l.startswith("Recipe"))
    assert line.startswith("Recipe (preset 'finetune'): model=")
    for shown in ("epochs=1 (given)", "learning_rate=0.01,", "optimizer='sgd',",
                  "momentum=0.7 (given)", "global_clipnorm=1.0,", "jit_compile=False (given)"):
        assert shown in line, line
    optimizer = keras.models.load_model(tmp_path / "run" / "model.keras").optimizer
    assert isinstance(optimizer, keras.optimizers.SGD)
    assert (optimizer.momentum, optimizer.global_clipnorm) == pytest.approx((0.7, 1.0))
    config = json.loads((tmp_path / "run" / "metrics.json").read_text())["config"]
    assert (config["optimizer"], config["momentum"]) == ("sgd", 0.7)


def _forget_optimizer_fields(folder, fields=("optimizer", "momentum", "global_clipnorm")):
    """Makes `folder` what a run before the recipe held its optimizer recorded (and
    before a model recorded its training images' background)."""
    for path, key in ((folder / "metrics.json", "config"),
                      (folder / "checkpoint" / "state.json", "config")):
        record = json.loads(path.read_text())
        record[key] = {k: v for k, v in record[key].items() if k not in fields}
        record[key]["model_config"].pop("background", None)
        path.write_text(json.dumps(record))


def test_a_run_folder_from_before_the_optimizer_fields_resumes_or_is_refused(tmp_path,
                                                                             capsys):
    from keras_vit.errors import RunFolderError
    from keras_vit.training import train

    folder = tmp_path / "run"
    run = dict(model=dict(TINY), image_size=8, batch_size=512, output_dir=str(folder),
               jit_compile=False, tensorboard=False, verbose=2)
    train("digits", epochs=1, **run)
    _forget_optimizer_fields(folder)
    recorded = read_state(str(folder / "checkpoint"))["config"]
    assert "optimizer" not in recorded and "background" not in recorded["model_config"]
    capsys.readouterr()
    metrics = train("digits", epochs=2, **run)  # AdamW, 0.9, clip 1: what it implied
    assert "Extending the run" in capsys.readouterr().err
    assert metrics["resumed_from_epoch"] == 1 and metrics["config"]["optimizer"] == "adamw"
    assert metrics["config"]["model_config"]["background"] == "dark"  # digits: light on black
    _forget_optimizer_fields(folder)
    for change, shown in ((dict(optimizer="sgd"), "optimizer 'adamw' -> 'sgd'"),
                          (dict(momentum=0.8), "momentum 0.9 -> 0.8"),
                          (dict(global_clipnorm=None), "global_clipnorm 1.0 -> None")):
        with pytest.raises(RunFolderError, match="--overwrite") as error:
            train("digits", epochs=2, recipe_set=change, **run)
        assert shown in str(error.value), str(error.value)


def test_a_finetune_folder_from_before_compares_as_sgd_without_weight_decay(tmp_path):
    # Fine-tuning recorded no optimizer and no weight_decay: SGD 0.9, clip 1, none.
    from keras_vit.errors import RunFolderError
    from keras_vit.training.recipes import FINETUNE_RECIPE, IMPLIED_BEFORE_RECIPE
    from keras_vit.training.runs import prepare_run_folder

    new = dict(FINETUNE_RECIPE, seed=0, model_config=dict(num_layers=1))
    old = {k: v for k, v in new.items()
           if k not in ("optimizer", "momentum", "global_clipnorm", "weight_decay")}
    (tmp_path / "checkpoint").mkdir()
    (tmp_path / "checkpoint" / "state.json").write_text(json.dumps(
        dict(epoch=1, weights="epoch-1.weights.h5", config=old)))
    implied = IMPLIED_BEFORE_RECIPE["finetune"]
    prepare_run_folder(str(tmp_path), new, False, False, implied)  # the same run
    for change, shown in ((dict(optimizer="adamw"), "optimizer 'sgd' -> 'adamw'"),
                          (dict(weight_decay=0.05), "weight_decay 0.0 -> 0.05")):
        with pytest.raises(RunFolderError, match=shown):
            prepare_run_folder(str(tmp_path), dict(new, **change), False, False, implied)
    with pytest.raises(RunFolderError, match="optimizer None -> 'sgd'"):  # nothing implied
        prepare_run_folder(str(tmp_path), new, False, False)
