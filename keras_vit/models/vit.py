"""The Vision Transformer as a Keras functional model (paper eq. 1-4)."""

import warnings

import keras

from keras_vit import compat
from keras_vit.errors import ArgumentError
from keras_vit.layers import (
    PatchEncoder,
    Patches,
    PositionEmbedding,
    TokenPooling,
    TransformerBlock,
)
from keras_vit.layers.map_head import MAPHead
from keras_vit.models import names
from keras_vit.models.config import ViTConfig
from keras_vit.models.resnet_stem import resnet_stem
from keras_vit.models.variants import variant_config
from keras_vit.utils import auto_jit_compile, check_divisible_image_size


@keras.saving.register_keras_serializable(package="keras_vit")
class VisionTransformer(keras.Model):
    """A Vision Transformer built from a `ViTConfig`.

    A functional model with a named input "images" (B, H, W, C) taking pixel
    values in [0, 255] (normalised inside unless `include_preprocessing` is
    False). Outputs logits (B, num_classes); with `include_top=False` the
    pooled features (B, D) (after the pre-logits layer when
    `representation_size` is set, like HF ViTModel's pooler output), or every
    token (B, T, D) when pooling is None.

    Layer names are stable (converters look layers up by name):
    "preprocessing", the hybrid stem's "stem_*"/"stages_*", "patches",
    "patch_embedding" (Dense, kernel (P*P*C, D): a Conv2D kernel reshaped),
    "patch_encoder", "transformer_block_{i}", "encoder_norm", "pooling",
    "pre_norm" (CLIP), "pre_logits", "head".

    Args:
        config: a `ViTConfig`, a dict of its fields, or None for the default.
        dtype: a dtype policy name or object (e.g. "mixed_bfloat16"). Defaults
            to Keras' global policy.
        name: model name. Defaults to "vit".

    Example:

    >>> model = VisionTransformer(ViTConfig(image_size=32, patch_size=4,
    ...     hidden_size=32, num_layers=2, num_heads=2, mlp_dim=64,
    ...     num_classes=10))
    >>> model(keras.ops.zeros((1, 32, 32, 3))).shape
    (1, 10)
    """

    def __init__(self, config=None, dtype=None, name="vit", **kwargs):
        if config is None:
            config = ViTConfig()
        elif isinstance(config, dict):
            config = ViTConfig.from_dict(config)
        elif not isinstance(config, ViTConfig):
            raise ArgumentError(
                "Received an invalid value for argument `config`, expected a "
                f"ViTConfig or a dict. Received: config={config!r}"
            )
        policy = keras.dtype_policies.get(dtype) if dtype else keras.config.dtype_policy()
        hw = (None, None) if config.dynamic_image_size else config.image_hw
        with keras.RematScope(mode=None):  # only the blocks are rematerialised (_forward)
            inputs = keras.Input(hw + (config.num_channels,), name=names.IMAGES)
        outputs = _forward(inputs, config, policy)
        with keras.RematScope(mode=None):
            super().__init__(inputs=inputs, outputs=outputs, name=name, **kwargs)
        self.dtype_policy = policy  # functional models ignore a `dtype` argument
        self.config = config

    def get_config(self):
        config = {
            "config": self.config.to_dict(),
            "dtype": keras.dtype_policies.serialize(self.dtype_policy),
            "name": self.name,
            "trainable": self.trainable,
        }
        quantized = _quantized_layers(self)
        if quantized:  # after model.quantize(...): which layers, in which mode
            config["quantized_layers"] = quantized
        return config

    def fit(self, x=None, *args, **kwargs):
        self._check_image_size(x)
        validation = kwargs.get("validation_data")
        if isinstance(validation, (tuple, list)) and validation:
            self._check_image_size(validation[0], "validation_data")
        return super().fit(x, *args, **kwargs)

    def evaluate(self, x=None, *args, **kwargs):
        self._check_image_size(x)
        return super().evaluate(x, *args, **kwargs)

    def predict(self, x, *args, **kwargs):
        self._check_image_size(x)
        return super().predict(x, *args, **kwargs)

    def _check_image_size(self, x, name="x"):
        """A dynamic model's size check, on the arrays given, before Keras' compiled step:
        TensorFlow relaxes the traced shape after a few sizes, and then an image the patch
        does not divide fails inside the graph's reshape instead of in `Patches`.
        Data sets and generators are read inside Keras' step: `Patches` checks those."""
        if not self.config.dynamic_image_size or x is None:
            return
        for images in keras.tree.flatten(x):  # an array, or {"images": array}
            if len(getattr(images, "shape", ())) == 4:
                check_divisible_image_size(tuple(images.shape[1:3]), self.config.patch_size,
                                           name=name)

    def _resolve_auto_jit_compile(self):
        """`jit_compile="auto"`: keras_vit's one policy, `keras_vit.utils.auto_jit_compile`
        (XLA on for TensorFlow on a CPU too, where Keras leaves it off). Overrides Keras'
        private hook: see `keras_vit.compat.AUTO_JIT_HOOK`."""
        return auto_jit_compile(self)

    @classmethod
    def from_config(cls, config, custom_objects=None):
        config = dict(config)
        if isinstance(config.get("dtype"), dict):
            config["dtype"] = keras.dtype_policies.deserialize(config["dtype"])
        quantized = config.pop("quantized_layers", None) or {}
        model = cls(**config)
        _requantize(model, quantized)
        return model


