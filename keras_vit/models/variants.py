"""The model variants of the paper's Table 1 (data; the named factories that
load weights sit above, in `keras_vit.checkpoints.factories`)."""

from keras_vit.errors import ArgumentError
from keras_vit.models.config import ViTConfig

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
        raise ArgumentError(
            "Received an invalid value for argument `config`: unknown variant "
            f"{name!r}. Expected a name like {', '.join(names)}. "
            f"Received: config={name!r}"
        )
    return ViTConfig(**VARIANTS[size], patch_size=int(patch)).replace(**fields)
