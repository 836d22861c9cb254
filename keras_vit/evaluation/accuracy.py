"""Top-k accuracy, frozen features, and `evaluate`: a model over a data set."""

import time

import keras
import numpy as np

from keras_vit.errors import ArgumentError
from keras_vit.evaluation.fewshot import L2_REG, NUM_SEEDS, SHOTS, fewshot_accuracy
from keras_vit.models import names as parts
from keras_vit.utils import check_positive_int


def top_k_accuracy(logits, labels, k=1):
    """Fraction of rows whose label is among the `k` largest logits.

    Args:
        logits: (N, K) scores (logits or probabilities).
        labels: (N,) int labels, or (N, K) one-hot rows.
        k: how many of the top scores count. Defaults to 1.

    Ties are broken by class index (the lower class ranks first), as a stable
    sort does; `sklearn.metrics.top_k_accuracy_score` agrees on untied rows.
    """
    logits = np.asarray(logits)
    labels = _int_labels(labels)
    k = check_positive_int("k", k)
    if logits.ndim != 2 or logits.shape[0] != labels.shape[0]:
        raise ArgumentError(
            "Received an invalid value for argument `logits`, expected shape "
            f"(N, K) with N = len(labels) = {labels.shape[0]}. Received: shape {logits.shape}"
        )
    if k > logits.shape[1]:
        raise ArgumentError(
            f"Received an invalid value for argument `k`, expected at most the "
            f"number of classes {logits.shape[1]}. Received: k={k}"
        )
    top = np.argsort(-logits, axis=1, kind="stable")[:, :k]  # (N, k)
    return float(np.mean(np.any(top == labels[:, None], axis=1)))


def cross_entropy(logits, labels):
    """Mean cross-entropy of (N, K) logits against (N,) int (or one-hot) labels, in
    float64 (a log-softmax shifted by each row's maximum)."""
    logits = np.asarray(logits, dtype=np.float64)
    labels = _int_labels(labels)
    shifted = logits - logits.max(-1, keepdims=True)
    log_probs = shifted - np.log(np.exp(shifted).sum(-1, keepdims=True))
    return float(-log_probs[np.arange(len(labels)), labels].mean())


def feature_model(model):
    """A model from `model`'s input to its frozen features, as the paper uses.

    The features are the representation before the head: the "pre_logits"
    output where the model has one, else the pooled output ("pooling"); a
    model built with `include_top=False` is its own feature model. For other
    Keras models, the input of the last layer.
    """
    names = {layer.name for layer in model.layers}
    if parts.HEAD not in names and parts.POOLING in names:
        return model  # include_top=False
    for name in (parts.PRE_LOGITS, parts.POOLING):
        if name in names:
            return keras.Model(model.input, model.get_layer(name).output)
    return keras.Model(model.input, model.layers[-1].input)


def extract_features(model, data, batch_size=64):
    """Frozen features and labels of a whole data set.

    Args:
        model: a classifier (its features are taken before the head, see
            `feature_model`) or a model built with `include_top=False`.
        data: see `evaluate`.
        batch_size: batch size when `data` is an (images, labels) pair.

    Returns:
        (features (N, D) float32, labels (N,) int64).
    """
    features, labels = [], []
    run = _BatchRunner(feature_model(model))
    for images, y in iterate_batches(data, batch_size):
        features.append(np.asarray(run(images), dtype=np.float32))
        labels.append(y)
    _check_not_empty(labels)
    return np.concatenate(features), np.concatenate(labels)


