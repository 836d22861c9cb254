"""Cut an image into flattened, non-overlapping patches (paper eq. 1)."""

import keras
from keras import ops

from keras_vit.errors import ArgumentError
from keras_vit.utils import check_positive_int, check_divisible_image_size


@keras.saving.register_keras_serializable(package="keras_vit")
class Patches(keras.layers.Layer):
    """Cuts images into a sequence of flattened P x P patches.

    An image x of shape (H, W, C) becomes x_p of shape (N, P*P*C) with
    N = H*W / P^2 (paper eq. 1). Patches are in raster order (row by row) and
    each is flattened as (row, column, channel), the order of a `Conv2D`
    kernel of shape (P, P, C, D): `Patches(P)` followed by `Dense(D)` computes
    exactly `Conv2D(D, P, strides=P)` with the same kernel.

    Only reshapes and a transpose are used, so it compiles under XLA on every
    backend (unlike `tf.image.extract_patches`).

    Args:
        patch_size: int, side P of the square patches.
        flatten: bool, return the patches as a sequence; False keeps them on
            their grid, (B, H/P, W/P, P*P*C), for models whose grid is read
            from each input. Defaults to True.

    Call arguments:
        images: tensor of shape (B, H, W, C); H and W divisible by P (checked
            when the layer is called, also for inputs of unknown size).

    Returns:
        Tensor of shape (B, H/P * W/P, P*P*C).

    Example:

    >>> x = keras.ops.ones((2, 32, 48, 3))
    >>> Patches(16)(x).shape
    (2, 6, 768)
    """

    def __init__(self, patch_size, flatten=True, **kwargs):
        super().__init__(**kwargs)
        self.patch_size = check_positive_int("patch_size", patch_size)
        if not isinstance(flatten, bool):
            raise ArgumentError(
                "Received an invalid value for argument `flatten`, expected True "
                f"or False. Received: flatten={flatten!r}"
            )
        self.flatten = flatten

    def build(self, input_shape):
        if len(input_shape) != 4:
            raise ArgumentError(
                "`Patches` expects images of shape (batch, height, width, "
                f"channels). Received: input_shape={tuple(input_shape)}"
            )
        height, width = input_shape[1], input_shape[2]
        if height is not None and width is not None:
            check_divisible_image_size((height, width), self.patch_size)

    def compute_output_shape(self, input_shape):
        batch, height, width, channels = input_shape
        p = self.patch_size
        n = None if height is None or width is None else (height // p) * (width // p)
        c = None if channels is None else p * p * channels
        if not self.flatten:
            return (batch,) + tuple(None if s is None else s // p for s in (height, width)) + (c,)
        return (batch, n, c)

    def call(self, images):
        p = self.patch_size
        shape = ops.shape(images)
        if isinstance(shape[1], int) and isinstance(shape[2], int):  # known at trace time
            check_divisible_image_size((shape[1], shape[2]), p, name="images")
        gh, gw, c = shape[1] // p, shape[2] // p, shape[3]
        # The batch stays explicit, so a size P does not divide cannot reshape
        # into a different batch even where the check above cannot run.
        x = ops.reshape(images, (shape[0], gh, p, gw, p, c))  # (B, gh, P, gw, P, C)
        x = ops.transpose(x, (0, 1, 3, 2, 4, 5))  # (B, gh, gw, P, P, C)
        if not self.flatten:
            return ops.reshape(x, (-1, gh, gw, p * p * c))  # (B, gh, gw, P*P*C)
        return ops.reshape(x, (-1, gh * gw, p * p * c))  # (B, N, P*P*C)

    def get_config(self):
        config = super().get_config()
        config.update({"patch_size": self.patch_size, "flatten": self.flatten})
        return config
