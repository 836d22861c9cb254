"""keras_vit.evaluation against numerical references (numpy, scikit-learn, Keras)."""

import keras
import numpy as np
import pytest
from PIL import Image
from sklearn.linear_model import Ridge, RidgeClassifier
from sklearn.metrics import top_k_accuracy_score
from sklearn.preprocessing import StandardScaler

import keras_vit
from keras_vit.evaluation import (
    LeastSquaresProbe,
    evaluate,
    extract_features,
    feature_model,
    fewshot_accuracy,
    load_images,
    load_model,
    predict_images,
    select_shots,
    top_k_accuracy,
)
from keras_vit.evaluation.fewshot import BIAS_CONSTANT


def tiny_vit(num_classes=7, num_channels=1, image_size=16, **fields):
    """A tiny ViT with a random (not zero) head, so its logits are informative."""
    model = keras_vit.ViT(
        image_size=image_size, patch_size=4, num_channels=num_channels, hidden_size=32,
        num_layers=2, num_heads=2, mlp_dim=64, num_classes=num_classes, **fields,
    )
    if fields.get("include_top", True):
        head = model.get_layer("head")
        rng = np.random.default_rng(1)
        head.set_weights([rng.normal(size=w.shape).astype("float32") for w in head.get_weights()])
    return model


def whitened_design(x):
    """big_vision's design matrix, written out: whiten, append the bias column."""
    x = (x - x.mean(0)) / (x.std(0) + 1e-5)
    return np.pad(x, ((0, 0), (0, 1)), constant_values=BIAS_CONSTANT)


# -- the closed-form solver ---------------------------------------------------


@pytest.mark.parametrize("n, d", [(300, 24), (30, 80)])  # N >= D and D > N branches
def test_probe_weights_match_lstsq_and_sklearn_ridge(n, d, rng):
    k, l2 = 6, 7.5
    x = rng.normal(size=(n, d)) * rng.uniform(0.2, 5.0, size=d) + rng.normal(size=d) * 3
    x = x.astype("float32").astype("float64")  # features arrive as float32
    y = rng.integers(0, k, size=n)
    probe = LeastSquaresProbe(k, l2_reg=l2).fit(x.astype("float32"), y)

    design = whitened_design(x)
    targets = 2.0 * np.eye(k)[y] - 1.0
    # Ridge as an ordinary least-squares problem on the augmented system.
    augmented_x = np.vstack([design, np.sqrt(l2) * np.eye(d + 1)])
    augmented_y = np.vstack([targets, np.zeros((d + 1, k))])
    reference = np.linalg.lstsq(augmented_x, augmented_y, rcond=None)[0]
    np.testing.assert_allclose(probe.weights, reference, rtol=1e-7, atol=1e-10)
    ridge = Ridge(alpha=l2, fit_intercept=False, solver="svd").fit(design, targets)
    np.testing.assert_allclose(probe.weights, ridge.coef_.T, rtol=1e-7, atol=1e-10)

    test_x = rng.normal(size=(50, d)) * 2
    expected = whitened_design_apply(x, test_x) @ reference
    np.testing.assert_allclose(probe.decision_function(test_x), expected, rtol=1e-6, atol=1e-9)
    np.testing.assert_array_equal(probe.predict(test_x), expected.argmax(1))


def whitened_design_apply(train_x, x):
    mean, std = train_x.mean(0), train_x.std(0) + 1e-5
    return np.pad((x - mean) / std, ((0, 0), (0, 1)), constant_values=BIAS_CONSTANT)


def test_probe_resolve_for_new_l2_equals_fresh_fit(rng):
    x, y = rng.normal(size=(40, 10)), rng.integers(0, 3, size=40)
    cached = LeastSquaresProbe(3, l2_reg=1024.0).fit(x, y).solve(0.5)
    fresh = LeastSquaresProbe(3, l2_reg=0.5).fit(x, y)
    np.testing.assert_allclose(cached.weights, fresh.weights, rtol=1e-9, atol=1e-12)
    # The penalty matters: a different l2 gives different weights.
    assert not np.allclose(cached.weights, LeastSquaresProbe(3, 1024.0).fit(x, y).weights)


