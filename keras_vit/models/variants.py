"""The model variants of the paper's Table 1 and their factories."""

from keras_vit.models.config import ViTConfig
from keras_vit.models.vit import VisionTransformer

# Paper Table 1 (layers, hidden size D, MLP size, heads); Ti and S from DeiT /
# AugReg (Steiner et al., 2021). The patch size is part of the name.
VARIANTS = {
    "Ti": dict(num_layers=12, hidden_size=192, mlp_dim=768, num_heads=3),
    "S": dict(num_layers=12, hidden_size=384, mlp_dim=1536, num_heads=6),
    "B": dict(num_layers=12, hidden_size=768, mlp_dim=3072, num_heads=12),
    "L": dict(num_layers=24, hidden_size=1024, mlp_dim=4096, num_heads=16),
    "H": dict(num_layers=32, hidden_size=1280, mlp_dim=5120, num_heads=16),
}
# R50+ViT-B/16 (paper section 3.1 and App. D.2): ResNet-50 with stage 4 removed
# and stage 3 given 9 blocks; 1x1 patches of its stride-16 feature map.
HYBRIDS = {"R50+B/16": dict(VARIANTS["B"], patch_size=1, hybrid_layers=(3, 4, 9))}


def variant_config(name, **fields):
    """The `ViTConfig` of a variant name: "B/16", "ViT-L/32", "R50+B/16"."""
    key = name[4:] if name.upper().startswith("VIT-") else name
    if key in HYBRIDS:
        return ViTConfig(**HYBRIDS[key]).replace(**fields)
    size, _, patch = key.partition("/")
    if size not in VARIANTS or not patch.isdigit():
        names = [f"{s}/{p}" for s in VARIANTS for p in (16, 32)] + ["H/14"] + list(HYBRIDS)
        raise ValueError(
            "Received an invalid value for argument `config`: unknown variant "
            f"{name!r}. Expected a name like {', '.join(names)}. "
            f"Received: config={name!r}"
        )
    return ViTConfig(**VARIANTS[size], patch_size=int(patch)).replace(**fields)


_DOCSTRING = """Builds {title} ({source}).

    {layers} layers, width {hidden_size}, MLP {mlp_dim}, {num_heads} heads, {patch}.
    Random initialisation with a zero head unless `weights` names a checkpoint.

    Args:
        num_classes: int, outputs of the zero-initialised head. Defaults to 1000.
        image_size: int or (height, width), pixels. Defaults to 224.
        weights: None, or a registered checkpoint name or a local file to load
            (the head is replaced and position embeddings resized to fit).
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
    def factory(num_classes=1000, image_size=224, weights=None, **overrides):
        dtype = overrides.pop("dtype", None)
        name = overrides.pop("name", None) or fn_name.lower()
        config = variant_config(
            variant, num_classes=num_classes, image_size=image_size, **overrides
        )
        if weights is not None:
            from keras_vit.checkpoints import load_pretrained

            return load_pretrained(weights, config=config, variant=variant, dtype=dtype, name=name)
        return VisionTransformer(config, dtype=dtype, name=name)

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
