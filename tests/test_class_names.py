"""Class names: recorded in ViTConfig.class_names by the converters (a checkpoint's
own id2label / label_names, or the shipped ImageNet lists for an ImageNet head),
kept through .keras save/load, written back out by export_checkpoint, and
printed by `keras-vit predict`."""

import json
import subprocess
import sys

import numpy as np
import pytest

import keras_vit
from keras_vit.checkpoints import labels
from keras_vit.checkpoints.export import export_checkpoint
from keras_vit.errors import ArgumentError

TINY = dict(image_size=(32, 48), patch_size=16, hidden_size=16, num_layers=1, num_heads=2,
            mlp_dim=32)


def test_shipped_imagenet_lists():
    one, full = labels.imagenet(1000), labels.imagenet(21843)
    # values from timm's imagenet_synset_to_lemma.txt, read by hand
    assert (one[0], one[1], one[999]) == ("tench", "goldfish", "toilet tissue")
    assert (full[0], full[1]) == ("organism", "benthos")
    assert len(set(one)) > 990


def test_hf_id2label_round_trip(tmp_path):
    names = ("cat", "dog", "bird")
    model = keras_vit.ViT(**TINY, num_classes=3, class_names=list(names))
    export_checkpoint(model, tmp_path / "hf", format="hf")
    cfg = json.loads((tmp_path / "hf" / "config.json").read_text())
    assert cfg["id2label"] == {"0": "cat", "1": "dog", "2": "bird"}
    back = keras_vit.convert_checkpoint(str(tmp_path / "hf"))
    assert back.config.class_names == names
    back.save(tmp_path / "m.keras")
    import keras

    assert keras.models.load_model(tmp_path / "m.keras").config.class_names == names
    # transformers' placeholders are no names
    unnamed = keras_vit.ViT(**TINY, num_classes=3)
    export_checkpoint(unnamed, tmp_path / "u", format="hf")
    assert keras_vit.convert_checkpoint(str(tmp_path / "u")).config.class_names is None


@pytest.mark.parametrize("tag, classes, first", [
    ("augreg2_in21k_ft_in1k", 1000, "tench"), ("augreg_in21k", 21843, "organism"),
    ("augreg_in21k", 1000, None), ("custom", 1000, None)])
def test_timm_imagenet_heads_get_imagenet_names(tmp_path, tag, classes, first):
    model = keras_vit.ViT(**TINY, num_classes=classes)
    export_checkpoint(model, tmp_path / "t", format="timm")
    path = tmp_path / "t" / "config.json"
    cfg = json.loads(path.read_text())
    cfg["pretrained_cfg"]["tag"] = tag
    path.write_text(json.dumps(cfg))
    names = keras_vit.convert_checkpoint(str(tmp_path / "t")).config.class_names
    assert (names[0] if names else None) == first


def test_a_new_head_has_no_names():
    model = keras_vit.ViT(**TINY, num_classes=2, class_names=["a", "b"])
    assert keras_vit.replace_head(model, 3).config.class_names is None
    assert model.config.replace(num_classes=5).class_names is None
    assert model.config.replace(dropout_rate=0.1).class_names == ("a", "b")
    with pytest.raises(ArgumentError, match=r"`class_names`, expected None or 2 strings"):
        model.config.replace(class_names=("a",))


def test_predict_prints_the_names(tmp_path):
    from PIL import Image

    model = keras_vit.ViT(**TINY, num_classes=3, class_names=["cat", "dog", "bird"])
    model.save(tmp_path / "m.keras")
    Image.fromarray(np.random.default_rng(0).integers(0, 255, (40, 50, 3), "uint8")).save(
        tmp_path / "x.png")
    run = subprocess.run([sys.executable, "-m", "keras_vit", "predict", str(tmp_path / "x.png"),
                          "--model", str(tmp_path / "m.keras"), "--top", "3"],
                         capture_output=True, text=True)
    assert run.returncode == 0, run.stderr
    assert all(name in run.stdout for name in ("cat", "dog", "bird")), run.stdout
