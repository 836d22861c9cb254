"""Weight-standardised convolution of BiT (Kolesnikov et al., 2020)."""

import keras
from keras import ops


@keras.saving.register_keras_serializable(package="keras_vit")
class StdConv2D(keras.layers.Conv2D):
    """A `Conv2D` whose kernel is standardised per output channel before use.

    W_hat = (W - mean(W)) / sqrt(var(W) + eps), statistics over (kh, kw, C_in),
    as in BiT and the hybrid ViT's ResNet stem (timm's `StdConv2dSame`).

    Args:
        epsilon: float added to the variance. Defaults to 1e-8 (timm's
            hybrid ViT stem).
        **kwargs: the arguments of `keras.layers.Conv2D`.
    """

    def __init__(self, *args, epsilon=1e-8, **kwargs):
        super().__init__(*args, **kwargs)
        self.epsilon = float(epsilon)

    def convolution_op(self, inputs, kernel):
        kernel = ops.cast(kernel, "float32")
        mean, var = ops.moments(kernel, axes=(0, 1, 2), keepdims=True)
        kernel = (kernel - mean) / ops.sqrt(var + self.epsilon)
        return super().convolution_op(inputs, ops.cast(kernel, inputs.dtype))

    def get_config(self):
        config = super().get_config()
        config.update({"epsilon": self.epsilon})
        return config
