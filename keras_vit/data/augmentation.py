"""Resizing and augmentation with Keras core preprocessing layers.

Not keras-cv (see DESIGN.md): Keras core holds RandomCrop, RandomFlip,
RandomTranslation, RandAugment, MixUp and CutMix, which run inside tf.data.
"""

import numbers

from keras_vit.errors import ArgumentError

AUGMENTATIONS = {
    "translate": "random whole-pixel shifts of up to 1/8 of each side, zero fill (digits)",
    "crop_flip": "resize 1/8 larger, random crop back, random horizontal flip",
    "randaugment": "RandAugment, 2 random ops of magnitude 0.5",
    "mixup": "MixUp (alpha 0.2); labels become mixed one-hot vectors",
    "cutmix": "CutMix; labels become mixed one-hot vectors",
}


def parse_augment(augment, default=("crop_flip",)):
    """Turns an `augment` argument into a tuple of augmentation names.

    Args:
        augment: None, False or "none" (no augmentation); True or "auto" (the
            data set's `default`); a name of `AUGMENTATIONS`; several joined
            by "+" or ","; or a list of names.
        default: the names `True`/"auto" stand for.

    Returns:
        A tuple of names from `AUGMENTATIONS`.
    """
    if augment is None or augment is False:
        return ()
    if augment is True:
        return tuple(default)
    if isinstance(augment, str):
        augment = [a for part in augment.split("+") for a in part.split(",")]
    names = []
    for name in augment:
        name = str(name).strip().lower()
        if name in ("", "none"):
            continue
        if name == "auto":
            names.extend(default)
        elif name in AUGMENTATIONS:
            names.append(name)
        else:
            raise ArgumentError(
                "Received an invalid value for argument `augment`, expected "
                f"'none', 'auto' or names among {', '.join(AUGMENTATIONS)} "
                f"joined by '+'. Received: augment={name!r}"
            )
    return tuple(dict.fromkeys(names))


def example_transform(image_size, augment=(), seed=None):
    """A per-example function (image, label) -> (image, label) for tf.data.

    Resizes to `image_size` (bilinear); with "crop_flip" it resizes 1/8
    larger and takes a random crop, so every example gets its own crop.
    """
    import keras
    import tensorflow as tf

    height, width = image_size
    if "crop_flip" in augment:
        big = (height + max(height // 8, 1), width + max(width // 8, 1))
        crop = keras.layers.RandomCrop(height, width, seed=seed)

        def transform(image, label):
            image = tf.image.resize(image, big, method="bilinear")
            return crop(image, training=True), label

        return transform

    def transform(image, label):
        if image.shape[0] != height or image.shape[1] != width:
            image = tf.image.resize(image, (height, width), method="bilinear")
        return image, label

    return transform


def batch_transform(augment, num_classes, seed=None):
    """A per-batch function (images, labels) -> (images, labels), or None.

    Labels stay int unless "mixup" or "cutmix" is on; then they are float32
    one-hot vectors (B, num_classes) mixed as the images are.
    """
    import keras
    import tensorflow as tf

    layers = []
    if "crop_flip" in augment:
        layers.append(keras.layers.RandomFlip("horizontal", seed=seed))
    if "translate" in augment:
        layers.append(
            keras.layers.RandomTranslation(
                0.125, 0.125, fill_mode="constant", fill_value=0.0,
                interpolation="nearest", seed=seed,  # whole-pixel shifts, no blur
            )
        )
    if "randaugment" in augment:
        layers.append(keras.layers.RandAugment(value_range=(0, 255), seed=seed))
    mixers = []
    if "mixup" in augment:
        mixers.append(keras.layers.MixUp(alpha=0.2, seed=seed))
    if "cutmix" in augment:
        mixers.append(keras.layers.CutMix(seed=seed))
    if not layers and not mixers:
        return None

    def transform(images, labels):
        for layer in layers:
            images = layer(images, training=True)
        if mixers:
            labels = tf.one_hot(tf.cast(labels, "int32"), num_classes)
            for mixer in mixers:
                out = mixer({"images": images, "labels": labels}, training=True)
                images, labels = out["images"], out["labels"]
        return tf.clip_by_value(images, 0.0, 255.0), labels

    return transform


def check_image_size(image_size):
    """None, or an (height, width) pair of positive ints."""
    if image_size is None:
        return None
    given = image_size
    if isinstance(image_size, numbers.Integral) and not isinstance(image_size, bool):
        image_size = (image_size, image_size)
    if (
        not isinstance(image_size, (tuple, list))
        or len(image_size) != 2
        or not all(isinstance(s, numbers.Integral) and s > 0 for s in image_size)
    ):
        image_size = given
        raise ArgumentError(
            "Received an invalid value for argument `image_size`, expected "
            "None, a positive int or an (height, width) pair. "
            f"Received: image_size={image_size!r}"
        )
    return (int(image_size[0]), int(image_size[1]))
