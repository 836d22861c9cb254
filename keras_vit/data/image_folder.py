"""Image folders: one sub-folder per class, the layout of `image_dataset_from_directory`."""

import collections
import os

from PIL import Image, UnidentifiedImageError

from keras_vit.data.image_file import ALPHA_BACKGROUND
from keras_vit.errors import ArgumentError, DataError

IMAGE_EXTENSIONS = (".bmp", ".gif", ".jpeg", ".jpg", ".png")

# Without train/ and test/ sub-folders, a fixed 10 % of the images is held out.
HOLDOUT_FRACTION = 0.1
HOLDOUT_SEED = 1337


def is_image_folder(path):
    return isinstance(path, (str, os.PathLike)) and os.path.isdir(path)


def _image_files(path, most=None):
    found = []
    for root, dirs, files in os.walk(path):
        dirs.sort()
        found.extend(os.path.join(root, f) for f in sorted(files)
                     if f.lower().endswith(IMAGE_EXTENSIONS))
        if most is not None and len(found) >= most:
            break
    return found[:most]


# What TensorFlow's decode_image (the folder pipeline) reads, as PIL names them.
DECODABLE_FORMATS = ("BMP", "GIF", "JPEG", "PNG")


def check_images(paths, shown=5):
    """Refuses, in one line naming them, files the pipeline could not decode.

    Each file's header is read and its format checked, and PNG's chunk checksums
    verified (a truncated PNG), before training starts: a bad file found by the
    pipeline stops epoch 1 with a TensorFlow traceback that names no file.

    Returns:
        True when some image has transparency (alpha or a transparent colour).
    """
    bad, transparent = [], False
    for path in paths:
        try:
            with Image.open(path) as image:
                transparent = transparent or has_transparency(image)
                if image.format not in DECODABLE_FORMATS:
                    bad.append(f"{path} ({image.format}, not {'/'.join(DECODABLE_FORMATS)})")
                    continue
                image.verify()
        except UnidentifiedImageError:
            bad.append(f"{path} (not an image format)")
        except (OSError, SyntaxError, ValueError, EOFError) as error:
            reason = str(error).splitlines()[0][:80] if str(error) else type(error).__name__
            bad.append(f"{path} ({reason})")
    if bad:
        more = f" and {len(bad) - shown} more" if len(bad) > shown else ""
        raise DataError(
            f"{len(bad)} file(s) in the image folder cannot be read as images (remove or "
            f"re-save them): {'; '.join(bad[:shown])}{more}")
    return transparent


def has_transparency(image):
    """True for a PIL image with an alpha channel or a transparent colour (as
    `keras_vit.data.image_file.read_image` composites)."""
    return image.mode in ("RGBA", "LA", "PA") or "transparency" in image.info


def _check_classes(directory, classes):
    """Refuses a folder of fewer than two classes (often `--data` one level too deep)."""
    if len(classes) < 2:
        found = ", ".join(classes) or "none"
        raise DataError(
            f"the folder {directory} has {len(classes)} class sub-folder(s) ({found}); "
            "a classifier needs at least two (one sub-folder of images per class: is "
            "the folder one level too deep?).")


def image_folder_shape(path, sample=32):
    """The (height, width, channels) most of a folder's images have (read from up to
    `sample` files; grayscale 1, RGB 3, RGBA 4)."""
    import tensorflow as tf

    path = os.fspath(path)
    if not any(os.path.isdir(os.path.join(path, d)) for d in os.listdir(path)):
        raise DataError(
            f"the folder {path} has no class sub-folders (expected one sub-folder of "
            "images per class).")
    files = _image_files(path, sample)
    if not files:
        raise DataError(
            f"the folder {path} holds no images ({', '.join(IMAGE_EXTENSIONS)}).")
    check_images(files)
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
        raise DataError(
            f"the folder {directory} has no class sub-folders (expected one sub-folder "
            "of images per class)."
        )
    _check_classes(directory, classes)
    files = _image_files(directory)
    # Alpha is composited as read_image does, not dropped (a transparent canvas read as
    # black); GIFs decode to RGB only, so a folder with one keeps TensorFlow's reading.
    composite = (check_images(files) and num_channels in (1, 3)
                 and not any(f.lower().endswith(".gif") for f in files))
    # Keras prints "Using N files for ..." on every call, even with verbose=False (twice for
    # one folder: train's and test's split); the split is said once, by `_say_split`.
    interactive = keras.config.is_interactive_logging_enabled()
    keras.config.disable_interactive_logging()
    try:
        dataset = keras.utils.image_dataset_from_directory(
            directory,
            labels="inferred",
            label_mode="int",
            class_names=classes,
            color_mode=_color_mode(4 if composite else num_channels),
            batch_size=None,
            image_size=tuple(image_size),
            shuffle=subset is not None,  # a fixed permutation for the 90/10 split
            seed=HOLDOUT_SEED,
            validation_split=HOLDOUT_FRACTION if subset else None,
            subset=subset,
            verbose=False,
        )
    finally:
        if interactive:
            keras.config.enable_interactive_logging()
    if subset is not None:
        _say_split(directory, classes)
    if composite:
        dataset = dataset.map(lambda image, label: (_onto_background(image, num_channels),
                                                    label))
    return dataset, classes


# Folders whose 90/10 split this process has already told the user about.
_SPLITS_SAID = set()


def _say_split(directory, classes):
    """Prints, once per folder and process, how a folder without train/ and test/ is
    split (train and test each read it; the numbers are Keras', its 10 % rounded down)."""
    key = os.path.realpath(directory)
    if key in _SPLITS_SAID:
        return
    _SPLITS_SAID.add(key)
    total = sum(len(_image_files(os.path.join(directory, c))) for c in classes)
    held = int(HOLDOUT_FRACTION * total)
    print(f"{directory}: {total} images in {len(classes)} classes, no train/ and test/ "
          f"sub-folders: {total - held} for training, {held} held out for testing "
          f"(a fixed {HOLDOUT_FRACTION:.0%}, seed {HOLDOUT_SEED}).")


def _onto_background(rgba, num_channels):
    """(H, W, 4) pixels in [0, 255] composited onto ALPHA_BACKGROUND (white), as
    `read_image` does (there before resizing, here after), then gray by ITU-R 601 luma
    where `num_channels` is 1."""
    import tensorflow as tf  # the folder pipeline is tf.data; not imported by keras_vit

    alpha = rgba[..., 3:] / 255.0
    rgb = rgba[..., :3] * alpha + ALPHA_BACKGROUND * (1.0 - alpha)
    return tf.image.rgb_to_grayscale(rgb) if num_channels == 1 else rgb


def _color_mode(num_channels):
    modes = {1: "grayscale", 3: "rgb", 4: "rgba"}
    if num_channels not in modes:
        raise ArgumentError(
            "Received an invalid value for argument `num_channels`, expected 1, 3 or 4 "
            f"for an image folder. Received: num_channels={num_channels!r}")
    return modes[num_channels]
