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


# Normalisations as the sources spell them (mean, std of [0, 1] pixels): timm's
# timm.data.constants and the HF image processors' defaults use these same numbers.
HALF = ((0.5, 0.5, 0.5), (0.5, 0.5, 0.5))  # x/127.5 - 1: timm's IMAGENET_INCEPTION_MEAN/STD
IMAGENET = ((0.485, 0.456, 0.406), (0.229, 0.224, 0.225))  # IMAGENET_DEFAULT_MEAN/STD
OPENAI_CLIP = ((0.48145466, 0.4578275, 0.40821073), (0.26862954, 0.26130258, 0.27577711))
NORMALIZATIONS = {"0.5": HALF, "imagenet": IMAGENET, "openai_clip": OPENAI_CLIP}
_NORMALIZATION_NAMES = {"0.5": "x/127.5 - 1", "imagenet": "ImageNet mean/std",
                        "openai_clip": "OpenAI CLIP mean/std"}


# Hub names: the most used timm and HF ViT repos, resolved by
# keras_vit.checkpoints.hub (pass the name as weights= or to convert). Each entry
# names where its facts came from (`source`), checked on 2026-12-07:
# - timm repos: timm's pretrained cfg of that name (timm 1.0.31,
#   timm/models/vision_transformer.py and deit.py: `input_size`, `num_classes`,
#   `mean`/`std`, `license`, the default `_cfg`'s where an entry sets none),
#   which is also what the repo's config.json `pretrained_cfg` holds, and the
#   licence on the repo's model card (the same in every case here).
#   tests/fixtures/timm_pretrained_cfgs.json holds those cfgs as timm gives them.
# - HF repos: the repo's config.json (`image_size`, `id2label`),
#   preprocessor_config.json (`image_mean`/`image_std`), the licence on its model
#   card, and its file list (keras_vit reads model.safetensors only: where main
#   has none, `name` pins the revision that has one).
# A licence the source does not state is "not stated", never a guess.
@dataclasses.dataclass(frozen=True)
class HubCheckpoint:
    name: str  # "hf://owner/repo" or "hf://owner/repo@revision"
    resolution: int  # the size its position embeddings are for (what the converted model takes)
    num_classes: int  # 0: no classifier (features)
    normalization: str  # a key of NORMALIZATIONS: "0.5", "imagenet" or "openai_clip"
    licence: str  # as the model card states it, or "not stated"
    source: str  # where these facts were read
    loads: str = "yes"
    description: str = ""

    @property
    def normalization_mean(self):
        return NORMALIZATIONS[self.normalization][0]

    @property
    def normalization_std(self):
        return NORMALIZATIONS[self.normalization][1]


def _timm(name, resolution, num_classes, normalization, description, licence="apache-2.0"):
    return HubCheckpoint(
        f"hf://timm/{name}", resolution, num_classes, normalization, licence,
        source=f"timm pretrained cfg `{name}`; model card", description=description)


def _hf(repo, resolution, num_classes, normalization, description, licence="apache-2.0",
        revision=None, loads="yes"):
    name = f"hf://{repo}" + (f"@{revision}" if revision else "")
    return HubCheckpoint(
        name, resolution, num_classes, normalization, licence,
        source="config.json, preprocessor_config.json, model card", loads=loads,
        description=description)


_AUGREG_FT = "AugReg (Steiner et al. 2021): ImageNet-21k, fine-tuned on ImageNet-1k"
_NO_SAFETENSORS = ("main has pytorch_model.bin only; the safetensors conversion is the "
                   "open pull request {}")
HUB_CHECKPOINTS = (
    _timm("vit_base_patch16_224.augreg2_in21k_ft_in1k", 224, 1000, "0.5",
          "AugReg B/16, ImageNet-21k, fine-tuned on ImageNet-1k again by timm (augreg2)"),
    _timm("vit_base_patch16_224.augreg_in21k_ft_in1k", 224, 1000, "0.5", _AUGREG_FT),
    _timm("vit_base_patch16_384.augreg_in21k_ft_in1k", 384, 1000, "0.5", _AUGREG_FT + " at 384"),
    _timm("vit_base_patch16_224.augreg_in21k", 224, 21843, "0.5",
          "AugReg B/16, ImageNet-21k pre-training (its 21843-way head)"),
    _timm("vit_small_patch16_224.augreg_in21k_ft_in1k", 224, 1000, "0.5", _AUGREG_FT),
    _timm("vit_tiny_patch16_224.augreg_in21k_ft_in1k", 224, 1000, "0.5", _AUGREG_FT),
    _timm("vit_large_patch16_224.augreg_in21k_ft_in1k", 224, 1000, "0.5", _AUGREG_FT),
    _timm("deit_base_patch16_224.fb_in1k", 224, 1000, "imagenet",
          "DeiT-B (Touvron et al. 2021), ImageNet-1k"),
    _timm("vit_base_patch16_clip_224.openai_ft_in1k", 224, 1000, "openai_clip",
          "OpenAI CLIP B/16 image tower (pre_norm), fine-tuned on ImageNet-1k by timm "
          "(exact GELU, as timm builds it)"),
    _timm("vit_base_patch16_siglip_256.webli", 256, 0, "0.5",
          "SigLIP B/16 image tower (no class token, MAP head), features"),
    _timm("vit_small_patch14_dinov2.lvd142m", 518, 0, "imagenet",
          "DINOv2 S/14 (layer scale; 37x37 position grid), features"),
    _hf("google/vit-base-patch16-224", 224, 1000, "0.5",
        "HF ViTForImageClassification (ImageNet-21k, fine-tuned on ImageNet-1k)"),
    _hf("google/vit-base-patch16-384", 384, 1000, "0.5", "HF ViTForImageClassification"),
    _hf("google/vit-large-patch16-224", 224, 1000, "0.5",
        "HF ViTForImageClassification; " + _NO_SAFETENSORS.format("refs/pr/2"),
        revision="refs/pr/2", loads="at refs/pr/2 only"),
    _hf("google/vit-base-patch16-224-in21k", 224, 0, "0.5",
        "HF ViTModel with pooler, no classifier (zeroed by Google): features or a new head"),
    _hf("facebook/deit-base-patch16-224", 224, 1000, "0.5",
        "HF ViTForImageClassification layout of DeiT-B; its preprocessor and card say mean = "
        "std = 0.5 where timm's DeiT cfg says ImageNet mean/std; "
        + _NO_SAFETENSORS.format("refs/pr/3"),
        revision="refs/pr/3", loads="at refs/pr/3 only"),
    _hf("facebook/dinov2-small", 518, 0, "imagenet",
        "HF Dinov2Model, features; config.json image_size 518 (37x37 grid), its processor "
        "crops 224"),
)


def hub_markdown_table():
    """The hub names as a Markdown table (for weights/CHECKPOINTS.md)."""
    rows = ["| name | resolution | classes | normalisation | licence | loads | what | facts from |",
            "| --- | --- | --- | --- | --- | --- | --- | --- |"]
    for c in HUB_CHECKPOINTS:
        rows.append(
            f"| `{c.name}` | {c.resolution} | {c.num_classes or 'features'} | "
            f"{_NORMALIZATION_NAMES[c.normalization]} | {c.licence} | {c.loads} | "
            f"{c.description} | {c.source} |")
    return "\n".join(rows)
