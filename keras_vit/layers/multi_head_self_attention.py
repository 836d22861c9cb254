"""Multi-head self-attention with a fused q/k/v projection (paper eq. 5-8, App. A)."""

import warnings

import keras
import numpy as np
from keras import ops

from keras_vit.errors import ArgumentError
from keras_vit.utils import check_positive_int, check_rate, to_hw


def relative_position_index(grid_size):
    """(N, N) index into a ((2gh-1) * (2gw-1)) table of 2-D offsets (Swin's)."""
    gh, gw = grid_size
    coords = np.stack(np.mgrid[:gh, :gw]).reshape(2, -1)  # (2, N)
    rel = coords[:, :, None] - coords[:, None, :]  # (2, N, N)
    return ((rel[0] + gh - 1) * (2 * gw - 1) + rel[1] + gw - 1).astype("int32")


# cuDNN's fused training kernel takes lengths of this multiple (jax 0.10 asks
# only for even lengths when there is a bias; the H200's jax 0.11.2 refused
# 197 with none, and 64 is the length cuDNN's flash kernels tile by).
CUDNN_TOKEN_MULTIPLE = 64


def _platform():
    """The first device's platform ("cpu", "gpu", "cuda", "tpu"); tests replace it."""
    return keras.distribution.list_devices()[0].split(":")[0]


def padded_attention(query, key, value, bias, padded_tokens, implementation):
    """JAX's dot_product_attention over tokens padded to `padded_tokens`.

    Takes and gives (B, T, heads, hd) with the logits' scale already in
    `query`. The padded keys are masked by `key_value_seq_lengths` (cuDNN's
    padding mask, no (T, T) mask in memory); the padded queries attend to
    the real keys and are sliced off, so neither changes the output or its
    gradient. `implementation="cudnn"` on a GPU; "xla" computes the same on
    any device (the tests' reference).
    """
    # JAX only, so imported here: this is the JAX kernel being chosen, and
    # keras_vit imports without JAX installed.
    import jax

    batch, tokens = query.shape[0], query.shape[1]
    pad = ((0, 0), (0, padded_tokens - tokens), (0, 0), (0, 0))
    query, key, value = (ops.pad(x, pad) for x in (query, key, value))
    if bias is not None:  # (1, heads, T, T)
        extra = padded_tokens - tokens
        bias = ops.pad(bias, ((0, 0), (0, 0), (0, extra), (0, extra)))
    lengths = ops.full((batch,), tokens, dtype="int32")
    out = jax.nn.dot_product_attention(
        query, key, value, bias=bias, scale=1.0,
        key_value_seq_lengths=lengths, implementation=implementation,
    )
    return out[:, :tokens]


