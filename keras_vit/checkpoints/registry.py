"""The official checkpoints: where they are and what they expect.

Plain data (timm's pretrained configs and keras-hub's presets do the same).
Every file here is an original Google `.npz` on storage.googleapis.com:

- AugReg (Steiner et al., "How to train your ViT?", 2021): `augreg_in21k`
  (ImageNet-21k pre-training, 21843 classes), `augreg_in1k` (ImageNet-1k from
  scratch, fine-tuned at 224), `augreg_in21k_ft_in1k` (21k pre-trained,
  ImageNet-1k fine-tuned at 224), and `_384` variants fine-tuned at 384.
  Which of AugReg's many runs: Ti/16, S/16 and B/16 are the runs vit_jax's
  README recommends, which timm's pretrained configs also use. S/32, B/32 and
  L/16 are timm's picks (its `vit_*_224.augreg_in21k*` cfgs), not the
  README's: it recommends S_32 `aug_none-wd_0.1`, B_32 `aug_light1-wd_0.1`
  (timm's B/32 384 pick) and L_16 `aug_strong1-wd_0.1-do_0.0-sd_0.0`, where
  these are S_32 `aug_light1-wd_0.03`, B_32 `aug_medium1-wd_0.03` and L_16
  `aug_medium1-wd_0.1-do_0.1-sd_0.1`.
- The paper's original release (Dosovitskiy et al., 2021): `orig_in21k`
  (imagenet21k/, with the pre-logits layer) and `orig_in21k_ft_in1k`
  (imagenet21k+imagenet2012/, fine-tuned at 384). The `orig_in21k` files'
  21843-way head is all zeros (vision_transformer issues #10 and #32; timm
  marks them "classifier not valid", num_classes=0): they load as features
  (their pre-logits representation) or with a new head, and a request for
  their classifier is refused.

All take pixels scaled as x / 127.5 - 1 (mean = std = 0.5 in [0, 1] units).
No sha256 is published for these files, so `sha256` is None (the download is
then not checked against a hash); set one here when it is known.
"""

import dataclasses
from typing import Optional, Tuple

_AUGREG = "https://storage.googleapis.com/vit_models/augreg/"
_ORIG = "https://storage.googleapis.com/vit_models/"
_FT = "--imagenet2012-steps_20k-lr_{lr}-res_{res}.npz"


@dataclasses.dataclass(frozen=True)
class Checkpoint:
    """One published checkpoint."""

    variant: str  # "B/16"
    tag: str  # "augreg_in21k"
    url: str
    resolution: int  # the image size it was trained or fine-tuned at
    num_classes: int  # 21843 (ImageNet-21k) or 1000 (ImageNet-1k)
    format: str = "npz"
    sha256: Optional[str] = None  # None where no hash is published
    normalization_mean: Tuple[float, ...] = (0.5, 0.5, 0.5)
    normalization_std: Tuple[float, ...] = (0.5, 0.5, 0.5)
    description: str = ""

    @property
    def name(self):
        return f"{self.variant}:{self.tag}"

    @property
    def filename(self):
        return f"vit-{self.variant.replace('/', '_')}-{self.tag}.npz"


def _augreg(variant, stem, ft_lr, i1k=None, ft_384=False, i1k_384=False):
    size = variant.replace("/", "_")
    out = [
        Checkpoint(variant, "augreg_in21k", f"{_AUGREG}{size}-{stem}.npz", 224, 21843,
                   description="AugReg, ImageNet-21k pre-training"),
        Checkpoint(variant, "augreg_in21k_ft_in1k",
                   f"{_AUGREG}{size}-{stem}" + _FT.format(lr=ft_lr, res=224), 224, 1000,
                   description="AugReg, ImageNet-21k, fine-tuned on ImageNet-1k at 224"),
    ]
    if ft_384:
        out.append(Checkpoint(
            variant, "augreg_in21k_ft_in1k_384",
            f"{_AUGREG}{size}-{stem}" + _FT.format(lr=ft_lr, res=384), 384, 1000,
            description="AugReg, ImageNet-21k, fine-tuned on ImageNet-1k at 384"))
    if i1k:
        out.append(Checkpoint(
            variant, "augreg_in1k", f"{_AUGREG}{size}-{i1k}" + _FT.format(lr="0.01", res=224),
            224, 1000, description="AugReg, ImageNet-1k only, fine-tuned at 224"))
    if i1k_384:
        out.append(Checkpoint(
            variant, "augreg_in1k_384", f"{_AUGREG}{size}-{i1k}" + _FT.format(lr="0.01", res=384),
            384, 1000, description="AugReg, ImageNet-1k only, fine-tuned at 384"))
    return out


