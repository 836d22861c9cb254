"""Image folders: one sub-folder per class, the layout of `image_dataset_from_directory`."""

import collections
import os

from keras_vit.errors import ArgumentError, DataError

IMAGE_EXTENSIONS = (".bmp", ".gif", ".jpeg", ".jpg", ".png")

# Without train/ and test/ sub-folders, a fixed 10 % of the images is held out.
HOLDOUT_FRACTION = 0.1
HOLDOUT_SEED = 1337


def is_image_folder(path):
    return isinstance(path, (str, os.PathLike)) and os.path.isdir(path)


def _image_files(path, most):
    found = []
    for root, dirs, files in os.walk(path):
        dirs.sort()
        found.extend(os.path.join(root, f) for f in sorted(files)
                     if f.lower().endswith(IMAGE_EXTENSIONS))
        if len(found) >= most:
            break
    return found[:most]


def image_folder_shape(path, sample=32):
    """The (height, width, channels) most of a folder's images have (read from up to
    `sample` files; grayscale 1, RGB 3, RGBA 4)."""
    import tensorflow as tf

    path = os.fspath(path)
    if not any(os.path.isdir(os.path.join(path, d)) for d in os.listdir(path)):
        raise DataError(
            f"Received an invalid value for argument `name`: the folder {path} "
            "has no class sub-folders (expected one sub-folder of images per class).")
    files = _image_files(path, sample)
    if not files:
        raise DataError(
            f"Received an invalid value for argument `data`: the folder {path} holds no "
            f"images ({', '.join(IMAGE_EXTENSIONS)}).")
    shapes = collections.Counter(
        tuple(int(d) for d in tf.io.decode_image(tf.io.read_file(f), expand_animations=False).shape)
        for f in files)
    return shapes.most_common(1)[0][0]


def load_image_folder(path, split="train", image_size=(224, 224), num_channels=3):
    """Unbatched (image float32 (H, W, C), label int32) examples of a folder.

    `path/<split>/<class>/*.jpg` is used when `path/<split>` exists;
    otherwise `path/<class>/*.jpg` is split 90/10 with a fixed seed ("train"
    the 90 %, "test" or "validation" the 10 %).

    Images are read with `num_channels` channels (1, 3 or 4), converting gray
    and colour as needed.

    Returns:
        `(dataset, class_names)`.
    """
    import keras

    path = os.fspath(path)
    subset = None
    if os.path.isdir(os.path.join(path, split)):
        directory = os.path.join(path, split)
    elif split in ("train", "test", "validation"):
        directory = path
        subset = "training" if split == "train" else "validation"
    else:
        raise ArgumentError(
            "Received an invalid value for argument `split`, expected 'train', "
            f"'test', 'validation' or a sub-folder of {path}. Received: split={split!r}"
        )
    classes = sorted(
        d for d in os.listdir(directory)
        if os.path.isdir(os.path.join(directory, d)) and d not in ("train", "test", "validation")
    )
    if not classes:
        raise ArgumentError(
            f"Received an invalid value for argument `name`: the folder {directory} "
            "has no class sub-folders (expected one sub-folder of images per class)."
        )
    dataset = keras.utils.image_dataset_from_directory(
        directory,
        labels="inferred",
        label_mode="int",
        class_names=classes,
        color_mode=_color_mode(num_channels),
        batch_size=None,
        image_size=tuple(image_size),
        shuffle=subset is not None,  # a fixed permutation for the 90/10 split
        seed=HOLDOUT_SEED,
        validation_split=HOLDOUT_FRACTION if subset else None,
        subset=subset,
        verbose=False,
    )
    return dataset, classes


def _color_mode(num_channels):
    modes = {1: "grayscale", 3: "rgb", 4: "rgba"}
    if num_channels not in modes:
        raise ArgumentError(
            "Received an invalid value for argument `num_channels`, expected 1, 3 or 4 "
            f"for an image folder. Received: num_channels={num_channels!r}")
    return modes[num_channels]