def test_select_shots_counts_nesting_and_seed(rng):
    labels = rng.integers(0, 4, size=200)
    one, five = select_shots(labels, 1, 4, seed=3), select_shots(labels, 5, 4, seed=3)
    assert np.bincount(labels[five], minlength=4).tolist() == [5, 5, 5, 5]
    assert set(one) <= set(five)  # 5 shots contain the 1 shot, as in big_vision
    np.testing.assert_array_equal(five, select_shots(labels, 5, 4, seed=3))
    assert not np.array_equal(five, select_shots(labels, 5, 4, seed=4))
    # big_vision's rule: class k's shots lead a default_rng(seed) permutation.
    gen = np.random.default_rng(3)
    perms = [gen.permutation(np.flatnonzero(labels == k)) for k in range(4)]
    np.testing.assert_array_equal(five, np.concatenate([p[:5] for p in perms]))


def separable_features(seed, k=5, d=32, separation=4.0, n_train=100, n_test=400):
    """Gaussian classes (unit noise) whose means lie `separation` from the origin."""
    rng = np.random.default_rng(seed)
    means = rng.normal(size=(k, d))
    means *= separation / np.linalg.norm(means, axis=1, keepdims=True)

    def sample(n):
        y = np.repeat(np.arange(k), n)
        return (means[y] + rng.normal(size=(len(y), d))).astype("float32"), y

    (xt, yt), (xe, ye) = sample(n_train), sample(n_test)
    bayes = np.mean(np.argmin(((xe[:, None] - means[None]) ** 2).sum(-1), 1) == ye)
    return xt, yt, xe, ye, bayes


def test_fewshot_on_separable_features_reaches_known_accuracy():
    xt, yt, xe, ye, bayes = separable_features(seed=0)
    assert bayes == pytest.approx(0.989, abs=1e-9)  # the optimal classifier on this test set
    result = fewshot_accuracy(xt, yt, xe, ye, num_classes=5, num_seeds=1)  # seed 0 alone
    assert list(result) == [1, 5, 10, 25]
    # Measured: 1-shot 0.529, 5-shot 0.9435, 10-shot 0.9675, 25-shot 0.9835.
    assert result[25] >= bayes - 0.01
    assert result[10] >= 0.96 and result[5] >= 0.94
    assert result[1] < result[5] < result[10] < result[25]
    # An independent pipeline on the same shots: StandardScaler + RidgeClassifier
    # (sklearn's {-1, 1} ridge with an unpenalised intercept) predicts the same.
    for shots, accuracy in result.items():
        idx = select_shots(yt, shots, 5, seed=0)
        scaler = StandardScaler().fit(xt[idx])
        clf = RidgeClassifier(alpha=2.0**10).fit(scaler.transform(xt[idx]), yt[idx])
        assert accuracy == pytest.approx(clf.score(scaler.transform(xe), ye), abs=0.003)


def test_fewshot_on_digit_pixels_matches_sklearn_and_measured_figures():
    from keras_vit.data import load_digits_arrays

    (xt, yt), (xe, ye) = load_digits_arrays("train"), load_digits_arrays("test")
    xt, xe = xt.reshape(len(xt), -1), xe.reshape(len(xe), -1)  # raw 64 pixels as features
    result = fewshot_accuracy(xt, yt, xe, ye, num_classes=10, num_seeds=1)
    # Measured on the fixed 360 held-out digits, seed 0, l2 2**10.
    assert result == pytest.approx({1: 0.475, 5: 0.775, 10: 0.8361, 25: 0.8806}, abs=1e-3)
    for shots, accuracy in result.items():
        idx = select_shots(yt, shots, 10, seed=0)
        scaler = StandardScaler().fit(xt[idx])
        # Constant pixels (std 0) are zero after either whitening.
        clf = RidgeClassifier(alpha=2.0**10).fit(scaler.transform(xt[idx]), yt[idx])
        assert accuracy == pytest.approx(clf.score(scaler.transform(xe), ye), abs=0.006)


def test_fewshot_on_features_independent_of_labels_is_at_chance():
    rng = np.random.default_rng(1)
    xt, yt = rng.normal(size=(500, 32)), np.arange(500) % 5
    xe, ye = rng.normal(size=(4000, 32)), rng.integers(0, 5, size=4000)
    result = fewshot_accuracy(xt, yt, xe, ye, num_classes=5, shots=(1, 25))
    assert abs(result[1] - 0.2) < 0.025 and abs(result[25] - 0.2) < 0.025


