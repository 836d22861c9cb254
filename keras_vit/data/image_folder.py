"""Image folders: one sub-folder per class, the layout of `image_dataset_from_directory`."""

import os

# Without train/ and test/ sub-folders, a fixed 10 % of the images is held out.
HOLDOUT_FRACTION = 0.1
HOLDOUT_SEED = 1337


def is_image_folder(path):
    return isinstance(path, (str, os.PathLike)) and os.path.isdir(path)


def load_image_folder(path, split="train", image_size=(224, 224), num_channels=3):
    """Unbatched (image float32 (H, W, C), label int32) examples of a folder.

    `path/<split>/<class>/*.jpg` is used when `path/<split>` exists;
    otherwise `path/<class>/*.jpg` is split 90/10 with a fixed seed ("train"
    the 90 %, "test" or "validation" the 10 %).

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
        raise ValueError(
            "Received an invalid value for argument `split`, expected 'train', "
            f"'test', 'validation' or a sub-folder of {path}. Received: split={split!r}"
        )
    classes = sorted(
        d for d in os.listdir(directory)
        if os.path.isdir(os.path.join(directory, d)) and d not in ("train", "test", "validation")
    )
    if not classes:
        raise ValueError(
            f"Received an invalid value for argument `name`: the folder {directory} "
            "has no class sub-folders (expected one sub-folder of images per class)."
        )
    dataset = keras.utils.image_dataset_from_directory(
        directory,
        labels="inferred",
        label_mode="int",
        class_names=classes,
        color_mode={1: "grayscale", 3: "rgb", 4: "rgba"}[num_channels],
        batch_size=None,
        image_size=tuple(image_size),
        shuffle=subset is not None,  # a fixed permutation for the 90/10 split
        seed=HOLDOUT_SEED,
        validation_split=HOLDOUT_FRACTION if subset else None,
        subset=subset,
        verbose=False,
    )
    return dataset, classes