def _quantized_layers(model):
    """{layer path: quantization mode} of the layers `model.quantize` changed."""
    return {
        layer.path: layer.dtype_policy.quantization_mode
        for layer in compat.all_layers(model)
        if getattr(layer.dtype_policy, "quantization_mode", None)
    }


def _requantize(model, quantized):
    """Quantizes the layers a saved config names, so the saved weights (int8
    kernels and scales) fit when `.keras` loading fills them in."""
    for mode in sorted(set(quantized.values())):
        with warnings.catch_warnings():  # "Layer Dropout does not have a quantize method"
            warnings.simplefilter("ignore", UserWarning)
            model.quantize(mode, filters=lambda layer: quantized.get(layer.path) == mode)
    missing = sorted(set(quantized) - set(_quantized_layers(model)))
    if missing:
        raise ValueError(
            f"Could not re-quantize the layers {missing} of the saved model "
            f"{model.name!r}: no layer of the rebuilt model has that path."
        )


def _forward(images, config, policy):
    """The whole forward pass, top to bottom.

    Under a `keras.RematScope` only the transformer blocks are rematerialised
    (each as a whole, see `TransformerBlock`); the stem and the head, cheap and
    called with flags Keras' per-layer remat cannot trace on JAX, are built
    outside it.
    """
    with keras.RematScope(mode=None):
        x, position_embedding, shared = _embed(images, config, policy)
    c = config
    absolute = c.position_embedding not in ("relative", "none")
    for i in range(c.num_layers):
        if shared is not None:
            x = shared(x)
        elif absolute and c.position_embedding_placement == "every_layer":
            with keras.RematScope(mode=None):
                x = position_embedding(names.position_embedding_name(i))(x)
        x = TransformerBlock(
            num_heads=c.num_heads,
            mlp_dim=c.mlp_dim,
            dropout_rate=c.dropout_rate,
            attention_dropout_rate=c.attention_dropout_rate,
            drop_path_rate=c.drop_path_rate * i / max(c.num_layers - 1, 1),
            layer_norm_epsilon=c.layer_norm_epsilon,
            gelu_approximate=c.gelu_approximate,
            relative_grid_size=c.grid_size if c.position_embedding == "relative" else None,
            num_prefix_tokens=c.num_prefix_tokens,
            layer_scale_init_value=c.layer_scale_init_value,
            qkv_bias=c.qkv_bias,
            qk_norm=c.qk_norm,
            quick_gelu=c.quick_gelu,
            dtype=policy,
            name=names.block_name(i),
        )(x)  # (B, T, D) = z_l
    with keras.RematScope(mode=None):
        return _head(x, config, policy)


