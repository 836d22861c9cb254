"""The pre-norm transformer encoder block (paper eq. 2-3)."""

import keras
from keras import ops

from keras_vit.errors import ArgumentError
from keras_vit.layers.drop_path import DropPath
from keras_vit.layers.mlp import MLP
from keras_vit.layers.multi_head_self_attention import MultiHeadSelfAttention
from keras_vit.utils import check_positive_int, check_rate


@keras.saving.register_keras_serializable(package="keras_vit")
class TransformerBlock(keras.layers.Layer):
    """One encoder layer: z' = MSA(LN(z)) + z;  z = MLP(LN(z')) + z'.

    Dropout follows the attention output and each MLP Dense (the original
    code's placement); stochastic depth (`DropPath`) drops each residual
    branch per sample. LayerNorm runs in float32 under mixed precision.

    Args:
        num_heads: int, attention heads.
        mlp_dim: int, MLP hidden width.
        dropout_rate: float. Defaults to 0.0.
        attention_dropout_rate: float. Defaults to 0.0.
        drop_path_rate: float, stochastic depth rate of this block.
            Defaults to 0.0.
        layer_norm_epsilon: float. Defaults to 1e-6 (original, timm).
        gelu_approximate: bool. Defaults to False.
        relative_grid_size: None or (gh, gw) for a relative position bias.
            Defaults to None.
        num_prefix_tokens: int. Defaults to 1.
        layer_scale_init_value: None or float; with a float, each branch is
            scaled per channel by a learned gamma starting there before its
            residual sum (layer scale of CaiT / DeiT III, timm
            `init_values`). Defaults to None.
        qkv_bias: bool, a bias on the q, k, v projection (timm's
            `qkv_bias`). Defaults to True.
        qk_norm: bool, LayerNorms on each head's queries and keys (timm's
            `qk_norm`). Defaults to False.
        quick_gelu: bool, the MLP's activation is OpenAI CLIP's QuickGELU,
            x * sigmoid(1.702 x), instead of GELU. Defaults to False.

    Rematerialisation: a block created under `keras.RematScope` (any mode
    that selects it) is recomputed as a whole in the backward pass, with
    `training` bound as a Python value (block-level gradient checkpointing, as
    timm's `set_grad_checkpointing` and big_vision's `remat` of each encoder
    block). Keras' own per-layer remat traces every call argument, which fails
    on JAX (Dropout branches on `training`) and TensorFlow (`custom_gradient`
    refuses keyword arguments in a compiled step), and would checkpoint each
    sub-layer separately, saving little memory; the sub-layers are therefore
    built outside the scope.

    Call arguments:
        inputs: tensor (B, T, D).
        training: bool.
        return_attention_scores: bool; if True returns (outputs, weights)
            with weights (B, heads, T, T). Defaults to False.

    Returns:
        Tensor (B, T, D), or a tuple with the attention weights.

    Example:

    >>> block = TransformerBlock(num_heads=4, mlp_dim=64)
    >>> block(keras.ops.ones((2, 5, 32))).shape
    (2, 5, 32)
    """

    def __init__(
        self,
        num_heads,
        mlp_dim,
        dropout_rate=0.0,
        attention_dropout_rate=0.0,
        drop_path_rate=0.0,
        layer_norm_epsilon=1e-6,
        gelu_approximate=False,
        relative_grid_size=None,
        num_prefix_tokens=1,
        layer_scale_init_value=None,
        qkv_bias=True,
        qk_norm=False,
        quick_gelu=False,
        **kwargs,
    ):
        super().__init__(**kwargs)
        self.num_heads = check_positive_int("num_heads", num_heads)
        self.mlp_dim = check_positive_int("mlp_dim", mlp_dim)
        self.dropout_rate = check_rate("dropout_rate", dropout_rate)
        self.attention_dropout_rate = check_rate(
            "attention_dropout_rate", attention_dropout_rate
        )
        self.drop_path_rate = check_rate("drop_path_rate", drop_path_rate)
        self.layer_norm_epsilon = float(layer_norm_epsilon)
        self.gelu_approximate = bool(gelu_approximate)
        self.relative_grid_size = (
            None if relative_grid_size is None else tuple(relative_grid_size)
        )
        self.num_prefix_tokens = int(num_prefix_tokens)
        self.qkv_bias = bool(qkv_bias)
        self.qk_norm = bool(qk_norm)
        self.quick_gelu = bool(quick_gelu)
        if layer_scale_init_value is not None and not layer_scale_init_value > 0:
            raise ArgumentError(
                "Received an invalid value for argument `layer_scale_init_value`, "
                "expected None or a positive float. Received: "
                f"layer_scale_init_value={layer_scale_init_value!r}"
            )
        self.layer_scale_init_value = (
            None if layer_scale_init_value is None else float(layer_scale_init_value)
        )

        with keras.RematScope(mode=None):  # the block is rematerialised whole
            self._build_sublayers()

    def _build_sublayers(self):
        policy = self.dtype_policy
        self.layer_norm_1 = keras.layers.LayerNormalization(
            epsilon=self.layer_norm_epsilon, dtype=policy, name="layer_norm_1"
        )
        self.attention = MultiHeadSelfAttention(
            num_heads=self.num_heads,
            attention_dropout_rate=self.attention_dropout_rate,
            relative_grid_size=self.relative_grid_size,
            num_prefix_tokens=self.num_prefix_tokens,
            qkv_bias=self.qkv_bias,
            qk_norm=self.qk_norm,
            layer_norm_epsilon=self.layer_norm_epsilon,
            dtype=policy,
            name="attention",
        )
        self.attention_dropout = keras.layers.Dropout(self.dropout_rate, dtype=policy)
        self.layer_norm_2 = keras.layers.LayerNormalization(
            epsilon=self.layer_norm_epsilon, dtype=policy, name="layer_norm_2"
        )
        self.mlp = MLP(
            self.mlp_dim,
            dropout_rate=self.dropout_rate,
            gelu_approximate=self.gelu_approximate,
            quick_gelu=self.quick_gelu,
            dtype=policy,
            name="mlp",
        )
        self.drop_path = DropPath(self.drop_path_rate, dtype=policy)

    def build(self, input_shape):
        with keras.RematScope(mode=None):  # sub-layers made here too (see above)
            self._build(input_shape)

    def _build(self, input_shape):
        self.layer_norm_1.build(input_shape)
        self.attention.build(input_shape)
        self.layer_norm_2.build(input_shape)
        self.mlp.build(input_shape)
        if self.layer_scale_init_value is not None:
            init = keras.initializers.Constant(self.layer_scale_init_value)
            self.layer_scale_1 = self.add_weight(
                name="layer_scale_1", shape=(input_shape[-1],), initializer=init
            )
            self.layer_scale_2 = self.add_weight(
                name="layer_scale_2", shape=(input_shape[-1],), initializer=init
            )

    def rematerialized_call(self, layer_call, *args, **kwargs):
        """The whole block under `keras.remat`, with its flags bound (see above)."""
        call = super().rematerialized_call(layer_call, *args, **kwargs)
        if call is layer_call:  # this scope's mode does not select the block
            return layer_call

        def block(inputs, **flags):
            if flags.get("training") and self._stochastic():
                # The recomputation would draw new masks: gradients of other masks.
                raise ArgumentError(
                    f"Received an invalid value for argument `remat` of {self.name}: "
                    "rematerialisation needs a block without dropout or stochastic "
                    "depth (the recomputed forward pass would draw new random masks), "
                    "expected dropout_rate, attention_dropout_rate and drop_path_rate "
                    f"0. Received: dropout_rate={self.dropout_rate}, "
                    f"attention_dropout_rate={self.attention_dropout_rate}, "
                    f"drop_path_rate={self.drop_path_rate}"
                )
            return keras.remat(lambda x: layer_call(x, **flags))(inputs)

        return block

    def _stochastic(self):
        return any((self.dropout_rate, self.attention_dropout_rate, self.drop_path_rate))

    def call(self, inputs, training=None, return_attention_scores=False):
        x = self.layer_norm_1(inputs)
        x = self.attention(
            x, training=training, return_attention_scores=return_attention_scores
        )
        if return_attention_scores:
            x, weights = x
        x = self.attention_dropout(x, training=training)
        if self.layer_scale_init_value is not None:
            x = x * ops.cast(self.layer_scale_1, x.dtype)
        x = inputs + self.drop_path(x, training=training)  # z'
        y = self.mlp(self.layer_norm_2(x), training=training)
        if self.layer_scale_init_value is not None:
            y = y * ops.cast(self.layer_scale_2, y.dtype)
        outputs = x + self.drop_path(y, training=training)  # z
        if return_attention_scores:
            return outputs, weights
        return outputs

    def compute_output_shape(self, input_shape):
        return input_shape

    def get_config(self):
        config = super().get_config()
        config.update(
            {
                "num_heads": self.num_heads,
                "mlp_dim": self.mlp_dim,
                "dropout_rate": self.dropout_rate,
                "attention_dropout_rate": self.attention_dropout_rate,
                "drop_path_rate": self.drop_path_rate,
                "layer_norm_epsilon": self.layer_norm_epsilon,
                "gelu_approximate": self.gelu_approximate,
                "relative_grid_size": self.relative_grid_size,
                "num_prefix_tokens": self.num_prefix_tokens,
                "layer_scale_init_value": self.layer_scale_init_value,
                "qkv_bias": self.qkv_bias,
                "qk_norm": self.qk_norm,
                "quick_gelu": self.quick_gelu,
            }
        )
        return config