@keras.saving.register_keras_serializable(package="keras_vit")
class MultiHeadSelfAttention(keras.layers.Layer):
    """Multi-head self-attention, MSA of paper eq. 2.

    One fused projection U_qkv (D -> 3D, laid out [q | k | v], each head-major
    as in timm) feeds `keras.ops.dot_product_attention` on JAX and PyTorch, so
    their fused kernels (flash attention on GPU) run the default path. On
    TensorFlow, which has no such kernel, the default path is the explicit
    softmax(q k^T) v over (B, heads, T, hd) tensors, which trains faster there
    than Keras' einsum form. The query is scaled by 1/sqrt(D/heads) before the
    product, so float16 logits do not overflow; the softmax runs in float32
    under mixed precision.

    Pass `return_attention_scores=True` to also get the attention weights
    (B, heads, T, T); that path computes them explicitly and is taken only
    when asked for (analysis), for attention dropout while training, or on
    TensorFlow.

    Args:
        num_heads: int, number of heads; must divide the input width.
        attention_dropout_rate: float, dropout on the attention weights while
            training. Defaults to 0.0.
        use_bias: bool, biases in the projections. Defaults to True.
        qkv_bias: bool or None, a bias on the q, k, v projection; None follows
            `use_bias`. Defaults to None.
        relative_grid_size: None, or the (gh, gw) patch grid to learn a 2-D
            relative position bias over (the paper's "relative" ablation).
            Defaults to None.
        num_prefix_tokens: tokens before the patches, which get no relative
            bias. Defaults to 1.
        kernel_initializer: initialiser of the projections. Defaults to
            "glorot_uniform" (the original code's xavier_uniform).
        qk_norm: bool, a LayerNorm over each head's queries and over its keys
            before their product (timm's `qk_norm=True`, ViT-22B). Defaults
            to False.
        layer_norm_epsilon: float, those norms' epsilon. Defaults to 1e-6.

    Call arguments:
        inputs: tensor (B, T, D).
        training: bool, whether attention dropout is active.
        return_attention_scores: bool, also return the weights. Defaults to
            False.

    Returns:
        (B, T, D), or a tuple with the (B, heads, T, T) weights.

    Example:

    >>> msa = MultiHeadSelfAttention(num_heads=4)
    >>> msa(keras.ops.ones((2, 5, 32))).shape
    (2, 5, 32)
    """

    def __init__(
        self,
        num_heads,
        attention_dropout_rate=0.0,
        use_bias=True,
        qkv_bias=None,
        relative_grid_size=None,
        num_prefix_tokens=1,
        kernel_initializer="glorot_uniform",
        qk_norm=False,
        layer_norm_epsilon=1e-6,
        **kwargs,
    ):
        super().__init__(**kwargs)
        self.num_heads = check_positive_int("num_heads", num_heads)
        self.attention_dropout_rate = check_rate(
            "attention_dropout_rate", attention_dropout_rate
        )
        self.use_bias = bool(use_bias)
        self.qkv_bias = self.use_bias if qkv_bias is None else bool(qkv_bias)
        self.relative_grid_size = (
            None
            if relative_grid_size is None
            else to_hw("relative_grid_size", relative_grid_size)
        )
        self.num_prefix_tokens = int(num_prefix_tokens)
        self.kernel_initializer = keras.initializers.get(kernel_initializer)
        self.qk_norm = bool(qk_norm)
        self.layer_norm_epsilon = float(layer_norm_epsilon)
        self.dropout = keras.layers.Dropout(
            self.attention_dropout_rate, dtype=self.dtype_policy
        )

    def build(self, input_shape):
        width = input_shape[-1]
        if width % self.num_heads:
            raise ArgumentError(
                f"The width {width} is not divisible by `num_heads`="
                f"{self.num_heads}; `hidden_size` must be a multiple of "
                f"`num_heads`. Received: input_shape={tuple(input_shape)}"
            )
        self.head_dim = width // self.num_heads
        dense = dict(kernel_initializer=self.kernel_initializer, dtype=self.dtype_policy)
        self.qkv = keras.layers.Dense(3 * width, use_bias=self.qkv_bias, name="qkv", **dense)
        self.qkv.build(input_shape)
        self.output_dense = keras.layers.Dense(width, use_bias=self.use_bias, name="output",
                                               **dense)
        self.output_dense.build(input_shape)
        if self.qk_norm:  # over the head dimension of (B, heads, T, hd)
            for name in ("query_norm", "key_norm"):
                norm = keras.layers.LayerNormalization(
                    epsilon=self.layer_norm_epsilon, dtype=self.dtype_policy, name=name)
                norm.build((None, self.num_heads, None, self.head_dim))
                setattr(self, name, norm)
        if self.relative_grid_size is not None:
            gh, gw = self.relative_grid_size
            self.relative_position_bias_table = self.add_weight(
                name="relative_position_bias_table",
                shape=((2 * gh - 1) * (2 * gw - 1), self.num_heads),
                initializer=keras.initializers.RandomNormal(stddev=0.02),
            )
            self._relative_index = relative_position_index(self.relative_grid_size)

    def relative_position_bias(self):
        """The (1, heads, T, T) bias added to the logits, zero for prefix tokens."""
        n = self._relative_index.shape[0]
        bias = ops.take(
            self.relative_position_bias_table, self._relative_index.reshape(-1), axis=0
        )
        bias = ops.transpose(ops.reshape(bias, (n, n, self.num_heads)), (2, 0, 1))
        p = self.num_prefix_tokens
        bias = ops.pad(bias, ((0, 0), (p, 0), (p, 0)))
        return bias[None]  # (1, heads, T, T)

    @staticmethod
    def _flash(training):
        """Keras' choice (None), except while training with JAX on a GPU: Keras checks
        cuDNN flash attention for inference only, and cuDNN's training kernel refuses
        lengths such as 197 ("Unsupported sequence length", an H200 with jax 0.11.2,
        under remat). TPUs keep Keras' choice (Splash attention)."""
        if not training or keras.backend.backend() != "jax":
            return None
        return False if _platform() in ("gpu", "cuda") else None

    def _padded_plan(self, training, tokens, dtype):
        """The token count to pad to for cuDNN's fused training kernel, or None.

        Only while training with JAX on a GPU in float16/bfloat16 (cuDNN's
        fused attention takes no float32) with a head width it accepts (a
        multiple of 8, at most 256); elsewhere `_flash` and Keras choose.
        """
        if not training or keras.backend.backend() != "jax":
            return None
        if _platform() not in ("gpu", "cuda"):
            return None
        if keras.backend.standardize_dtype(dtype) not in ("float16", "bfloat16"):
            return None
        if not isinstance(tokens, int):  # a symbolic length: nothing to pad to
            return None
        if self.head_dim % 8 or self.head_dim > 256:
            return None
        return -(-tokens // CUDNN_TOKEN_MULTIPLE) * CUDNN_TOKEN_MULTIPLE

    def call(self, inputs, training=None, return_attention_scores=False):
        shape = ops.shape(inputs)
        batch, tokens, width = shape[0], shape[1], inputs.shape[-1]
        qkv = self.qkv(inputs)  # (B, T, 3D)
        qkv = ops.reshape(qkv, (batch, tokens, 3, self.num_heads, self.head_dim))
        qkv = ops.transpose(qkv, (2, 0, 3, 1, 4))  # (3, B, heads, T, hd), as timm
        # Unstacked, not indexed: on TensorFlow without XLA the gradient of three
        # indexings is three zero-filled (3, B, heads, T, hd) tensors summed
        # (StridedSliceGrad), of an unstack one stack: the CIFAR-sized step trained
        # 27 -> 47 img/s for it on a 2-core AVX-512 EPYC (benchmarks/RESULTS.md).
        q, k, v = ops.unstack(qkv, 3, axis=0)  # each (B, heads, T, hd)
        if self.qk_norm:
            q, k = self.query_norm(q), self.key_norm(k)
        q = q * ops.cast(1.0 / np.sqrt(self.head_dim), q.dtype)
        bias = None
        if self.relative_grid_size is not None:
            bias = ops.cast(self.relative_position_bias(), q.dtype)

        use_dropout = training and self.attention_dropout_rate > 0
        # TensorFlow has no fused attention kernel (Keras' TF dot_product_attention
        # is these products, with a transpose of q, k, v and the output more): the
        # explicit form trains ~25 % faster there. JAX and torch take the fused one.
        explicit = keras.backend.backend() == "tensorflow"
        if return_attention_scores or use_dropout or explicit:
            logits = ops.matmul(q, ops.swapaxes(k, -1, -2))  # (B, heads, T, T)
            logits = ops.cast(logits, "float32")
            if bias is not None:
                logits = logits + ops.cast(bias, "float32")
            weights = ops.cast(ops.softmax(logits, axis=-1), v.dtype)
            out = ops.matmul(self.dropout(weights, training=training), v)
            out = ops.swapaxes(out, 1, 2)  # (B, T, heads, hd)
        else:
            weights = None
            out = None
            padded = self._padded_plan(training, tokens, q.dtype)
            if padded is not None:
                try:
                    out = padded_attention(
                        ops.swapaxes(q, 1, 2), ops.swapaxes(k, 1, 2),
                        ops.swapaxes(v, 1, 2), bias, padded, implementation="cudnn",
                    )
                except NotImplementedError as error:  # jax's cuDNN checks, at tracing
                    # this GPU, cuDNN or shape has no fused kernel: XLA's path, as before
                    warnings.warn(f"cuDNN attention refused ({error}); XLA's is used")
        if out is None:
            out = ops.dot_product_attention(  # takes and gives (B, T, heads, hd)
                ops.swapaxes(q, 1, 2), ops.swapaxes(k, 1, 2), ops.swapaxes(v, 1, 2),
                bias=bias, scale=1.0, flash_attention=self._flash(training),
            )
        out = ops.reshape(out, (batch, tokens, width))  # (B, T, D)
        out = self.output_dense(out)
        if return_attention_scores:
            return out, weights
        return out

    def compute_output_shape(self, input_shape):
        return input_shape

    def get_config(self):
        config = super().get_config()
        config.update(
            {
                "num_heads": self.num_heads,
                "attention_dropout_rate": self.attention_dropout_rate,
                "use_bias": self.use_bias,
                "qkv_bias": self.qkv_bias,
                "relative_grid_size": self.relative_grid_size,
                "num_prefix_tokens": self.num_prefix_tokens,
                "kernel_initializer": keras.initializers.serialize(
                    self.kernel_initializer
                ),
                "qk_norm": self.qk_norm,
                "layer_norm_epsilon": self.layer_norm_epsilon,
            }
        )
        return config