def test_fewshot_num_seeds_averages_seeds():
    xt, yt, xe, ye, _ = separable_features(seed=2)
    per_seed = [fewshot_accuracy(xt, yt, xe, ye, 5, shots=(1,), seed=s, num_seeds=1)[1]
                for s in (4, 5, 6)]
    averaged, each = fewshot_accuracy(xt, yt, xe, ye, 5, shots=(1,), seed=4, per_seed=True)
    assert averaged[1] == pytest.approx(np.mean(per_seed))  # three seeds by default
    assert each[1] == per_seed
    assert len(set(per_seed)) > 1


@pytest.mark.parametrize(
    "kwargs, match",
    [
        ({"l2_reg": 0.0}, "l2_reg"),
        ({"shots": (0,)}, "shots"),
        ({"num_seeds": 0}, "num_seeds"),
    ],
)
def test_fewshot_bad_arguments_name_the_argument(kwargs, match):
    xt, yt, xe, ye, _ = separable_features(seed=0, n_train=5, n_test=5)
    with pytest.raises(ValueError, match=match):
        fewshot_accuracy(xt, yt, xe, ye, 5, **kwargs)


def test_probe_rejects_labels_out_of_range_and_bad_shapes():
    with pytest.raises(ValueError, match=r"labels.*\[0, 3\)"):
        LeastSquaresProbe(3).fit(np.zeros((4, 2)), [0, 1, 2, 3])
    probe = LeastSquaresProbe(3).fit(np.eye(3), [0, 1, 2])
    with pytest.raises(ValueError, match="features"):
        probe.predict(np.zeros((2, 5)))
    with pytest.raises(ValueError, match="not fitted"):
        LeastSquaresProbe(3).predict(np.zeros((1, 3)))


# -- top-k accuracy and evaluate ---------------------------------------------


def test_top_k_accuracy_matches_sklearn_and_keras(rng):
    logits = rng.normal(size=(500, 12)).astype("float32")
    labels = rng.integers(0, 12, size=500)
    for k in (1, 3, 5):
        ours = top_k_accuracy(logits, labels, k)
        assert ours == pytest.approx(top_k_accuracy_score(labels, logits, k=k, labels=range(12)))
        metric = keras.metrics.SparseTopKCategoricalAccuracy(k=k)
        metric.update_state(labels, logits)
        assert ours == pytest.approx(float(metric.result()), abs=1e-6)
    assert top_k_accuracy(logits, np.eye(12)[labels], 1) == top_k_accuracy(logits, labels, 1)
    with pytest.raises(ValueError, match="`k`.*12"):
        top_k_accuracy(logits, labels, 13)


def test_top_k_accuracy_breaks_ties_by_the_lower_class(rng):
    # Many ties among 64 classes: an unstable sort ranks tied classes arbitrarily.
    logits = rng.integers(0, 3, size=(200, 64)).astype("float32")
    labels = rng.integers(0, 64, size=200)
    for k in (1, 5):
        # Expected by hand: rank by (-score, class index), one row at a time.
        hits = [label in sorted(range(64), key=lambda c: (-row[c], c))[:k]
                for row, label in zip(logits, labels)]
        assert top_k_accuracy(logits, labels, k) == pytest.approx(np.mean(hits))


def test_features_are_the_input_of_the_head(rng):
    model = tiny_vit()
    images = rng.uniform(0, 255, size=(6, 16, 16, 1)).astype("float32")
    features = np.asarray(feature_model(model).predict_on_batch(images))
    kernel, bias = model.get_layer("head").get_weights()
    np.testing.assert_allclose(
        features @ kernel + bias, model.predict_on_batch(images), rtol=1e-5, atol=1e-4
    )
    headless = tiny_vit(include_top=False)
    assert feature_model(headless) is headless


