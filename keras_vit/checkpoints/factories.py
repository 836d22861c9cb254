"""The named factories (`ViTBase16`, ...): a variant's config, built at random
init or, with `weights=`, through the one loading pipeline (`convert.load`).

They sit above `keras_vit.models` (which knows nothing about weights files),
as keras.applications' builders call one weights loader.
"""

from keras_vit.checkpoints.convert import load
from keras_vit.errors import ArgumentError
from keras_vit.models.variants import variant_config
from keras_vit.models.vit import ViT as _build
from keras_vit.models.vit import VisionTransformer

_DOCSTRING = """Builds {title} ({source}).

    {layers} layers, width {hidden_size}, MLP {mlp_dim}, {num_heads} heads, {patch}.
    Random initialisation with a zero head unless `weights` names a checkpoint.

    Args:
        num_classes: int, outputs of the head. None means 1000 at random
            init, and the checkpoint's own head with `weights` (a different
            number gives a new zero head). Defaults to None.
        image_size: int or (height, width), pixels. None means 224 at random
            init, and the checkpoint's own size with `weights` (another size
            resamples the position embeddings as the checkpoint's source
            does). Defaults to None.
        weights: None, or a registered checkpoint name ("augreg_in21k",
            "B/16:augreg_in21k"), a hub name ("hf://google/vit-base-patch16-224")
            or a local file or folder (.npz, timm or HF safetensors) to load.
            Defaults to None.
        **overrides: any other `ViTConfig` field (e.g. `dropout_rate`,
            `include_top`, `pooling`), or `dtype` (e.g. "mixed_bfloat16")
            and `name`.

    Returns:
        A `keras_vit.VisionTransformer` (a `keras.Model`) taking [0, 255]
        pixels (B, H, W, {num_channels}) and returning logits (B, num_classes).

    Example:

    >>> model = keras_vit.{fn}(num_classes=10)
    """


def _factory(fn_name, variant, title, source):
    def factory(num_classes=None, image_size=None, weights=None, **overrides):
        dtype = overrides.pop("dtype", None)
        name = overrides.pop("name", None) or fn_name.lower()
        if num_classes is not None:
            overrides["num_classes"] = num_classes
        if image_size is not None:
            overrides["image_size"] = image_size
        if weights is not None:
            return load(weights, variant=variant, dtype=dtype, name=name, new_head=True,
                        **overrides)
        overrides.setdefault("num_classes", 1000)
        overrides.setdefault("image_size", 224)
        return VisionTransformer(variant_config(variant, **overrides), dtype=dtype, name=name)

    base = variant_config(variant)
    patch = (
        f"1x1 patches of a ResNet{tuple(base.hybrid_layers)} feature map (stride 16)"
        if base.hybrid_layers
        else f"{base.patch_size}x{base.patch_size} patches"
    )
    factory.__name__ = factory.__qualname__ = fn_name
    factory.__doc__ = _DOCSTRING.format(
        title=title,
        source=source,
        layers=base.num_layers,
        hidden_size=base.hidden_size,
        mlp_dim=base.mlp_dim,
        num_heads=base.num_heads,
        patch=patch,
        num_channels=base.num_channels,
        fn=fn_name,
    )
    return factory


ViTTiny16 = _factory("ViTTiny16", "Ti/16", "ViT-Ti/16", "AugReg, Steiner et al. 2021")
ViTSmall16 = _factory("ViTSmall16", "S/16", "ViT-S/16", "AugReg, Steiner et al. 2021")
ViTBase16 = _factory("ViTBase16", "B/16", "ViT-B/16", "paper Table 1")
ViTBase32 = _factory("ViTBase32", "B/32", "ViT-B/32", "paper Table 1")
ViTLarge16 = _factory("ViTLarge16", "L/16", "ViT-L/16", "paper Table 1")
ViTLarge32 = _factory("ViTLarge32", "L/32", "ViT-L/32", "paper Table 1")
ViTHuge14 = _factory("ViTHuge14", "H/14", "ViT-H/14", "paper Table 1")
ViTHybridBase16 = _factory(
    "ViTHybridBase16", "R50+B/16", "R50+ViT-B/16", "the paper's hybrid, section 3.1"
)


def ViT(config=None, dtype=None, name=None, weights=None, **fields):
    """Builds a Vision Transformer, at random init or with `weights`.

    Without `weights`, `keras_vit.models.ViT` (see there). With it, the
    checkpoint decides the network and `fields` set the rest, as for the
    named factories: a registered name, a hub name such as
    "hf://timm/vit_base_patch16_224.augreg2_in21k_ft_in1k", or a local file or
    folder; a `num_classes` other than the checkpoint's gives a new zero head.

    Args:
        config: a `ViTConfig`, a dict of its fields, a variant name such as
            "B/16" (with `weights`: a check of what the checkpoint holds), or None.
        dtype: dtype policy. Defaults to the global one.
        name: model name. Defaults to "vit".
        weights: None, or a checkpoint to load. Defaults to None.
        **fields: `ViTConfig` fields.

    Returns:
        A `VisionTransformer` (a `keras.Model`).

    Example:

    >>> model = keras_vit.ViT(weights="hf://google/vit-base-patch16-224")
    """
    if weights is None:
        return _build(config, dtype=dtype, name=name, **fields)
    if config is not None and not isinstance(config, str):
        raise ArgumentError(
            "Received an invalid value for argument `config`: with `weights`, the "
            "checkpoint gives the network; pass a variant name (a check) or fields. "
            f"Received: config={type(config).__name__}")
    return load(weights, variant=config, dtype=dtype, name=name or "vit", new_head=True,
                **fields)