def _embed(images, config, policy):
    """Pixels to the first block's input z_0; also the position embedding maker
    and the shared embedding for the every-layer placements."""
    c = config
    x = images
    if c.include_preprocessing:
        mean = [m * 255.0 for m in c.normalization_mean]
        std = [s * 255.0 for s in c.normalization_std]
        x = keras.layers.Rescaling(
            scale=[1.0 / s for s in std] if len(std) > 1 else 1.0 / std[0],
            offset=[-m / s for m, s in zip(mean, std)] if len(std) > 1 else -mean[0] / std[0],
            dtype=policy,
            name=names.PREPROCESSING,
        )(x)  # (B, H, W, C)
    if c.hybrid_layers is not None:
        x = resnet_stem(x, c.hybrid_layers, c.hybrid_width, policy)  # (B, H/16, W/16, C')
    dynamic = c.dynamic_image_size  # then the grid stays 2-D until the encoder reads it
    x = Patches(c.patch_size, flatten=not dynamic, dtype=policy, name=names.PATCHES)(
        x
    )  # (B, N, P*P*C), or (B, gh, gw, P*P*C) when dynamic
    x = keras.layers.Dense(
        c.hidden_size, use_bias=not c.pre_norm, kernel_initializer="lecun_normal",
        dtype=policy, name=names.PATCH_EMBEDDING,
    )(x)  # (B, N, D) = x_p E
    absolute = c.position_embedding not in ("relative", "none")
    at_stem = absolute and c.position_embedding_placement == "stem"
    x = PatchEncoder(
        c.grid_size,
        class_token=c.class_token,
        position_embedding=c.position_embedding if at_stem else "none",
        distillation_token=c.distillation_token,
        num_register_tokens=c.num_register_tokens,
        dynamic=dynamic,
        resample_method=c.resample_method,
        resample_antialias=c.resample_antialias,
        dtype=policy,
        name=names.PATCH_ENCODER,
    )(x)  # (B, T, D) = z_0, T = prefix + N
    x = keras.layers.Dropout(c.dropout_rate, dtype=policy, name="embedding_dropout")(x)
    if c.pre_norm:  # CLIP's LayerNorm before the encoder
        x = keras.layers.LayerNormalization(
            epsilon=c.layer_norm_epsilon, dtype=policy, name=names.PRE_NORM)(x)

    def position_embedding(name):
        return PositionEmbedding(
            c.grid_size, c.position_embedding, c.num_prefix_tokens, dtype=policy, name=name
        )

    shared = None
    if absolute and c.position_embedding_placement == "every_layer_shared":
        shared = position_embedding(names.SHARED_POSITION_EMBEDDING)
    return x, position_embedding, shared


def _head(x, config, policy):
    """The last block's tokens to logits (or features, or every token)."""
    c = config
    norm = keras.layers.LayerNormalization(
        epsilon=c.layer_norm_epsilon, dtype=policy, name=names.ENCODER_NORM
    )
    if not c.fc_norm:
        x = norm(x)
    if c.pooling is None:
        return x  # (B, T, D)
    tokens = x
    if c.pooling == "map":  # big_vision's attention pooling over every token
        x = MAPHead(c.num_heads, c.mlp_dim, c.layer_norm_epsilon, c.gelu_approximate,
                    dtype=policy, name=names.MAP_HEAD)(x)  # (B, D)
    else:
        x = TokenPooling(c.pooling, c.num_prefix_tokens, dtype=policy, name=names.POOLING)(x)  # (B, D)
    if c.fc_norm:
        x = norm(x)  # timm's fc_norm: the final norm after pooling
    if c.representation_size is not None:  # the pre-logits features (HF ViTModel's pooler)
        x = keras.layers.Dense(
            c.representation_size, activation="tanh", dtype=policy, name=names.PRE_LOGITS
        )(x)
    if not c.include_top:
        return x
    # Zero-initialised head (paper section 3.2); float32 logits under mixed precision.
    logits = keras.layers.Dense(
        c.num_classes,
        use_bias=c.head_bias,
        kernel_initializer="zeros",
        bias_initializer="zeros",
        dtype="float32",
        name=names.HEAD,
    )(x)  # (B, K)
    if not c.distilled_head:
        return logits
    # DeiT: a second head on the distillation token; inference averages both (timm).
    dist = TokenPooling("distillation", c.num_prefix_tokens, dtype=policy,
                        name=names.DISTILLATION_POOLING)(tokens)  # (B, D)
    dist = keras.layers.Dense(c.num_classes, kernel_initializer="zeros",
                              bias_initializer="zeros", dtype="float32", name=names.HEAD_DIST)(dist)
    return keras.layers.Average(dtype="float32", name=names.HEAD_AVERAGE)([logits, dist])  # (B, K)


def ViT(config=None, dtype=None, name=None, **fields):
    """Builds a Vision Transformer.

    Args:
        config: a `ViTConfig`, a dict of its fields, a variant name such as
            "B/16" or "ViT-B/16", or None (ViT-B/16's config).
        dtype: dtype policy, e.g. "mixed_bfloat16". Defaults to the global one.
        name: model name. Defaults to "vit".
        **fields: `ViTConfig` fields that override the config's.

    Returns:
        A `VisionTransformer` (a `keras.Model`).

    Example:

    >>> model = ViT("Ti/16", image_size=32, num_classes=10)
    """
    if config is None:
        config = ViTConfig()
    elif isinstance(config, str):
        config = variant_config(config)
    elif isinstance(config, dict):
        config = ViTConfig.from_dict(config)
    elif not isinstance(config, ViTConfig):
        raise ArgumentError(
            "Received an invalid value for argument `config`, expected a "
            "ViTConfig, a dict or a variant name like 'B/16'. "
            f"Received: config={config!r}"
        )
    if fields:
        config = config.replace(**fields)
    return VisionTransformer(config, dtype=dtype, name=name or "vit")
