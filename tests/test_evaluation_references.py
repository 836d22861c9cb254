"""`evaluate`'s few-shot figure and the chance level against independent references.

The few-shot reference is scikit-learn's `Ridge` on features computed here
from the checkpoint file itself (NumPy: the converted model's pooled output,
then the file's pre-logits Dense + tanh), with the shots picked and the
features whitened as big_vision's `fewshot_lsr` documents. The chance-level
test uses imbalanced test labels, so a predictor that ignores its features
and names one class scores far from chance, where a working probe, whose
predictions spread over the classes, scores at it.
"""

import os

import keras
import numpy as np
import pytest
from sklearn.linear_model import Ridge

import keras_vit
from keras_vit.evaluation import LeastSquaresProbe, evaluate, extract_features, fewshot_accuracy

NPZ = os.path.join(os.path.dirname(__file__), "fixtures", "original_tiny.npz")


def reference_fewshot(train_x, train_y, test_x, test_y, shots, num_classes, l2=2.0**10, seed=0):
    """big_vision's few-shot linear accuracy, with scikit-learn's ridge solver."""
    rng = np.random.default_rng(seed)
    per_class = [rng.permutation(np.flatnonzero(train_y == k)) for k in range(num_classes)]
    idx = np.concatenate([p[:shots] for p in per_class])
    x, y = train_x[idx].astype("float64"), train_y[idx]
    mean, std = x.mean(0), x.std(0) + 1e-5

    def design(f):
        return np.pad((f - mean) / std, ((0, 0), (0, 1)), constant_values=100.0)

    targets = 2.0 * np.eye(num_classes)[y] - 1.0
    ridge = Ridge(alpha=l2, fit_intercept=False, solver="svd").fit(design(x), targets)
    return float(np.mean(ridge.predict(design(test_x.astype("float64"))).argmax(1) == test_y))


def test_evaluate_fewshot_equals_sklearn_on_pre_logits_features():
    model = keras_vit.convert_checkpoint(NPZ)  # has a pre-logits layer (16) before its head
    rng = np.random.default_rng(5)
    pool = rng.integers(0, 256, size=(150, 32, 32, 3)).astype("float32")
    test = rng.integers(0, 256, size=(200, 32, 32, 3)).astype("float32")
    # (B, 24) pooled tokens, read before the pre-logits layer the NumPy reference applies
    pooled = keras.Model(model.inputs, model.get_layer("pooling").output)
    with np.load(NPZ, allow_pickle=False) as f:
        kernel, bias = f["pre_logits/kernel"], f["pre_logits/bias"]

    def features(images):
        return np.tanh(keras.ops.convert_to_numpy(pooled(images)).astype("float64") @ kernel + bias)

    pool_f, test_f = features(pool), features(test)
    # Labels the pre-logits features can tell apart: a fixed linear read-out of them.
    readout = rng.normal(size=(16, 5))
    center = pool_f.mean(0)
    pool_y, test_y = ((pool_f - center) @ readout).argmax(1), ((test_f - center) @ readout).argmax(1)
    assert np.bincount(pool_y, minlength=5).min() >= 5
    extracted, _ = extract_features(model, (test, test_y))
    np.testing.assert_allclose(extracted, test_f, atol=1e-5)

    result = evaluate(model, (test, test_y), fewshot_data=(pool, pool_y), shots=(2, 5, 20))
    for shots in (2, 5, 20):
        # evaluate's default: the mean over the shot selections of seeds 0, 1, 2.
        expected = np.mean([reference_fewshot(pool_f, pool_y, test_f, test_y, shots, 5, seed=s)
                            for s in range(3)])
        # One test image in 200 may flip on a float32 near-tie.
        assert result["fewshot"][str(shots)] == pytest.approx(expected, abs=1.01 / 200), shots
    assert result["fewshot"]["20"] > 0.5  # well above chance (0.2) on these labels


def test_fewshot_at_chance_rejects_a_constant_predictor():
    """Features independent of the labels: accuracy at chance (0.2), and a
    probe that names one class for everything fails, since the test labels are
    imbalanced (60 % class 0, 10 % each other class: any constant prediction
    scores 0.6 or 0.1)."""
    rng = np.random.default_rng(1)
    xt, yt = rng.normal(size=(500, 32)), np.arange(500) % 5
    xe = rng.normal(size=(5000, 32))
    ye = rng.choice(5, size=5000, p=[0.6, 0.1, 0.1, 0.1, 0.1])
    result = fewshot_accuracy(xt, yt, xe, ye, num_classes=5, shots=(5, 25), num_seeds=3)
    assert abs(result[5] - 0.2) < 0.04 and abs(result[25] - 0.2) < 0.04, result
    predicted = LeastSquaresProbe(5).fit(xt[:125], yt[:125]).predict(xe)
    shares = np.bincount(predicted, minlength=5) / len(xe)
    assert shares.min() > 0.1 and shares.max() < 0.3, shares


def test_evaluate_loss_and_a_runs_test_metrics_equal_sklearn():
    # A run's test metrics are `evaluate`'s, renamed: cross-entropy against scikit-learn's
    # log_loss of the softmax, top-1/top-5 against top_k_accuracy_score; 7 classes, 23
    # images (a short last batch), logits far from uniform.
    from scipy.special import softmax
    from sklearn.metrics import log_loss, top_k_accuracy_score

    from keras_vit.training import test_metrics

    rng = np.random.default_rng(3)
    images = rng.normal(size=(23, 5)).astype("float32")
    labels = rng.integers(0, 7, size=23)
    inputs = keras.Input((5,))
    model = keras.Model(inputs, keras.layers.Dense(7, name="head")(inputs))
    model.get_layer("head").set_weights([rng.normal(scale=3.0, size=(5, 7)), rng.normal(size=7)])
    logits = model.predict(images, verbose=0).astype("float64")
    expected_loss = log_loss(labels, softmax(logits, axis=1), labels=range(7))
    scores = evaluate(model, (images, labels), batch_size=8, loss=True)
    assert scores["loss"] == pytest.approx(expected_loss, rel=1e-5)
    metrics = test_metrics(model, [(images[:16], labels[:16]), (images[16:], labels[16:])], 7)
    assert metrics == {
        "test_accuracy": pytest.approx(top_k_accuracy_score(labels, logits, k=1,
                                                            labels=range(7))),
        "test_loss": pytest.approx(expected_loss, rel=1e-5),
        "test_examples": 23,
        "test_top5_accuracy": pytest.approx(top_k_accuracy_score(labels, logits, k=5,
                                                                 labels=range(7))),
    }
    assert "test_top5_accuracy" not in test_metrics(model, (images, labels), 5)
