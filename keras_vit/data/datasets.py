"""`load_dataset`: one entry point for every data set keras-vit trains on."""

import dataclasses
import os
from typing import Optional, Tuple

from keras_vit.data.augmentation import (
    batch_transform,
    check_image_size,
    example_transform,
    parse_augment,
)
from keras_vit.data.digits import load_digits_arrays
from keras_vit.data.image_folder import image_folder_shape, is_image_folder, load_image_folder
from keras_vit.data.real import REAL_DATASET, load_real
from keras_vit.data.tfds_datasets import TFDS_DATASETS, load_tfds
from keras_vit.data.vtab import VTAB_PREFIX, VTAB_TASKS, vtab_examples
from keras_vit.errors import ArgumentError, DataNotFound
from keras_vit.utils import check_positive_int

DATASETS = ("digits",) + tuple(TFDS_DATASETS) + (REAL_DATASET,)
VTAB_DATASETS = tuple(VTAB_PREFIX + name for name in VTAB_TASKS)  # "vtab/cifar100", ...
DEFAULT_IMAGE_SIZE = (224, 224)  # for data sets whose images vary in size


@dataclasses.dataclass(frozen=True)
class DatasetInfo:
    """What a model needs to know about a loaded data set."""

    name: str
    split: str
    num_classes: int  # K
    num_channels: int  # C
    image_size: Tuple[int, int]  # (height, width) of the images the dataset yields
    num_examples: Optional[int]  # None where unknown (tfds slices, mock data)
    class_names: Optional[Tuple[str, ...]] = None
    one_hot_labels: bool = False  # True with MixUp/CutMix: labels are (B, K) floats
    # The images' background where the data set is known for it: "dark" (light strokes
    # on black) for DARK_BACKGROUND_DATA; None: not known (a folder, photographs).
    background: Optional[str] = None


# Data sets of light strokes on a dark background: a model trained on one reads
# a dark-on-light drawing (pen on paper) only after 255 - x.
DARK_BACKGROUND_DATA = ("digits", "mnist", "emnist", "kmnist", "fashion_mnist")


def _looks_like_a_path(name):
    """A name no data set has: with a folder separator, or starting with . or ~."""
    return os.sep in name or "/" in name or name.startswith((".", "~"))


