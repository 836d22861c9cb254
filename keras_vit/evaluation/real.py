"""ImageNet ReaL accuracy (Beyer et al., "Are we done with ImageNet?", 2020).

The ReaL labels re-annotate the ImageNet validation images with a *set* of
plausible classes each. ReaL top-1 is the share of images whose top-1
prediction is in the image's set; images whose set is empty (no class judged
correct) are left out, as the paper's `real.json` evaluation does. The ViT
paper reports it beside the original top-1 (its Table 2, "ImageNet ReaL").
The data (`load_dataset("imagenet2012_real")`, `keras_vit.data.real`) are
batches of (images, original labels, label sets padded with -1).
"""

import numpy as np

from keras_vit.errors import ArgumentError
from keras_vit.evaluation.accuracy import _BatchRunner, top_k_accuracy


def real_accuracy(predictions, real_labels):
    """ReaL top-1 of predictions against label sets.

    Args:
        predictions: (N,) int top-1 classes, or (N, K) logits / scores.
        real_labels: N label sets: a sequence of int arrays, or an (N, M)
            int array padded with negative values.

    Returns:
        A dict: "real_top1" (None when every set is empty),
        "num_counted" (images with a non-empty set), "num_empty".

    Example:

    >>> real_accuracy([3, 1, 2], [[3, 5], [0], []])
    {'real_top1': 0.5, 'num_counted': 2, 'num_empty': 1}
    """
    predictions = np.asarray(predictions)
    if predictions.ndim == 2:
        predictions = np.argmax(predictions, axis=1)
    if predictions.ndim != 1:
        raise ArgumentError(
            "Received an invalid value for argument `predictions`, expected (N,) "
            f"classes or (N, K) scores. Received: shape {predictions.shape}"
        )
    if len(real_labels) != predictions.shape[0]:
        raise ArgumentError(
            "Received an invalid value for argument `real_labels`, expected one "
            f"label set per prediction ({predictions.shape[0]}). Received: "
            f"{len(real_labels)} sets"
        )
    hits, counted = 0, 0
    for prediction, labels in zip(predictions, real_labels):
        labels = np.asarray(labels).reshape(-1)
        labels = labels[labels >= 0]  # padding
        if labels.size == 0:
            continue
        counted += 1
        hits += int(prediction in labels)
    return {
        "real_top1": hits / counted if counted else None,
        "num_counted": counted,
        "num_empty": int(predictions.shape[0] - counted),
    }


def evaluate_real(model, data):
    """Original top-1 and ReaL top-1 of `model` on ReaL batches.

    Args:
        model: a Keras classifier with 1000 outputs.
        data: batches (images, original labels, label sets padded with -1),
            as `load_dataset("imagenet2012_real")` gives, or any iterable of such numpy triples.

    Returns:
        A dict: "top1" (original labels), "real_top1", "num_examples",
        "real_num_counted", "real_num_empty".
    """
    run = _BatchRunner(model)
    logits, labels, sets = [], [], []
    batches = data.as_numpy_iterator() if hasattr(data, "as_numpy_iterator") else data
    for images, original, real in batches:
        logits.append(np.asarray(run(np.asarray(images)), dtype=np.float32))
        labels.append(np.asarray(original).reshape(-1))
        sets.extend(np.asarray(real))
    if not logits:
        raise ArgumentError("Received an invalid value for argument `data`: it holds no examples.")
    logits, labels = np.concatenate(logits), np.concatenate(labels)
    real = real_accuracy(logits, sets)
    return {
        "num_examples": int(labels.shape[0]),
        "top1": top_k_accuracy(logits, labels, 1),
        "real_top1": real["real_top1"],
        "real_num_counted": real["num_counted"],
        "real_num_empty": real["num_empty"],
    }
