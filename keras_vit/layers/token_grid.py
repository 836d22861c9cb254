"""Patch tokens back onto their 2-D grid (for dense-prediction features)."""

import keras
from keras import ops

from keras_vit.errors import ArgumentError
from keras_vit.utils import to_hw


@keras.saving.register_keras_serializable(package="keras_vit")
class TokenGrid(keras.layers.Layer):
    """Drops the prefix tokens and lays the patch tokens out as an NHWC map.

    The inverse of the raster-order flattening of `Patches`: token
    `num_prefix_tokens + r * gw + c` becomes pixel (r, c) of the map, as
    timm's `forward_intermediates(output_fmt="NHWC")` and HF's
    `reshape_hidden_states` do.

    Args:
        grid_size: int or (gh, gw), the patch grid.
        num_prefix_tokens: tokens before the patches (class, distillation,
            register tokens). Defaults to 1.

    Call arguments:
        tokens: tensor (B, num_prefix_tokens + gh*gw, D).

    Returns:
        Tensor (B, gh, gw, D).

    Example:

    >>> TokenGrid((2, 3))(keras.ops.ones((4, 7, 32))).shape
    (4, 2, 3, 32)
    """

    def __init__(self, grid_size, num_prefix_tokens=1, **kwargs):
        super().__init__(**kwargs)
        self.grid_size = to_hw("grid_size", grid_size)
        if int(num_prefix_tokens) != num_prefix_tokens or num_prefix_tokens < 0:
            raise ArgumentError(
                "Received an invalid value for argument `num_prefix_tokens`, "
                f"expected a non-negative integer. Received: "
                f"num_prefix_tokens={num_prefix_tokens!r}"
            )
        self.num_prefix_tokens = int(num_prefix_tokens)

    def build(self, input_shape):
        gh, gw = self.grid_size
        expected = self.num_prefix_tokens + gh * gw
        if input_shape[1] is not None and input_shape[1] != expected:
            raise ArgumentError(
                f"`TokenGrid` for a {gh}x{gw} grid with {self.num_prefix_tokens} "
                f"prefix token(s) expects {expected} tokens. "
                f"Received: input_shape={tuple(input_shape)}"
            )

    def call(self, tokens):
        gh, gw = self.grid_size
        patches = tokens[:, self.num_prefix_tokens :]  # (B, gh*gw, D)
        return ops.reshape(patches, (ops.shape(tokens)[0], gh, gw, tokens.shape[-1]))

    def compute_output_shape(self, input_shape):
        return (input_shape[0],) + self.grid_size + (input_shape[-1],)

    def get_config(self):
        config = super().get_config()
        config.update(
            {"grid_size": self.grid_size, "num_prefix_tokens": self.num_prefix_tokens}
        )
        return config
