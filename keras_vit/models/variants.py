"""The model variants of the paper's Table 1 (data; the named factories that
load weights sit above, in `keras_vit.checkpoints.factories`)."""

import difflib

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


def variant_names():
    """Every name `variant_config` takes (its "ViT-" prefix aside): S/P for each size of
    Table 1 at patches 16 and 32, H/14, and the hybrids."""
    return [f"{s}/{p}" for s in VARIANTS for p in (16, 32)] + ["H/14"] + list(HYBRIDS)


def unknown_variant(name, argument="config", other_names=()):
    """The ArgumentError for a variant name nothing knows, naming the argument, the
    nearest of `other_names` (a command's own model names, such as "digits") and of
    the variants first ("digit": digits; "b16", "vit-b/16": B/16), then every variant."""
    names = list(other_names) + variant_names()
    by_key = {n.lower().replace("/", "").replace("+", ""): n for n in names}
    key = str(name).lower()
    key = (key[4:] if key.startswith("vit-") else key).replace("/", "").replace("+", "")
    near = [by_key[k] for k in difflib.get_close_matches(key, by_key, n=4, cutoff=0.6)]
    hint = f" Did you mean {' or '.join(repr(n) for n in near)}?" if near else ""
    known = ", ".join(repr(n) for n in other_names) + (", or " if other_names else "")
    return ArgumentError(
        f"Received an invalid value for argument `{argument}`: unknown variant "
        f"{name!r}.{hint} Expected {known}a name like {', '.join(variant_names())}. "
        f"Received: {argument}={name!r}"
    )


def variant_config(name, **fields):
    """The `ViTConfig` of a variant name: "B/16", "ViT-L/32", "R50+B/16"."""
    key = name[4:] if name.upper().startswith("VIT-") else name
    if key in HYBRIDS:
        return ViTConfig(**HYBRIDS[key]).replace(**fields)
    size, _, patch = key.partition("/")
    if size not in VARIANTS or not patch.isdigit():
        raise unknown_variant(name)
    return ViTConfig(**VARIANTS[size], patch_size=int(patch)).replace(**fields)