def test_evaluate_top1_top5_and_fewshot_on_a_tiny_vit(rng):
    import tensorflow as tf

    model = tiny_vit(num_classes=7)
    x = rng.uniform(0, 255, size=(90, 16, 16, 1)).astype("float32")
    y = rng.integers(0, 7, size=90)
    x_train, y_train = rng.uniform(0, 255, size=(70, 16, 16, 1)).astype("float32"), np.arange(70) % 7
    result = evaluate(model, (x, y), fewshot_data=(x_train, y_train), batch_size=32, shots=(1, 5))

    logits = model.predict(x, verbose=0)
    assert result["num_examples"] == 90
    assert result["top1"] == pytest.approx(np.mean(logits.argmax(1) == y))
    assert result["top5"] == pytest.approx(top_k_accuracy_score(y, logits, k=5, labels=range(7)))
    assert 0.0 < result["top1"] < result["top5"] < 1.0
    f_train, l_train = extract_features(model, (x_train, y_train))
    f_test, _ = extract_features(model, (x, y))
    expected = fewshot_accuracy(f_train, l_train, f_test, y, 7, shots=(1, 5))
    assert result["fewshot"] == {"1": expected[1], "5": expected[5]}
    assert result["fewshot_l2_reg"] == 1024.0

    # A tf.data pipeline with one-hot labels gives the same figures.
    dataset = tf.data.Dataset.from_tensor_slices((x, np.eye(7, dtype="float32")[y])).batch(25)
    from_tf = evaluate(model, dataset)
    assert from_tf["top1"] == result["top1"] and from_tf["top5"] == result["top5"]
    assert "fewshot" not in from_tf


def test_evaluate_leaves_out_top5_where_k_at_most_5_and_headless_gets_fewshot_only(rng):
    x = rng.uniform(0, 255, size=(20, 16, 16, 1)).astype("float32")
    y = np.arange(20) % 5
    result = evaluate(tiny_vit(num_classes=5), (x, y))
    assert "top1" in result and "top5" not in result
    headless = evaluate(tiny_vit(include_top=False), (x, y), fewshot_data=(x, y), shots=(2,))
    assert "top1" not in headless and set(headless["fewshot"]) == {"2"}


def test_evaluate_rejects_empty_and_malformed_data():
    model = tiny_vit()
    with pytest.raises(ValueError, match="no examples"):
        evaluate(model, [])
    with pytest.raises(ValueError, match="`data`.*batches"):
        evaluate(model, [np.zeros((2, 16, 16, 1))])
    with pytest.raises(ValueError, match="3 images, 2 labels"):
        evaluate(model, (np.zeros((3, 16, 16, 1)), np.zeros(2, "int64")))


# -- loading models and images, predicting -------------------------------------


def test_predict_images_matches_the_model_on_pil_resized_images(tmp_path, rng):
    model = tiny_vit(num_classes=7, num_channels=1)
    path = tmp_path / "m.keras"
    model.save(path)
    rgb = rng.integers(0, 256, size=(40, 24, 3), dtype=np.uint8)
    Image.fromarray(rgb).save(tmp_path / "a.png")
    Image.fromarray(rgb[::-1]).save(tmp_path / "b.jpg", quality=95)

    results = predict_images(str(path), [tmp_path / "a.png", tmp_path / "b.jpg"], top=3)

    # Reference: PIL's ITU-R 601 grayscale, bilinear resize to the 16 x 16 input.
    expected_images = np.stack([
        np.asarray(Image.open(tmp_path / n).convert("L").resize((16, 16), Image.BILINEAR),
                   dtype="float32")[..., None]
        for n in ("a.png", "b.jpg")
    ])
    logits = model.predict(expected_images, verbose=0).astype("float64")
    probabilities = np.exp(logits - logits.max(1, keepdims=True))
    probabilities /= probabilities.sum(1, keepdims=True)
    for result, p in zip(results, probabilities):
        order = np.argsort(-p)[:3]
        assert [r["class"] for r in result["predictions"]] == order.tolist()
        np.testing.assert_allclose(
            [r["probability"] for r in result["predictions"]], p[order], rtol=1e-5
        )
    # Inversion is 255 - x on the resized pixels.
    inverted = predict_images(model, [tmp_path / "a.png"], top=7, invert=True)[0]
    logits = model.predict(255.0 - expected_images[:1], verbose=0)[0]
    assert inverted["predictions"][0]["class"] == int(np.argmax(logits))


def test_load_images_rgb_model_and_names(tmp_path, rng):
    gray = rng.integers(0, 256, size=(16, 16), dtype=np.uint8)
    Image.fromarray(gray).save(tmp_path / "g.png")
    images = load_images([tmp_path / "g.png"], (16, 16), 3)
    assert images.shape == (1, 16, 16, 3)
    for c in range(3):
        np.testing.assert_array_equal(images[0, :, :, c], gray.astype("float32"))
    model = tiny_vit(num_classes=3, num_channels=3)
    names = ["cat", "dog", "emu"]
    out = predict_images(model, [tmp_path / "g.png"], top=5, class_names=names)[0]
    assert len(out["predictions"]) == 3  # top is capped at K
    assert sorted(p["name"] for p in out["predictions"]) == names
    assert sum(p["probability"] for p in out["predictions"]) == pytest.approx(1.0, abs=1e-6)


