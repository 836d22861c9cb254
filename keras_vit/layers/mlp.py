"""The transformer's two-layer GELU MLP (paper section 3.1)."""

import keras
from keras import ops

from keras_vit.errors import ArgumentError
from keras_vit.utils import check_positive_int, check_rate

SQRT_HALF = 0.7071067811865476


def exact_gelu(x):
    """GELU(x) = x * Phi(x) = x / 2 * (1 + erf(x / sqrt 2)), as torch and timm compute it.

    On TensorFlow written out rather than `keras.ops.gelu(approximate=False)`,
    which is 0.5 x erfc(-x / sqrt 2): XLA evaluates that erfc form slower on a
    CPU (forward and backward of an (8320, 768) tensor 15-52 ms against 12-17,
    benchmarks/gelu_forms.py; the CIFAR-sized training step 1.045x faster,
    benchmarks/RESULTS.md, 2-core AMD EPYC), and tf2onnx cannot convert Erfc;
    TFLite's converter still finds its GELU in this arrangement (0.5 * x * (1 +
    erf(...)); x * (0.5 + 0.5 * erf(...)) it leaves as a Flex op the runtime
    lacks). The same function to float32 rounding. JAX and torch keep Keras'
    gelu: on JAX both forms trained the CIFAR-sized model at one speed (58.06
    and 57.84 img/s), and torch's is its own erf kernel.
    """
    if keras.backend.backend() != "tensorflow":
        return ops.gelu(x, approximate=False)
    one = ops.cast(1.0, x.dtype)
    return ops.cast(0.5, x.dtype) * x * (one + ops.erf(x * ops.cast(SQRT_HALF, x.dtype)))


@keras.saving.register_keras_serializable(package="keras_vit")
class MLP(keras.layers.Layer):
    """Dense(mlp_dim) - GELU - Dropout - Dense(D) - Dropout.

    D is the input width. GELU is exact by default (timm, HF); the original
    JAX code uses flax's tanh approximation (`gelu_approximate=True`).

    Args:
        mlp_dim: int, the hidden width. 
        dropout_rate: float, dropout after each Dense while training.
            Defaults to 0.0.
        gelu_approximate: bool, tanh-approximate GELU. Defaults to False.
        quick_gelu: bool, OpenAI CLIP's QuickGELU, x * sigmoid(1.702 x),
            instead of GELU (not with `gelu_approximate`). Defaults to False.
        kernel_initializer: Defaults to "glorot_uniform".
        bias_initializer: Defaults to a normal with stddev 1e-6 (the original
            code's).

    Call arguments:
        inputs: tensor (..., D).
        training: bool.

    Returns:
        Tensor of the input's shape.

    Example:

    >>> MLP(64)(keras.ops.ones((2, 5, 32))).shape
    (2, 5, 32)
    """

    def __init__(
        self,
        mlp_dim,
        dropout_rate=0.0,
        gelu_approximate=False,
        kernel_initializer="glorot_uniform",
        bias_initializer=None,
        quick_gelu=False,
        **kwargs,
    ):
        super().__init__(**kwargs)
        self.mlp_dim = check_positive_int("mlp_dim", mlp_dim)
        self.dropout_rate = check_rate("dropout_rate", dropout_rate)
        self.gelu_approximate = bool(gelu_approximate)
        self.quick_gelu = bool(quick_gelu)
        if self.quick_gelu and self.gelu_approximate:
            raise ArgumentError(
                "Received an invalid value for argument `quick_gelu`: QuickGELU replaces "
                "GELU, so it has no tanh form. Received: quick_gelu=True, "
                "gelu_approximate=True"
            )
        self.kernel_initializer = keras.initializers.get(kernel_initializer)
        self.bias_initializer = keras.initializers.get(
            bias_initializer or keras.initializers.RandomNormal(stddev=1e-6)
        )
        self.dropout = keras.layers.Dropout(self.dropout_rate, dtype=self.dtype_policy)

    def build(self, input_shape):
        dense = dict(
            kernel_initializer=self.kernel_initializer,
            bias_initializer=self.bias_initializer,
            dtype=self.dtype_policy,
        )
        self.dense_1 = keras.layers.Dense(self.mlp_dim, name="dense_1", **dense)
        self.dense_1.build(input_shape)
        self.dense_2 = keras.layers.Dense(input_shape[-1], name="dense_2", **dense)
        self.dense_2.build(tuple(input_shape[:-1]) + (self.mlp_dim,))

    def call(self, inputs, training=None):
        x = self.dense_1(inputs)
        if self.quick_gelu:
            x = x * ops.sigmoid(1.702 * x)
        else:
            x = ops.gelu(x, approximate=True) if self.gelu_approximate else exact_gelu(x)
        x = self.dropout(x, training=training)
        x = self.dense_2(x)
        return self.dropout(x, training=training)

    def compute_output_shape(self, input_shape):
        return input_shape

    def get_config(self):
        config = super().get_config()
        config.update(
            {
                "mlp_dim": self.mlp_dim,
                "dropout_rate": self.dropout_rate,
                "gelu_approximate": self.gelu_approximate,
                "kernel_initializer": keras.initializers.serialize(
                    self.kernel_initializer
                ),
                "bias_initializer": keras.initializers.serialize(self.bias_initializer),
                "quick_gelu": self.quick_gelu,
            }
        )
        return config