def load_dataset(
    name="digits",
    split="train",
    image_size=None,
    batch_size=128,
    shuffle=None,
    augment=None,
    seed=0,
    data_dir=None,
    manual_dir=None,
    drop_remainder=False,
    cache=None,
    num_channels=None,
):
    """Loads a data set as a batched `tf.data.Dataset` of (images, labels).

    Signature (stable; the training and evaluation code build on it):
    `load_dataset(name="digits", split="train", image_size=None,
    batch_size=128, shuffle=None, augment=None, seed=0, data_dir=None,
    manual_dir=None, drop_remainder=False, cache=None, num_channels=None)
    -> (dataset, info)`.

    Images are float32 (B, H, W, C) pixels in [0, 255] (the models normalise
    inside); labels are int32 (B,), or float32 one-hot (B, K) when MixUp or
    CutMix is on (`info.one_hot_labels`).

    Args:
        name: "digits" (scikit-learn's 8x8 grayscale digits, offline),
            "cifar10", "cifar100", "oxford_iiit_pet", "oxford_flowers102",
            "imagenet2012" (through tensorflow-datasets, never downloaded
            here), "imagenet2012_real" (the validation images as batches of
            (images, labels, ReaL label sets padded with -1), see
            `keras_vit.data.real`), "vtab/<task>" (a VTAB-1k task of
            `VTAB_TASKS`, splits "train800val200" (also "train"), "train800",
            "val200", "test";
            `keras_vit.data.vtab`), or the path of an image folder (one
            sub-folder a class, optionally under train/ and test/). Defaults
            to "digits".
        split: "train" or "test" ("validation" where the data set has one; a
            tfds slice such as "train[:90%]" for tfds data sets). Digits keep
            a fixed stratified 20 % (360 images) as "test". Defaults to
            "train".
        image_size: None (the native size: 8 for digits, 32 for CIFAR, the
            size most images of a folder have, 224 for tfds data sets whose
            images vary), an int or (height, width):
            images are resized (bilinear) to it. Defaults to None.
        batch_size: int, images per batch. Defaults to 128.
        shuffle: bool; None shuffles the "train" split only. Defaults to None.
        augment: None/"none", "auto" (the data set's default: "translate" for
            digits, "crop_flip" otherwise) or names among "translate",
            "crop_flip", "randaugment", "mixup", "cutmix" joined by "+".
            Defaults to None.
        seed: int, for shuffling and augmentation. Defaults to 0.
        data_dir: where tfds data sets are prepared. Defaults to
            $TFDS_DATA_DIR or ~/tensorflow_datasets.
        manual_dir: imagenet2012 only: the folder holding its tar files.
            Defaults to None.
        drop_remainder: drop a last partial batch. Defaults to False.
        cache: cache the decoded, resized examples in memory. None caches
            digits, CIFAR and folders of small images. Defaults to None.
        num_channels: None (the images' own count) or 1, 3 or 4: images are
            converted (gray repeated to RGB, RGB to luma gray), e.g. to the
            channel count of the model they are for. Defaults to None.

    Returns:
        `(dataset, info)`: the batched, prefetched `tf.data.Dataset` and a
        `DatasetInfo` (num_classes, num_channels, image_size, num_examples,
        class_names, one_hot_labels).

    Raises:
        ValueError: an unknown name (the message lists the known ones), a bad
            split or argument.
        FileNotFoundError: a tfds data set that is not downloaded (the message
            says what to fetch and where to put it).

    Example:

    >>> train, info = load_dataset("digits", "train", augment="auto")
    >>> info.num_classes, info.num_channels, info.image_size
    (10, 1, (8, 8))
    """
    import tensorflow as tf

    image_size = check_image_size(image_size)
    batch_size = check_positive_int("batch_size", batch_size)
    if name == REAL_DATASET:
        return _load_real(split, image_size, batch_size, data_dir, manual_dir)
    if shuffle is None:
        shuffle = split.split("[")[0] == "train" or name in VTAB_DATASETS and split != "test"
    class_names = None
    num_examples = None
    if name == "digits":
        images, labels = load_digits_arrays(split)
        dataset = tf.data.Dataset.from_tensor_slices((images, labels))
        num_classes, native_channels, native = 10, 1, (8, 8)
        num_examples = len(labels)
        class_names = tuple(str(i) for i in range(10))
        default_augment = ("translate",)
        small = True
    elif name in TFDS_DATASETS:
        spec = TFDS_DATASETS[name]
        dataset = load_tfds(
            name, split, data_dir=data_dir, manual_dir=manual_dir,
            shuffle_files=shuffle, seed=seed,
        )
        num_classes, native_channels = spec.num_classes, 3
        native = spec.native_size or DEFAULT_IMAGE_SIZE
        default_augment = ("crop_flip",)
        small = spec.native_size is not None
        cardinality = int(dataset.cardinality())
        num_examples = cardinality if cardinality >= 0 else None
    elif name in VTAB_DATASETS:
        task = VTAB_TASKS[name[len(VTAB_PREFIX):]]
        split = "train800val200" if split == "train" else split  # a task's training set
        native = image_size or DEFAULT_IMAGE_SIZE
        dataset = vtab_examples(task, split, native, data_dir)
        num_classes, native_channels = task.num_classes, 3
        default_augment = ()  # VTAB fine-tunes on the images as they are
        small = False
        cardinality = int(dataset.cardinality())
        num_examples = cardinality if cardinality >= 0 else None
    elif is_image_folder(name):
        height, width, channels = image_folder_shape(name)
        native = (height, width)
        # Alpha composited onto white: gray+alpha reads as gray, RGBA as RGB.
        num_channels = num_channels or {1: 1, 2: 1}.get(channels, 3)
        dataset, class_names = load_image_folder(
            name, split, image_size=image_size or native, num_channels=num_channels)
        class_names = tuple(class_names)
        num_classes = len(class_names)
        default_augment = ("crop_flip",)
        small = max(image_size or native) <= 64  # fits in memory: cache it
        cardinality = int(dataset.cardinality())
        num_examples = cardinality if cardinality >= 0 else None
    elif isinstance(name, (str, os.PathLike)) and _looks_like_a_path(os.fspath(name)):
        raise DataNotFound(
            f"no such folder: {name} (expected an image folder, one sub-folder per class, "
            f"or one of {', '.join(DATASETS)}, vtab/<task>)")
    else:
        raise ArgumentError(
            "Received an invalid value for argument `name`, expected one of "
            f"{', '.join(DATASETS)}, vtab/<task> (a task of keras_vit.data.VTAB_TASKS) "
            "or the path of an image folder (one "
            f"sub-folder per class). Received: name={name!r}"
        )
    if name == "digits" or name in TFDS_DATASETS or name in VTAB_DATASETS:
        dataset, num_channels = _convert_channels(dataset, native_channels, num_channels)
    augment = parse_augment(augment, default=default_augment)
    image_size = image_size or native

    def to_float(image, label):
        return tf.cast(image, "float32"), tf.cast(label, "int32")

    dataset = dataset.map(to_float, num_parallel_calls=tf.data.AUTOTUNE)
    resize = example_transform(image_size, (), seed)
    if "crop_flip" not in augment:
        dataset = dataset.map(resize, num_parallel_calls=tf.data.AUTOTUNE)
    if cache or (cache is None and small):
        dataset = dataset.cache()
    if shuffle:
        buffer = min(num_examples or 10_000, 10_000)
        dataset = dataset.shuffle(buffer, seed=seed, reshuffle_each_iteration=True)
    if "crop_flip" in augment:
        crop = example_transform(image_size, augment, seed)
        dataset = dataset.map(crop, num_parallel_calls=tf.data.AUTOTUNE)
    dataset = dataset.batch(batch_size, drop_remainder=drop_remainder)
    mix = batch_transform(augment, num_classes, seed)
    if mix is not None:
        dataset = dataset.map(mix, num_parallel_calls=tf.data.AUTOTUNE)
    dataset = dataset.prefetch(tf.data.AUTOTUNE)
    info = DatasetInfo(
        name=str(name),
        split=split,
        num_classes=num_classes,
        num_channels=num_channels,
        image_size=image_size,
        num_examples=num_examples,
        class_names=class_names,
        one_hot_labels=bool({"mixup", "cutmix"} & set(augment)),
        background="dark" if str(name).lower() in DARK_BACKGROUND_DATA else None,
    )
    return dataset, info


def _load_real(split, image_size, batch_size, data_dir, manual_dir):
    """ImageNet ReaL's (images, labels, label sets) batches and their `DatasetInfo`."""
    split = "validation" if split in ("test", "validation") else split
    image_size = image_size or DEFAULT_IMAGE_SIZE
    dataset = load_real(image_size, batch_size, data_dir, manual_dir, split)
    info = DatasetInfo(name=REAL_DATASET, split=split, num_classes=1000, num_channels=3,
                       image_size=tuple(image_size), num_examples=None)
    return dataset, info


def _convert_channels(dataset, have, want):
    """(dataset, channels): gray repeated to RGB(A), RGB to luma gray, or as it is."""
    import tensorflow as tf

    if want is None or want == have:
        return dataset, have
    if have == 1 and want in (3, 4):
        convert = lambda image: tf.repeat(image, want, axis=-1)  # noqa: E731
    elif have == 3 and want == 1:
        convert = tf.image.rgb_to_grayscale
    else:
        raise ArgumentError(
            "Received an invalid value for argument `num_channels`: images with "
            f"{have} channels cannot be converted to {want}. Received: num_channels={want}")
    return dataset.map(lambda x, y: (convert(x), y), num_parallel_calls=tf.data.AUTOTUNE), want
