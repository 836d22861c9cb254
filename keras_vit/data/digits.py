"""scikit-learn's 8x8 handwritten digits: the offline default data set.

1,797 grayscale images of the digits 0-9 (UCI "Optical Recognition of
Handwritten Digits"), shipped inside scikit-learn, so training works with no
network at all. Pixel values 0..16 are scaled to 0..255.
"""

import numpy as np

from keras_vit.errors import ArgumentError

# The held-out split is fixed (a stratified 20 % test set, seed 0), so every
# run and every figure in the README is measured on the same 360 images.
TEST_FRACTION = 0.2
SPLIT_SEED = 0
SPLITS = ("train", "test")


def load_digits_arrays(split="train"):
    """The digits of one split as NumPy arrays.

    Args:
        split: "train" (1,437 images) or "test" (360 held-out images).
            Defaults to "train".

    Returns:
        `(images, labels)`: float32 (N, 8, 8, 1) pixels in [0, 255] and int32
        (N,) labels in 0..9.
    """
    from sklearn.datasets import load_digits
    from sklearn.model_selection import train_test_split

    if split not in SPLITS:
        raise ArgumentError(
            "Received an invalid value for argument `split`, expected one of "
            f"{', '.join(repr(s) for s in SPLITS)} for the digits data set. "
            f"Received: split={split!r}"
        )
    digits = load_digits()
    images = (digits.images.astype("float32") * (255.0 / 16.0))[..., None]  # (N, 8, 8, 1)
    labels = digits.target.astype("int32")
    x_train, x_test, y_train, y_test = train_test_split(
        images, labels, test_size=TEST_FRACTION, stratify=labels, random_state=SPLIT_SEED
    )
    if split == "train":
        return np.ascontiguousarray(x_train), y_train
    return np.ascontiguousarray(x_test), y_test
