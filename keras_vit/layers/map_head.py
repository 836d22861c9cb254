"""Multi-head attention pooling (big_vision's MAP head, `pool_type="map"`)."""

import keras
from keras import ops

from keras_vit.errors import ArgumentError
from keras_vit.layers.mlp import MLP
from keras_vit.utils import check_positive_int


@keras.saving.register_keras_serializable(package="keras_vit")
class MAPHead(keras.layers.Layer):
    """Pools tokens by attention from one learned probe (big_vision `MAPHead`).

    A learned probe (1, 1, D) attends over all tokens (its own query, key and
    value projections), then a pre-norm MLP adds a residual:
    y = attn(probe, x); y = y + MLP(LN(y)); the output is y's one token. This
    is big_vision's `pool_type="map"` (SigLIP and others; Lee et al. 2019's
    multi-head attention pooling) and timm's `global_pool="map"`
    (`AttentionPoolLatent`).

    Args:
        num_heads: int, attention heads; must divide the width.
        mlp_dim: int, the MLP's hidden width.
        layer_norm_epsilon: float. Defaults to 1e-6.
        gelu_approximate: bool, tanh GELU in the MLP. Defaults to False.

    Call arguments:
        tokens: tensor (B, T, D).

    Returns:
        Tensor (B, D).

    Example:

    >>> head = MAPHead(num_heads=2, mlp_dim=64)
    >>> head(keras.ops.ones((2, 5, 32))).shape
    (2, 32)
    """

    def __init__(self, num_heads, mlp_dim, layer_norm_epsilon=1e-6, gelu_approximate=False,
                 **kwargs):
        super().__init__(**kwargs)
        self.num_heads = check_positive_int("num_heads", num_heads)
        self.mlp_dim = check_positive_int("mlp_dim", mlp_dim)
        self.layer_norm_epsilon = float(layer_norm_epsilon)
        self.gelu_approximate = bool(gelu_approximate)
        policy = self.dtype_policy
        self.layer_norm = keras.layers.LayerNormalization(
            epsilon=self.layer_norm_epsilon, dtype=policy, name="layer_norm")
        self.mlp = MLP(self.mlp_dim, gelu_approximate=self.gelu_approximate, dtype=policy,
                       name="mlp")

    def build(self, input_shape):
        width = input_shape[-1]
        if width % self.num_heads:
            raise ArgumentError(
                f"The width {width} is not divisible by `num_heads`={self.num_heads}. "
                f"Received: input_shape={tuple(input_shape)}"
            )
        self.probe = self.add_weight(name="probe", shape=(1, 1, width),
                                     initializer="glorot_uniform")
        dense = dict(dtype=self.dtype_policy)
        self.query = keras.layers.Dense(width, name="query", **dense)
        self.key = keras.layers.Dense(width, name="key", **dense)
        self.value = keras.layers.Dense(width, name="value", **dense)
        self.output_dense = keras.layers.Dense(width, name="output", **dense)
        for layer in (self.query, self.key, self.value, self.output_dense):
            layer.build(input_shape)
        self.layer_norm.build((input_shape[0], 1, width))
        self.mlp.build((input_shape[0], 1, width))

    def call(self, tokens):
        batch, width = ops.shape(tokens)[0], ops.shape(tokens)[-1]
        heads, head_dim = self.num_heads, tokens.shape[-1] // self.num_heads
        probe = ops.broadcast_to(ops.cast(self.probe, tokens.dtype), (batch, 1, width))
        q = ops.reshape(self.query(probe), (batch, 1, heads, head_dim))  # (B, 1, h, hd)
        k = ops.reshape(self.key(tokens), (batch, -1, heads, head_dim))  # (B, T, h, hd)
        v = ops.reshape(self.value(tokens), (batch, -1, heads, head_dim))
        y = ops.dot_product_attention(q, k, v)  # (B, 1, h, hd)
        y = self.output_dense(ops.reshape(y, (batch, 1, width)))  # (B, 1, D)
        y = y + self.mlp(self.layer_norm(y))
        return y[:, 0]  # (B, D)

    def compute_output_shape(self, input_shape):
        return (input_shape[0], input_shape[-1])

    def get_config(self):
        config = super().get_config()
        config.update({
            "num_heads": self.num_heads,
            "mlp_dim": self.mlp_dim,
            "layer_norm_epsilon": self.layer_norm_epsilon,
            "gelu_approximate": self.gelu_approximate,
        })
        return config
