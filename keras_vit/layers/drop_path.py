"""Stochastic depth: drop a whole residual branch per sample (Huang et al., 2016)."""

import keras
from keras import ops

from keras_vit.utils import check_rate


@keras.saving.register_keras_serializable(package="keras_vit")
class DropPath(keras.layers.Layer):
    """Zeroes a residual branch for a random subset of samples while training.

    Each sample's branch is kept with probability 1 - rate and scaled by
    1 / (1 - rate), so the expectation is unchanged (timm's `drop_path`).
    At inference, and for rate 0, it is the identity.

    Args:
        rate: float in [0, 1), the probability of dropping. Defaults to 0.0.
        seed: int or None, the random seed. Defaults to None.

    Call arguments:
        inputs: tensor (B, ...).
        training: bool.

    Returns:
        Tensor of the input's shape.
    """

    def __init__(self, rate=0.0, seed=None, **kwargs):
        super().__init__(**kwargs)
        self.rate = check_rate("rate", rate)
        self.seed = seed
        self.seed_generator = keras.random.SeedGenerator(seed)
        # No weights to create: built at once (as keras.layers.Dropout is), so a
        # parent whose build() skips it still counts as built (model.quantize
        # refuses a model with an unbuilt layer).
        self.built = True

    def call(self, inputs, training=None):
        if not training or self.rate == 0.0:
            return inputs
        keep = 1.0 - self.rate
        shape = (ops.shape(inputs)[0],) + (1,) * (len(inputs.shape) - 1)
        noise = keras.random.uniform(shape, seed=self.seed_generator)
        mask = ops.cast(noise < keep, inputs.dtype)
        return inputs * mask / ops.cast(keep, inputs.dtype)

    def compute_output_shape(self, input_shape):
        return input_shape

    def get_config(self):
        config = super().get_config()
        config.update({"rate": self.rate, "seed": self.seed})
        return config
