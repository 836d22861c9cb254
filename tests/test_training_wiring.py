"""The wiring around training, checked by value on what a run writes.

`train` and `finetune` are run as a user runs them (tiny models, the embedded
digits), then their output folder is read back: history.csv's learning rate
against the schedule written out here (linear warmup, cosine decay, as paper
App. B), the compiled loss of the saved model against a NumPy label-smoothed
cross-entropy, and a fine-tune at a learning rate too small to move a float32
weight against the converted and resized checkpoint it started from.
"""

import csv
import json
import math
import os

import keras
import numpy as np
import pytest

import keras_vit
from keras_vit.data import load_digits_arrays
from keras_vit.training import finetune, train
from keras_vit.training.recipes import DIGITS_RECIPE

NPZ = os.path.join(os.path.dirname(__file__), "fixtures", "original_tiny.npz")
TINY = dict(hidden_size=16, num_layers=1, num_heads=2, mlp_dim=32)
PEAK, EPOCHS, WARMUP, BATCH = 3e-3, 4, 2, 256


def read_csv(path):
    with open(path, newline="") as f:
        return list(csv.DictReader(f))


def smoothed_cross_entropy(labels, logits, smoothing):
    """Mean cross-entropy against one-hot labels smoothed as Szegedy et al."""
    k = logits.shape[1]
    target = np.eye(k)[labels] * (1 - smoothing) + smoothing / k
    shifted = logits - logits.max(1, keepdims=True)
    log_probs = shifted - np.log(np.exp(shifted).sum(1, keepdims=True))
    return float(-(target * log_probs).sum(1).mean())


def assert_loss_has_smoothing(model, smoothing):
    """The compiled loss of a loaded model, by value, at `smoothing` (and not at 0)."""
    rng = np.random.default_rng(0)
    k = model.outputs[0].shape[-1]
    logits = rng.normal(size=(8, k)) * 3
    labels = rng.integers(0, k, size=8)
    got = float(keras.ops.convert_to_numpy(model.loss(
        np.eye(k, dtype="float32")[labels], logits.astype("float32"))))
    assert got == pytest.approx(smoothed_cross_entropy(labels, logits, smoothing), rel=1e-5)
    assert abs(got - smoothed_cross_entropy(labels, logits, 0.0)) > 1e-2


@pytest.fixture(scope="module")
def digits_run(tmp_path_factory):
    out = tmp_path_factory.mktemp("train")
    keras.config.set_dtype_policy("float32")
    metrics = train("digits", output_dir=str(out), epochs=EPOCHS, batch_size=BATCH,
                    learning_rate=PEAK, warmup_epochs=WARMUP, model_fields=TINY,
                    jit_compile=False, tensorboard=False, verbose=0)
    return out, metrics


def test_history_learning_rate_follows_the_schedule(digits_run):
    out, _ = digits_run
    with open(out / "metrics.json") as f:
        config = json.load(f)["config"]
    steps = math.ceil(len(load_digits_arrays("train")[1]) / BATCH)
    assert config["steps_per_epoch"] == steps
    total, warmup = EPOCHS * steps, WARMUP * steps
    rows = read_csv(out / "history.csv")
    assert [int(r["epoch"]) for r in rows] == list(range(1, EPOCHS + 1))
    for row in rows:
        # After epoch e the optimizer has taken e * steps steps; the rate it
        # would use next is the schedule's value there.
        step = int(row["epoch"]) * steps
        if step < warmup:
            expected = PEAK * (step + 1) / warmup
        else:
            expected = PEAK * 0.5 * (1 + math.cos(math.pi * (step - warmup) / (total - warmup)))
        assert float(row["learning_rate"]) == pytest.approx(expected, rel=1e-5, abs=1e-9), row
    # Warmup, then decay: not a constant.
    rates = [float(r["learning_rate"]) for r in rows]
    assert rates[0] < rates[1] and rates[1] > rates[2] > rates[3]


def test_saved_model_compiled_with_the_recipes_label_smoothing(digits_run):
    out, _ = digits_run
    model = keras.models.load_model(out / "model.keras")
    assert_loss_has_smoothing(model, DIGITS_RECIPE["label_smoothing"])


def test_finetune_at_a_negligible_rate_keeps_the_converted_and_resized_weights(tmp_path):
    """1e-30 moves no float32 weight of this size: the run must end where it began,
    at the checkpoint's weights, with its position embeddings resampled to 48x48
    as the original code does (linear) and a zero head for the ten digits."""
    out = tmp_path / "ft"
    finetune(NPZ, data="digits", output_dir=str(out), image_size=48, epochs=1,
             learning_rate=1e-30, label_smoothing=0.3, jit_compile=False,
             tensorboard=False, verbose=0)
    tuned = keras.models.load_model(out / "model.keras")
    assert tuned.config.image_hw == (48, 48) and tuned.config.num_classes == 10
    source = {v.path: keras.ops.convert_to_numpy(v) for v in keras_vit.convert_checkpoint(NPZ).weights}
    pe = "patch_encoder/position_embedding/embeddings"
    checked = 0
    for v in tuned.weights:
        value = keras.ops.convert_to_numpy(v)
        if v.path.startswith("head/"):
            np.testing.assert_allclose(value, 0.0, atol=1e-20, err_msg=v.path)
            continue
        assert v.path in source, f"{v.path} is not in the checkpoint"
        expected = source[v.path]
        if v.path == pe:
            expected = keras_vit.resample_position_embeddings(expected, (6, 6), 1, "linear")
        np.testing.assert_allclose(value, expected, rtol=0, atol=1e-6, err_msg=v.path)
        checked += 1
    assert checked >= len(source) - 4  # all but the head and pre-logits
    assert_loss_has_smoothing(tuned, 0.3)