def test_bad_image_and_model_files_raise_one_line_errors(tmp_path):
    model = tiny_vit()
    (tmp_path / "notes.txt").write_text("not an image")
    with pytest.raises(ValueError, match="not an image: .*notes.txt") as info:
        predict_images(model, [tmp_path / "notes.txt"])
    assert "\n" not in str(info.value)
    with pytest.raises(FileNotFoundError, match="image file not found"):
        predict_images(model, [tmp_path / "missing.png"])

    model.save(tmp_path / "good.keras")
    data = (tmp_path / "good.keras").read_bytes()
    (tmp_path / "truncated.keras").write_bytes(data[: len(data) // 2])
    (tmp_path / "garbage.keras").write_bytes(np.random.default_rng(0).bytes(300))
    for name in ("truncated.keras", "garbage.keras", "notes.txt"):
        with pytest.raises(ValueError, match="not a Keras model file") as info:
            load_model(tmp_path / name)
        assert "\n" not in str(info.value)
    with pytest.raises(FileNotFoundError, match="model file not found"):
        load_model(tmp_path / "nothing.keras")
    assert isinstance(load_model(tmp_path / "good.keras"), keras_vit.VisionTransformer)


# -- ImageNet ReaL ----------------------------------------------------------------


def test_real_accuracy_by_value_on_a_hand_made_batch():
    from keras_vit.evaluation import real_accuracy

    logits = np.zeros((5, 6), dtype="float32")
    logits[np.arange(5), [3, 1, 2, 0, 5]] = 1.0  # top-1: 3, 1, 2, 0, 5
    sets = [[3, 4], [0], [], [0, 1, 2], [5]]  # in, out, empty (skipped), in, in
    result = real_accuracy(logits, sets)
    assert result == {"real_top1": 0.75, "num_counted": 4, "num_empty": 1}
    padded = np.array([[3, 4, -1], [0, -1, -1], [-1, -1, -1], [0, 1, 2], [5, -1, -1]])
    assert real_accuracy(logits.argmax(1), padded) == result
    assert real_accuracy([1], [[]])["real_top1"] is None
    with pytest.raises(ValueError, match="real_labels"):
        real_accuracy(logits, sets[:4])


def test_evaluate_real_on_mock_imagenet2012_real():
    tfds = pytest.importorskip("tensorflow_datasets")
    from keras_vit.data import REAL_DATASET, load_dataset
    from keras_vit.evaluation import evaluate_real

    model = tiny_vit(num_classes=1000, num_channels=3, image_size=8)
    # A second model that always answers class 0: a label set padded with class 0
    # instead of -1 would count it a hit (and an empty set as counted).
    zero = tiny_vit(num_classes=1000, num_channels=3, image_size=8)
    kernel, bias = zero.get_layer("head").get_weights()
    bias[:] = 0.0
    bias[0] = 1e4
    zero.get_layer("head").set_weights([np.zeros_like(kernel), bias])
    with tfds.testing.mock_data(num_examples=12):
        data, info = load_dataset(REAL_DATASET, "test", image_size=8, batch_size=5)
        assert (info.split, info.num_classes) == ("validation", 1000)
        batches = list(data.as_numpy_iterator())
        result = evaluate_real(model, data)
        always_zero = evaluate_real(zero, data)
        # The label sets as stored, unpadded, read without keras_vit.data.
        raw = tfds.load(REAL_DATASET, split="validation", shuffle_files=False, download=False)
        sets = [set(int(c) for c in e["real_label"]) for e in raw.as_numpy_iterator()]
    images = np.concatenate([b[0] for b in batches])
    original = np.concatenate([b[1] for b in batches])
    logits = model.predict(images, verbose=0)
    assert result["num_examples"] == 12
    assert result["top1"] == pytest.approx(np.mean(logits.argmax(1) == original))
    assert len(sets) == 12 and len({len(s) for s in sets}) > 1  # padding happens
    counted = [s for s in sets if s]
    top1 = logits.argmax(1)
    expected = np.mean([int(p) in s for p, s in zip(top1, sets) if s]) if counted else None
    assert result["real_top1"] == pytest.approx(expected)
    assert (result["real_num_counted"], result["real_num_empty"]) == (
        len(counted), 12 - len(counted))
    assert always_zero["real_top1"] == pytest.approx(
        np.mean([0 in s for s in counted]) if counted else None)
    assert always_zero["real_num_counted"] == len(counted)


# -- few-shot of any head, big_vision preprocessing --------------------------------


def test_evaluate_dataset_fewshot_takes_any_head_from_features_before_it():
    from keras_vit.evaluation import evaluate_dataset

    model = tiny_vit(num_classes=3)  # digits have 10 classes
    result = evaluate_dataset(model, "digits", shots=(1, 5), num_seeds=2)
    assert "top1" not in result and "3 classes" in result["top_k_skipped"]
    assert set(result["fewshot"]) == {"1", "5"} and len(result["fewshot_per_seed"]["5"]) == 2
    assert result["fewshot"]["5"] == pytest.approx(np.mean(result["fewshot_per_seed"]["5"]))
    assert result["fewshot_seeds"] == [0, 1]
    # The same figures from the features before the head, computed here.
    from keras_vit.data import load_dataset

    train, _ = load_dataset("digits", "train", image_size=16, shuffle=False)
    test, _ = load_dataset("digits", "test", image_size=16, shuffle=False)
    f_train, l_train = extract_features(model, train)
    f_test, l_test = extract_features(model, test)
    _, each = fewshot_accuracy(f_train, l_train, f_test, l_test, 10, shots=(1, 5),
                               num_seeds=2, per_seed=True)
    assert result["fewshot_per_seed"]["5"] == pytest.approx(each[5], abs=1e-6)
    with pytest.raises(ValueError, match="3 classes but digits has 10"):
        evaluate_dataset(model, "digits", shots=())


def test_big_vision_preprocessing_resizes_then_crops_the_centre():
    from keras_vit.data import load_dataset
    from keras_vit.evaluation import evaluation_data

    model = tiny_vit(num_classes=10, image_size=(28, 28), include_preprocessing=False)
    test, _, _ = evaluation_data(model, "digits", with_fewshot=False, batch_size=400,
                                 preprocessing="big_vision")
    images, _ = next(test.as_numpy_iterator())
    big, _ = load_dataset("digits", "test", image_size=32, batch_size=400, shuffle=False)
    expected = next(big.as_numpy_iterator())[0][:, 2:30, 2:30, :] / 127.5 - 1.0  # 28*256/224
    np.testing.assert_allclose(images, expected, atol=1e-6)
    assert images.min() >= -1.0 and images.max() <= 1.0


def test_evaluate_dataset_scores_a_vtab_task_with_fewshot_from_its_training_set():
    # "vtab/<task>" is a data source like any: top-1 on its test split, the few-shot
    # pool from "train" (its train800val200), both read in file order.
    tfds = pytest.importorskip("tensorflow_datasets")
    from keras_vit.data import load_dataset, vtab_splits
    from keras_vit.evaluation import evaluate_dataset

    model = tiny_vit(num_classes=16, num_channels=3, image_size=8)
    with tfds.testing.mock_data(num_examples=10):
        results = evaluate_dataset(model, "vtab/dsprites_label_orientation", shots=(1,),
                                   num_seeds=1, batch_size=4)
        pool, info = load_dataset("vtab/dsprites_label_orientation", "train", image_size=8,
                                  shuffle=False)
        raw = tfds.load("dsprites", split=vtab_splits("dsprites_label_orientation")["test"],
                        shuffle_files=False, download=False)
        test, _ = load_dataset("vtab/dsprites_label_orientation", "test", image_size=8)
        images = np.concatenate([b[0] for b in test.as_numpy_iterator()])
        labels = np.concatenate([b[1] for b in test.as_numpy_iterator()])
        source = np.array([e["label_orientation"] for e in raw.as_numpy_iterator()])
    assert info.split == "train800val200" and sum(len(b[1]) for b in pool) == 10
    np.testing.assert_array_equal(labels, np.floor(source / 2.5))
    logits = model.predict(images, verbose=0)
    assert results["num_examples"] == 10
    assert results["top1"] == pytest.approx(np.mean(logits.argmax(1) == labels))
    assert set(results["fewshot"]) == {"1"}
