"""`evaluate_dataset`: a saved model over a named data set, as `keras-vit evaluate` runs it.

Loads the evaluation split (and the few-shot pool) at the model's input size,
then calls `evaluate` (top-k and few-shot) or, for "imagenet2012_real",
`evaluate_real` (original top-1 beside ReaL top-1). Data code imports
tensorflow when called, not at import.
"""

from keras_vit.data import load_dataset
from keras_vit.data.real import REAL_DATASET
from keras_vit.errors import ArgumentError, DataError
from keras_vit.evaluation.accuracy import evaluate
from keras_vit.evaluation.fewshot import L2_REG, NUM_SEEDS, SHOTS
from keras_vit.evaluation.real import evaluate_real
from keras_vit.models import names as parts

PREPROCESSING = ("resize", "big_vision")


def evaluation_data(model, data="digits", split="test", fewshot_split="train",
                    with_fewshot=True, batch_size=64, data_dir=None, manual_dir=None,
                    preprocessing="resize"):
    """The evaluation split and the few-shot pool of `data`, at `model`'s input size.

    Args:
        model: the Keras model to be evaluated (its input gives the size and
            channels).
        data: a `keras_vit.data.load_dataset` name or image folder. Defaults
            to "digits".
        split: the evaluation split. Defaults to "test".
        fewshot_split: the split the shots come from. Defaults to "train".
        with_fewshot: load the few-shot pool. Defaults to True.
        batch_size: images per batch. Defaults to 64.
        data_dir, manual_dir: as `load_dataset`.
        preprocessing: "resize" (bilinear to the input size) or "big_vision"
            (big_vision's few-shot `resize(256)|central_crop(224)`, scaled to
            the input size S: resize to round(S * 256 / 224), crop S; the
            value range [-1, 1] is what the model's own normalisation gives the
            original checkpoints, and is applied here to a model built without
            one). Defaults to "resize".

    Returns:
        (test dataset, few-shot dataset or None, DatasetInfo of the test split),
        both in file order (not shuffled), so the seeded shot selection repeats.
    """
    import tensorflow as tf

    if preprocessing not in PREPROCESSING:
        raise ArgumentError(
            "Received an invalid value for argument `preprocessing`, expected one of "
            f"{', '.join(PREPROCESSING)}. Received: preprocessing={preprocessing!r}"
        )
    height, width, channels = model.inputs[0].shape[1:]
    load_size = (height, width)
    if preprocessing == "big_vision":
        load_size = (round(height * 256 / 224), round(width * 256 / 224))
    normalise = preprocessing == "big_vision" and parts.PREPROCESSING not in {
        layer.name for layer in model.layers
    }

    def crop(images, labels):
        top, left = (load_size[0] - height) // 2, (load_size[1] - width) // 2
        images = images[:, top : top + height, left : left + width, :]
        if normalise:
            images = images / 127.5 - 1.0
        return images, labels

    def load(which):
        dataset, info = load_dataset(
            data, split=which, image_size=load_size, batch_size=batch_size, shuffle=False,
            augment=None, data_dir=data_dir, manual_dir=manual_dir,
            num_channels=channels,  # read as the model takes them (gray and colour converted)
        )
        if preprocessing == "big_vision":
            dataset = dataset.map(crop, num_parallel_calls=tf.data.AUTOTUNE)
        return dataset, info

    test, info = load(split)
    fewshot = load(fewshot_split)[0] if with_fewshot else None
    return test, fewshot, info


def evaluate_dataset(model, data="digits", split="test", fewshot_split="train",
                     shots=SHOTS, l2_reg=L2_REG, seed=0, num_seeds=NUM_SEEDS,
                     batch_size=64, data_dir=None, manual_dir=None,
                     preprocessing="resize", fewshot_only=False):
    """Evaluates `model` on a data set by name: top-1/top-5 and few-shot, or ReaL.

    A model whose head does not match the data's classes (or has none) gets
    few-shot accuracy only: its features are taken before the head. With
    `data="imagenet2012_real"` the result is the original top-1 beside ReaL
    top-1 (`evaluate_real`) and few-shot is not run.

    Args:
        model: a Keras classifier or a model built with `include_top=False`.
        data, split, fewshot_split, batch_size, data_dir, manual_dir,
        preprocessing: see `evaluation_data`.
        shots: few-shot shot counts; empty skips few-shot. Defaults to
            (1, 5, 10, 25).
        l2_reg, seed, num_seeds: see `evaluate`.
        fewshot_only: skip top-k (any head size). Defaults to False.

    Returns:
        `evaluate`'s dict (or `evaluate_real`'s), plus "data", "split", and
        "top_k_skipped" with the reason where top-k was left out.
    """
    if data == REAL_DATASET:
        height, width = model.inputs[0].shape[1:3]
        real, info = load_dataset(REAL_DATASET, split, image_size=(height, width),
                                  batch_size=batch_size, data_dir=data_dir,
                                  manual_dir=manual_dir)
        return {"data": data, "split": info.split, **evaluate_real(model, real)}
    shots = tuple(shots or ())
    test, fewshot, info = evaluation_data(
        model, data, split, fewshot_split, with_fewshot=bool(shots), batch_size=batch_size,
        data_dir=data_dir, manual_dir=manual_dir, preprocessing=preprocessing,
    )
    top_k, skipped = (1, 5), None
    names = {layer.name for layer in model.layers}
    num_outputs = model.outputs[0].shape[-1]
    if fewshot_only:
        if not shots:
            raise ArgumentError("Received an invalid value for argument `shots`: "
                             "fewshot_only needs at least one shot count")
        top_k = ()
    elif parts.HEAD in names and num_outputs != info.num_classes:
        if not shots:
            raise DataError(
                f"Received an invalid value for argument `data`: the model has "
                f"{num_outputs} classes but {data} has {info.num_classes}, and "
                "few-shot (the only evaluation that needs no matching head) is off"
            )
        top_k = ()
        skipped = (f"the model's head has {num_outputs} classes, {data} has "
                   f"{info.num_classes}: few-shot only, on the features before the head")
    results = evaluate(
        model, test, fewshot_data=fewshot, top_k=top_k, shots=shots, l2_reg=l2_reg,
        seed=seed, num_seeds=num_seeds, batch_size=batch_size,
        num_classes=info.num_classes,
    )
    results = {"data": data, "split": split, **results}
    if skipped:
        results["top_k_skipped"] = skipped
    if shots:
        results["fewshot_preprocessing"] = preprocessing
    return results