def evaluate(
    model,
    data,
    fewshot_data=None,
    top_k=(1, 5),
    shots=SHOTS,
    l2_reg=L2_REG,
    seed=0,
    num_seeds=NUM_SEEDS,
    batch_size=64,
    num_classes=None,
    loss=False,
):
    """Top-k accuracy of `model` on `data`, and few-shot linear accuracy.

    Args:
        model: a Keras classifier whose outputs are logits or probabilities
            (N, K); a model built with `include_top=False` gets few-shot
            accuracy only.
        data: the evaluation split: a `tf.data.Dataset` or any iterable of
            batches `(images, labels)` (or dicts with "image"/"label"), or an
            `(images, labels)` pair of arrays. Labels are ints or one-hot.
        fewshot_data: the split the few-shot examples are drawn from (the
            training split), in the same forms and in a fixed order (not
            reshuffled), so the seeded shot selection repeats; None skips
            few-shot. Defaults to None.
        top_k: the k of each top-k accuracy; a k above the number of classes
            is left out. Defaults to (1, 5).
        shots: few-shot shot counts per class. Defaults to (1, 5, 10, 25).
        l2_reg: few-shot ridge penalty. Defaults to 2**10 (big_vision).
        seed: seed of the shot selection. Defaults to 0.
        num_seeds: few-shot selections (seeds seed, seed+1, ...), each
            reported, and their mean. Defaults to 3 (big_vision).
        batch_size: batch size for array input. Defaults to 64.
        num_classes: the data's classes for few-shot. Defaults to the
            model's outputs (1 + the largest label for a model without head).
        loss: also the mean cross-entropy of the outputs read as logits
            ("loss"), as a training run reports it. Defaults to False.

    Returns:
        A dict: "num_examples", "top1", "top5", ... (those that apply), "loss",
        "fewshot" {"1": mean acc, "5": ...} when `fewshot_data` is given,
        "fewshot_per_seed" {"1": [acc of each seed], ...}, "fewshot_seeds",
        "fewshot_l2_reg", "seconds".

    Example:

    >>> keras_vit.evaluation.evaluate(model, (x_test, y_test),
    ...                               fewshot_data=(x_train, y_train))
    """
    start = time.perf_counter()
    extractor = feature_model(model)
    has_head = extractor is not model
    # One forward pass gives logits and features; one runner, one trace.
    outputs = [model.outputs[0], extractor.outputs[0]] if has_head else extractor.outputs[0]
    run = _BatchRunner(keras.Model(model.input, outputs) if has_head else extractor)

    def forward(data):
        logits, features, labels = [], [], []
        for images, y in iterate_batches(data, batch_size):
            out = run(images)
            if has_head:
                logits.append(np.asarray(out[0], dtype=np.float32))
                out = out[1]
            features.append(np.asarray(out, dtype=np.float32))
            labels.append(y)
        _check_not_empty(labels)
        logits = np.concatenate(logits) if has_head else None
        return logits, np.concatenate(features), np.concatenate(labels)

    logits, features, labels = forward(data)
    results = {"num_examples": int(labels.shape[0])}
    if has_head:
        num_classes = num_classes or logits.shape[1]
        for k in top_k:
            if check_positive_int("top_k", k) == 1 or logits.shape[1] > k:  # top-5 where K > 5
                results[f"top{k}"] = top_k_accuracy(logits, labels, k)
        if loss:
            results["loss"] = cross_entropy(logits, labels)
    if fewshot_data is not None:
        _, train_features, train_labels = forward(fewshot_data)
        if num_classes is None:
            num_classes = int(max(labels.max(), train_labels.max())) + 1
        accuracies, each = fewshot_accuracy(
            train_features,
            train_labels,
            features,
            labels,
            num_classes=num_classes,
            shots=shots,
            l2_reg=l2_reg,
            seed=seed,
            num_seeds=num_seeds,
            per_seed=True,
        )
        results["fewshot"] = {str(n): acc for n, acc in accuracies.items()}
        results["fewshot_per_seed"] = {str(n): accs for n, accs in each.items()}
        results["fewshot_seeds"] = list(range(int(seed), int(seed) + int(num_seeds)))
        results["fewshot_l2_reg"] = float(l2_reg)
    results["seconds"] = round(time.perf_counter() - start, 3)
    return results


def iterate_batches(data, batch_size=64):
    """Yields (images, int labels) numpy batches from the forms `evaluate` takes."""
    if isinstance(data, (tuple, list)) and len(data) == 2 and hasattr(data[0], "shape"):
        images, labels = np.asarray(data[0]), _int_labels(data[1])
        if images.shape[0] != labels.shape[0]:
            raise ArgumentError(
                "Received an invalid value for argument `data`, expected as many "
                f"images as labels. Received: {images.shape[0]} images, "
                f"{labels.shape[0]} labels"
            )
        for i in range(0, images.shape[0], batch_size):
            yield images[i : i + batch_size], labels[i : i + batch_size]
        return
    batches = data.as_numpy_iterator() if hasattr(data, "as_numpy_iterator") else data
    for batch in batches:
        if isinstance(batch, dict):
            images = batch.get("image", batch.get("images"))
            labels = batch.get("label", batch.get("labels"))
        elif isinstance(batch, (tuple, list)) and len(batch) in (2, 3):
            images, labels = batch[0], batch[1]
        else:
            images = labels = None
        if images is None or labels is None:
            raise ArgumentError(
                "Received an invalid value for argument `data`, expected batches "
                "of (images, labels) or dicts with 'image' and 'label'. "
                f"Received a batch of type {type(batch).__name__}"
            )
        yield np.asarray(images), _int_labels(labels)


class _BatchRunner:
    """`model.predict_on_batch`, with a short last batch padded to the first's size.

    A compiled predict function is traced (and, under XLA, compiled) once per
    batch shape; padding the remainder saves the second trace. A model made under
    a `tf.distribute` strategy of several replicas is called directly instead:
    Keras' `predict_on_batch` there runs the whole batch on every replica and
    returns every replica's copy.
    """

    def __init__(self, model):
        strategy = getattr(model, "distribute_strategy", None)  # TensorFlow's trainer only
        replicas = getattr(strategy, "num_replicas_in_sync", 1)
        self.predict = model.predict_on_batch if replicas == 1 else self._call
        self.model = model
        self.size = None

    def _call(self, images):
        outputs = self.model(images, training=False)
        if isinstance(outputs, (list, tuple)):
            return [keras.ops.convert_to_numpy(o) for o in outputs]
        return keras.ops.convert_to_numpy(outputs)

    def __call__(self, images):
        n = images.shape[0]
        self.size = self.size or n
        if n < self.size:
            pad = np.zeros((self.size - n,) + images.shape[1:], dtype=images.dtype)
            outputs = self.predict(np.concatenate([images, pad]))
            if isinstance(outputs, (list, tuple)):
                return [np.asarray(o)[:n] for o in outputs]
            return np.asarray(outputs)[:n]
        return self.predict(images)


def _int_labels(labels):
    labels = np.asarray(labels)
    if labels.ndim == 2 and labels.shape[1] > 1:  # one-hot or soft
        labels = labels.argmax(axis=1)
    return labels.reshape(-1).astype(np.int64)


def _check_not_empty(batches):
    if not batches:
        raise ArgumentError("Received an invalid value for argument `data`: it holds no examples.")
