"""ImageNet ReaL accuracy (Beyer et al., "Are we done with ImageNet?", 2020).

The ReaL labels re-annotate the ImageNet validation images with a *set* of
plausible classes each. ReaL top-1 is the share of images whose top-1
prediction is in the image's set; images whose set is empty (no class judged
correct) are left out, as the paper's `real.json` evaluation does. The ViT
paper reports it beside the original top-1 (its Table 2, "ImageNet ReaL").
tensorflow-datasets carries the labels as `imagenet2012_real` (validation
split only; the images come from ILSVRC2012_img_val.tar, a manual download).
"""

import numpy as np

from keras_vit.errors import ArgumentError, DataNotFound
from keras_vit.evaluation.accuracy import _BatchRunner, top_k_accuracy

REAL_DATASET = "imagenet2012_real"


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


def load_real(image_size, batch_size=64, data_dir=None, manual_dir=None, split="validation"):
    """ImageNet ReaL batches: (images float32 [0, 255], original labels, label sets).

    Label sets are padded with -1 to the batch's longest. Images are resized
    (bilinear) to `image_size`, as `keras_vit.data.load_dataset` does for
    imagenet2012.

    Raises:
        FileNotFoundError: the data set is not prepared (what to download and
            where to put it).
    """
    import tensorflow as tf
    import tensorflow_datasets as tfds

    from keras_vit.data.tfds_datasets import default_data_dir
    from keras_vit.utils import to_hw

    height, width = to_hw("image_size", image_size)
    kwargs = dict(split=split, data_dir=data_dir, shuffle_files=False, download=False)
    if manual_dir is not None:
        kwargs["download"] = True  # prepares from the tar in manual_dir (+ real.json)
        kwargs["download_and_prepare_kwargs"] = {
            "download_config": tfds.download.DownloadConfig(manual_dir=manual_dir)
        }
    try:
        dataset = tfds.load(REAL_DATASET, **kwargs)
    except (AssertionError, tfds.core.registered.DatasetNotFoundError, OSError) as error:
        raise DataNotFound(
            f"The data set {REAL_DATASET!r} is not prepared in "
            f"{default_data_dir(data_dir)}. To use it, put ILSVRC2012_img_val.tar "
            "(from https://image-net.org/, login required) in a folder and pass it "
            "as --manual-dir; tfds prepares it there, fetching the ReaL labels "
            "(real.json, github.com/google-research/reassessed-imagenet) once, "
            "which needs internet, or pass --data-dir where it is prepared."
        ) from error

    def to_tuple(example):
        image = tf.image.resize(tf.cast(example["image"], tf.float32), (height, width))
        return image, tf.cast(example["original_label"], tf.int32), tf.cast(
            example["real_label"], tf.int32)

    dataset = dataset.map(to_tuple, num_parallel_calls=tf.data.AUTOTUNE)
    dataset = dataset.padded_batch(
        batch_size, padded_shapes=((height, width, 3), (), (None,)),
        padding_values=(0.0, 0, -1),
    )
    return dataset.prefetch(tf.data.AUTOTUNE)


def evaluate_real(model, data):
    """Original top-1 and ReaL top-1 of `model` on ReaL batches.

    Args:
        model: a Keras classifier with 1000 outputs.
        data: batches (images, original labels, label sets padded with -1),
            as `load_real` gives, or any iterable of such numpy triples.

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
