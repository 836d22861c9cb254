"""Pool the encoder's tokens into one image representation (paper eq. 4)."""

import keras
from keras import ops

from keras_vit.errors import ArgumentError
from keras_vit.utils import check_choice

POOLINGS = ("token", "gap", "distillation")


@keras.saving.register_keras_serializable(package="keras_vit")
class TokenPooling(keras.layers.Layer):
    """Picks the class token ("token", y = z_L^0) or averages the patch
    tokens ("gap", global average pooling, paper App. D.3), or picks DeiT's
    distillation token ("distillation", the second token).

    Args:
        pooling: "token", "gap" or "distillation". Defaults to "token".
        num_prefix_tokens: tokens before the patches (class, distillation,
            registers); "gap" leaves them out. Defaults to 1.

    Call arguments:
        tokens: tensor (B, T, D).

    Returns:
        Tensor (B, D).
    """

    def __init__(self, pooling="token", num_prefix_tokens=1, **kwargs):
        super().__init__(**kwargs)
        self.pooling = check_choice("pooling", pooling, POOLINGS)
        self.num_prefix_tokens = int(num_prefix_tokens)
        if self.pooling == "token" and self.num_prefix_tokens < 1:
            raise ArgumentError(
                "`pooling`='token' needs a class token; use pooling='gap' or "
                "class_token=True. Received: pooling='token', class_token=False"
            )
        if self.pooling == "distillation" and self.num_prefix_tokens < 2:
            raise ArgumentError(
                "`pooling`='distillation' reads the second prefix token, but "
                f"num_prefix_tokens={self.num_prefix_tokens}."
            )

    def call(self, tokens):
        if self.pooling == "token":
            return tokens[:, 0]
        if self.pooling == "distillation":
            return tokens[:, 1]
        return ops.mean(tokens[:, self.num_prefix_tokens :], axis=1)

    def compute_output_shape(self, input_shape):
        return (input_shape[0], input_shape[-1])

    def get_config(self):
        config = super().get_config()
        config.update(
            {"pooling": self.pooling, "num_prefix_tokens": self.num_prefix_tokens}
        )
        return config