def _original(variant, ft=True):
    size = variant.replace("/", "_")
    out = [Checkpoint(variant, "orig_in21k", f"{_ORIG}imagenet21k/ViT-{size}.npz", 224, 21843,
                      description="original release, ImageNet-21k (with pre-logits)")]
    if ft:
        out.append(Checkpoint(
            variant, "orig_in21k_ft_in1k", f"{_ORIG}imagenet21k%2Bimagenet2012/ViT-{size}.npz",
            384, 1000, description="original release, ImageNet-21k + ImageNet-1k at 384"))
    return out


# File names as published (the vit_jax README and timm's pretrained configs).
_ENTRIES = (
    _augreg("Ti/16", "i21k-300ep-lr_0.001-aug_none-wd_0.03-do_0.0-sd_0.0", "0.03", ft_384=True)
    + _augreg("S/16", "i21k-300ep-lr_0.001-aug_light1-wd_0.03-do_0.0-sd_0.0", "0.03", ft_384=True,
              i1k="i1k-300ep-lr_0.001-aug_medium2-wd_0.1-do_0.0-sd_0.0", i1k_384=True)
    + _augreg("S/32", "i21k-300ep-lr_0.001-aug_light1-wd_0.03-do_0.0-sd_0.0", "0.03", ft_384=True)
    + _augreg("B/16", "i21k-300ep-lr_0.001-aug_medium1-wd_0.1-do_0.0-sd_0.0", "0.01", ft_384=True,
              i1k="i1k-300ep-lr_0.001-aug_strong2-wd_0.1-do_0.1-sd_0.1", i1k_384=True)
    + _augreg("B/32", "i21k-300ep-lr_0.001-aug_medium1-wd_0.03-do_0.0-sd_0.0", "0.03",
              i1k="i1k-300ep-lr_0.001-aug_medium2-wd_0.1-do_0.1-sd_0.1", i1k_384=True)
    + _augreg("L/16", "i21k-300ep-lr_0.001-aug_medium1-wd_0.1-do_0.1-sd_0.1", "0.01", ft_384=True)
    + _original("B/16") + _original("B/32") + _original("L/16") + _original("L/32")
    + _original("H/14", ft=False)
)
CHECKPOINTS = {c.name: c for c in _ENTRIES}


def find(name, variant=None):
    """The `Checkpoint` for "B/16:augreg_in21k", or "augreg_in21k" with a variant; else None."""
    if not isinstance(name, str):
        return None
    key = name[4:] if name.upper().startswith("VIT-") else name
    if ":" not in key and variant is not None:
        key = f"{variant[4:] if variant.upper().startswith('VIT-') else variant}:{key}"
    return CHECKPOINTS.get(key)


def names(variant=None):
    """Registered names, all or one variant's."""
    return [n for n, c in CHECKPOINTS.items() if variant is None or c.variant == variant]


def markdown_table():
    """The registry as a Markdown table (for weights/CHECKPOINTS.md)."""
    rows = ["| name | resolution | classes | normalisation | sha256 | URL |",
            "| --- | --- | --- | --- | --- | --- |"]
    for c in _ENTRIES:
        rows.append(
            f"| `{c.name}` | {c.resolution} | {c.num_classes} | x/127.5 - 1 | "
            f"{c.sha256 or 'not published'} | {c.url} |"
        )
    return "\n".join(rows)


