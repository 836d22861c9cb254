"""Class names of converted classifiers: the checkpoint's own, or ImageNet's.

A checkpoint's names come first: an HF config.json's `id2label` (unless it is
transformers' placeholder "LABEL_0", ...), a timm hub config.json's
`label_names`. Otherwise a head of 1000 (21843) classes from a checkpoint
trained or fine-tuned on ImageNet-1k (-21k), as its registry tag or timm
pretrained tag says, gets the shipped ImageNet lists (weights/labels/, from
timm, Apache-2.0). The names are recorded in `ViTConfig.class_names`, so they
survive .keras save/load, and `keras-vit predict` prints them.

The lists were made from timm's files with:

    lemma = dict(l.rstrip("\\n").split("\\t", 1) for l in open(info + "imagenet_synset_to_lemma.txt"))
    for s in open(info + "imagenet_synsets.txt"): out.write(f"{s.strip()}\\t{lemma[s.strip()]}\\n")
"""

import functools
import gzip
import os
import pathlib
import re

from keras_vit.checkpoints.port import read_json

_PACKAGE = pathlib.Path(__file__).resolve().parents[1]
# Installed from a wheel: keras_vit/weights/labels; in a source checkout: weights/labels.
LABELS_DIR = next((d for d in (_PACKAGE / "weights" / "labels",
                              _PACKAGE.parent / "weights" / "labels") if d.is_dir()),
                  _PACKAGE.parent / "weights" / "labels")
IMAGENET = {1000: ("imagenet1k.txt", "in1k"), 21843: ("imagenet21k.txt.gz", "in21k")}
_PLACEHOLDER = re.compile(r"^LABEL_\d+$")


@functools.lru_cache(maxsize=2)
def imagenet(num_classes):
    """The ImageNet-1k (1000) or -21k (21843) names: each class's first lemma."""
    name = IMAGENET[num_classes][0]
    path = LABELS_DIR / name
    opener = gzip.open if name.endswith(".gz") else open
    with opener(path, "rt", encoding="utf-8") as f:
        names = tuple(line.rstrip("\n").split("\t", 1)[1].split(",")[0].strip() for line in f)
    assert len(names) == num_classes, (path, len(names))  # a broken package file
    return names


def _imagenet_for(num_classes, tag):
    """ImageNet's names when `tag` (a registry or timm tag) says the head is ImageNet's."""
    if num_classes not in IMAGENET:
        return None
    tag = str(tag or "")
    data = IMAGENET[num_classes][1]
    # "augreg2_in21k_ft_in1k" ends on in1k; "augreg_in21k" is a 21k head.
    last = re.findall(r"in1k|in21k|in22k", tag)
    if last and last[-1].replace("22k", "21k") == data:
        return imagenet(num_classes)
    return None


def class_names(path, format, num_classes, entry=None):
    """The names of a checkpoint's `num_classes` classes, or None.

    `path` is the checkpoint's folder or the model.safetensors in it, `entry`
    its registry entry (an .npz) or None."""
    if entry is not None:
        return _imagenet_for(num_classes, entry.tag)
    folder = path if os.path.isdir(path) else os.path.dirname(path) or "."
    bare = not os.path.isdir(path) and os.path.basename(path) != "model.safetensors"
    if format == "timm" and bare:
        return None  # a bare state dict: its folder's config.json is not its own
    config_path = os.path.join(folder, "config.json")
    if not os.path.isfile(config_path):
        return None
    config = read_json(config_path, "config")
    if format == "hf":
        id2label = config.get("id2label")
        if isinstance(id2label, dict) and len(id2label) == num_classes:
            try:
                names = tuple(str(id2label[str(i)]) for i in range(num_classes))
            except KeyError:
                return None
            if not all(_PLACEHOLDER.match(n) for n in names):
                return names
        return None
    pre = config.get("pretrained_cfg") if isinstance(config.get("pretrained_cfg"), dict) else {}
    names = config.get("label_names") or pre.get("label_names")
    if isinstance(names, list) and len(names) == num_classes:
        return tuple(map(str, names))
    return _imagenet_for(num_classes, pre.get("tag") or config.get("architecture"))