# Hub names: the most used timm and HF ViT repos, resolved by
# keras_vit.checkpoints.hub (pass the name as weights= or to convert). Facts
# from each repo's config files and model card; `loads` says whether this
# version reads the repo (else what is missing).
@dataclasses.dataclass(frozen=True)
class HubCheckpoint:
    name: str  # "hf://owner/repo"
    resolution: int
    num_classes: int  # 0: no classifier (features)
    normalization: str  # "0.5" (x/127.5 - 1) or "imagenet" (mean/std of ImageNet)
    licence: str  # as the model card states it
    loads: str = "yes"
    description: str = ""


_TIMM_AUGREG = "timm, AugReg; config.json + model.safetensors"
HUB_CHECKPOINTS = (
    HubCheckpoint("hf://timm/vit_base_patch16_224.augreg2_in21k_ft_in1k", 224, 1000, "0.5",
                  "apache-2.0",
                  description="timm, AugReg B/16 fine-tuned again by timm (augreg2)"),
    HubCheckpoint("hf://timm/vit_base_patch16_224.augreg_in21k_ft_in1k", 224, 1000, "0.5",
                  "apache-2.0", description=_TIMM_AUGREG),
    HubCheckpoint("hf://timm/vit_base_patch16_384.augreg_in21k_ft_in1k", 384, 1000, "0.5",
                  "apache-2.0", description=_TIMM_AUGREG),
    HubCheckpoint("hf://timm/vit_base_patch16_224.augreg_in21k", 224, 21843, "0.5",
                  "apache-2.0", description=_TIMM_AUGREG),
    HubCheckpoint("hf://timm/vit_small_patch16_224.augreg_in21k_ft_in1k", 224, 1000, "0.5",
                  "apache-2.0", description=_TIMM_AUGREG),
    HubCheckpoint("hf://timm/vit_tiny_patch16_224.augreg_in21k_ft_in1k", 224, 1000, "0.5",
                  "apache-2.0", description=_TIMM_AUGREG),
    HubCheckpoint("hf://timm/vit_large_patch16_224.augreg_in21k_ft_in1k", 224, 1000, "0.5",
                  "apache-2.0", description=_TIMM_AUGREG),
    HubCheckpoint("hf://timm/deit_base_patch16_224.fb_in1k", 224, 1000, "imagenet",
                  "apache-2.0", description="timm, DeiT-B (Touvron et al. 2021)"),
    HubCheckpoint("hf://google/vit-base-patch16-224", 224, 1000, "0.5", "apache-2.0",
                  description="HF ViTForImageClassification (in21k, fine-tuned on in1k)"),
    HubCheckpoint("hf://google/vit-base-patch16-384", 384, 1000, "0.5", "apache-2.0",
                  description="HF ViTForImageClassification"),
    HubCheckpoint("hf://google/vit-large-patch16-224", 224, 1000, "0.5", "apache-2.0",
                  description="HF ViTForImageClassification"),
    HubCheckpoint("hf://google/vit-base-patch16-224-in21k", 224, 0, "0.5", "apache-2.0",
                  description="HF ViTModel with pooler, no classifier: features or a new head"),
    HubCheckpoint("hf://facebook/deit-base-patch16-224", 224, 1000, "imagenet", "apache-2.0",
                  description="HF ViTForImageClassification layout of DeiT-B"),
    HubCheckpoint("hf://facebook/dinov2-small", 224, 0, "imagenet", "apache-2.0",
                  description="HF Dinov2Model, features"),
)


def hub_markdown_table():
    """The hub names as a Markdown table (for weights/CHECKPOINTS.md)."""
    norm = {"0.5": "x/127.5 - 1", "imagenet": "ImageNet mean/std"}
    rows = ["| name | resolution | classes | normalisation | licence | loads | what |",
            "| --- | --- | --- | --- | --- | --- | --- |"]
    for c in HUB_CHECKPOINTS:
        rows.append(
            f"| `{c.name}` | {c.resolution} | {c.num_classes or 'features'} | "
            f"{norm[c.normalization]} | {c.licence} | {c.loads} | {c.description} |")
    return "\n".join(rows)
