"""Checkpoint converters against committed reference fixtures (tests/fixtures/make_fixtures.py).

Each fixture is a tiny model written by the reference code (timm, HF
transformers, the original .npz layout read by timm's `_load_weights`) with
that code's logits on the same raw pixels; converted models must match to
1e-4 of the logits' scale. These run in the default environment (no torch).
"""

import glob
import json
import os
import re
import shutil

import keras
import numpy as np
import pytest
from safetensors.numpy import load_file, save_file

import keras_vit
from keras_vit import cli
from keras_vit.checkpoints import CheckpointError, detect_format, load_pretrained, registry

pytestmark = pytest.mark.portable  # CI reruns these under KERAS_BACKEND=jax (fused attention)

FIXTURES = os.path.join(os.path.dirname(__file__), "fixtures")
NPZ = os.path.join(FIXTURES, "original_tiny.npz")
BIGVISION = os.path.join(FIXTURES, "bigvision_tiny.npz")
TIMM = os.path.join(FIXTURES, "timm_tiny.safetensors")
HF = os.path.join(FIXTURES, "hf_tiny")
PIXELS = np.load(os.path.join(FIXTURES, "pixels.npy")).astype("float32")  # (2, 32, 32, 3) in [0, 255]
REFERENCE = dict(np.load(os.path.join(FIXTURES, "reference_logits.npz")))


def assert_logits_match(model, reference, pixels=PIXELS):
    out = np.asarray(model(pixels))
    assert out.shape == reference.shape
    scale = np.abs(reference).max()
    assert np.abs(out - reference).max() <= 1e-4 * scale, np.abs(out - reference).max()


def npz_items(path):
    with np.load(path, allow_pickle=False) as f:
        return {k: f[k] for k in f.files}


# Parity with the references.

def test_original_npz_matches_timm_reading_it():
    model = keras_vit.convert_checkpoint(NPZ)
    c = model.config
    assert (c.patch_size, c.hidden_size, c.num_layers, c.num_heads, c.mlp_dim) == (8, 24, 2, 2, 48)
    assert (c.num_classes, c.representation_size, c.image_size) == (5, 16, 32)
    assert c.gelu_approximate is True and c.layer_norm_epsilon == 1e-6
    assert c.normalization_mean == (0.5,) and c.normalization_std == (0.5,)
    assert_logits_match(model, REFERENCE["original"])


def test_original_npz_with_opt_target_prefix(tmp_path):
    path = tmp_path / "old.npz"
    np.savez(path, **{f"opt/target/{k}": v for k, v in npz_items(NPZ).items()})
    assert_logits_match(keras_vit.convert_checkpoint(str(path)), REFERENCE["original"])


def test_big_vision_layout():
    model = keras_vit.convert_checkpoint(BIGVISION)
    assert model.config.class_token is False and model.config.pooling == "gap"
    assert_logits_match(model, REFERENCE["bigvision"])


def test_big_vision_scanned_encoder(tmp_path):
    """big_vision's scan layout stacks every block on a leading axis."""
    items = npz_items(BIGVISION)
    stacked = {}
    for key in [k for k in items if "encoderblock_" in k]:
        rest = key.split("encoderblock_")[1].split("/", 1)[1]
        stacked.setdefault(f"params/Transformer/encoderblock/{rest}", []).append(
            (int(key.split("encoderblock_")[1].split("/")[0]), items.pop(key)))
    for key, values in stacked.items():
        items[key] = np.stack([v for _, v in sorted(values, key=lambda t: t[0])])
    path = tmp_path / "scan.npz"
    np.savez(path, **items)
    assert_logits_match(keras_vit.convert_checkpoint(str(path)), REFERENCE["bigvision"])


def test_timm_state_dict_needs_heads_then_matches():
    with pytest.raises(CheckpointError, match="num_heads"):
        keras_vit.convert_checkpoint(TIMM)
    model = keras_vit.convert_checkpoint(TIMM, num_heads=2)
    assert model.config.gelu_approximate is False and model.config.layer_norm_epsilon == 1e-6
    assert_logits_match(model, REFERENCE["timm"])


def test_timm_hub_folder_reads_config_json(tmp_path):
    shutil.copy(TIMM, tmp_path / "model.safetensors")
    config = {"architecture": "vit_tiny_patch8_32.test", "num_classes": 5,
              "pretrained_cfg": {"mean": [0.5, 0.5, 0.5], "std": [0.5, 0.5, 0.5]}}
    (tmp_path / "config.json").write_text(json.dumps(config))
    assert detect_format(str(tmp_path)) == "timm"
    # The architecture names a Ti/8 (width 192, 3 heads); the tensors are 24 wide.
    with pytest.raises(CheckpointError, match="Ti/8: its hidden_size is 24"):
        keras_vit.convert_checkpoint(str(tmp_path))
    config["architecture"] = "vit_custom.test"  # no variant in the name: heads from the user
    (tmp_path / "config.json").write_text(json.dumps(config))
    model = keras_vit.convert_checkpoint(str(tmp_path), num_heads=2)
    assert model.config.normalization_mean == (0.5, 0.5, 0.5)  # from pretrained_cfg
    assert_logits_match(model, REFERENCE["timm"])


def test_hf_folder_matches_transformers():
    model = keras_vit.convert_checkpoint(HF)
    c = model.config
    assert c.layer_norm_epsilon == 1e-12 and c.gelu_approximate is False
    np.testing.assert_allclose(c.normalization_mean, (0.485, 0.456, 0.406))
    np.testing.assert_allclose(c.normalization_std, (0.229, 0.224, 0.225))
    assert_logits_match(model, REFERENCE["hf"])


def test_hf_without_preprocessor_uses_vit_defaults_and_v5_names(tmp_path):
    shutil.copy(os.path.join(HF, "config.json"), tmp_path / "config.json")
    tensors = load_file(os.path.join(HF, "model.safetensors"))
    renamed = {}
    for k, v in tensors.items():  # transformers 5's in-memory names
        k = (k.replace("encoder.layer.", "layers.").replace("attention.attention.query", "attention.q_proj")
             .replace("attention.attention.key", "attention.k_proj")
             .replace("attention.attention.value", "attention.v_proj")
             .replace("attention.output.dense", "attention.o_proj")
             .replace("intermediate.dense", "mlp.fc1").replace(".output.dense", ".mlp.fc2"))
        renamed[k] = v
    save_file(renamed, str(tmp_path / "model.safetensors"))
    model = keras_vit.convert_checkpoint(str(tmp_path))
    assert model.config.normalization_mean == (0.5,) and model.config.normalization_std == (0.5,)
    # Same weights, different normalisation: feed pixels that normalise alike.
    mean, std = np.array([0.485, 0.456, 0.406]), np.array([0.229, 0.224, 0.225])
    pixels = ((PIXELS / 255.0 - mean) / std * 0.5 + 0.5) * 255.0
    assert_logits_match(model, REFERENCE["hf"], pixels.astype("float32"))


def test_hf_tanh_gelu_from_config(tmp_path):
    shutil.copytree(HF, tmp_path / "m")
    config = json.loads((tmp_path / "m" / "config.json").read_text())
    config["hidden_act"] = "gelu_pytorch_tanh"
    config["layer_norm_eps"] = 1e-6
    (tmp_path / "m" / "config.json").write_text(json.dumps(config))
    c = keras_vit.convert_checkpoint(str(tmp_path / "m")).config
    assert c.gelu_approximate is True and c.layer_norm_epsilon == 1e-6


def test_converted_model_saves_and_loads(tmp_path):
    model = keras_vit.convert_checkpoint(NPZ)
    model.save(tmp_path / "m.keras")
    again = keras.models.load_model(tmp_path / "m.keras")
    assert_logits_match(again, REFERENCE["original"])


# The config and its overrides.

def test_detect_format():
    assert detect_format(NPZ) == "npz"
    assert detect_format(TIMM) == "timm"
    assert detect_format(HF) == "hf"
    assert detect_format(os.path.join(HF, "model.safetensors")) == "hf"


def test_include_top_false_drops_the_head():
    full = keras_vit.convert_checkpoint(TIMM, num_heads=2)
    features = keras_vit.convert_checkpoint(TIMM, num_heads=2, include_top=False)
    out = np.asarray(features(PIXELS))
    head = {v.path: v.numpy() for v in full.weights}
    np.testing.assert_allclose(out @ head["head/kernel"] + head["head/bias"], REFERENCE["timm"],
                               atol=1e-4 * np.abs(REFERENCE["timm"]).max())


def test_image_size_override_resamples_like_the_source():
    native = keras_vit.convert_checkpoint(NPZ)
    bigger = keras_vit.convert_checkpoint(NPZ, image_size=(48, 40), dropout_rate=0.1)
    assert bigger.config.grid_size == (6, 5) and bigger.config.dropout_rate == 0.1
    key = "patch_encoder/position_embedding/embeddings"
    pe = {v.path: v.numpy() for v in native.weights}[key]
    expected = keras_vit.resample_position_embeddings(pe, (6, 5), 1, "linear")
    np.testing.assert_array_equal({v.path: v.numpy() for v in bigger.weights}[key], expected)
    timm_big = keras_vit.convert_checkpoint(TIMM, num_heads=2, image_size=48)
    pe = {v.path: v.numpy() for v in keras_vit.convert_checkpoint(TIMM, num_heads=2).weights}[key]
    np.testing.assert_allclose({v.path: v.numpy() for v in timm_big.weights}[key],
                               keras_vit.resample_position_embeddings(pe, 6, 1, "bicubic",
                                                                      antialias=True), atol=1e-6)
    assert (timm_big.config.resample_method, timm_big.config.resample_antialias) == ("bicubic", True)
    assert (bigger.config.resample_method, bigger.config.resample_antialias) == ("linear", False)


def test_overrides_that_contradict_the_checkpoint():
    with pytest.raises(CheckpointError, match="hidden_size"):
        keras_vit.convert_checkpoint(NPZ, hidden_size=32)
    with pytest.raises(CheckpointError, match="replace_head"):
        keras_vit.convert_checkpoint(NPZ, num_classes=10)
    with pytest.raises(ValueError, match="Unknown ViTConfig field"):
        keras_vit.convert_checkpoint(NPZ, not_a_field=1)
    with pytest.raises(CheckpointError, match="B/16"):
        keras_vit.convert_checkpoint(NPZ, variant="B/16")


# Strict loading.

def test_unused_tensor_is_an_error(tmp_path):
    items = npz_items(NPZ)
    items["Transformer/encoderblock_2/LayerNorm_0/scale_extra"] = np.ones(24, "float32")
    np.savez(tmp_path / "x.npz", **items)
    with pytest.raises(CheckpointError, match="not used.*encoderblock_2/LayerNorm_0/scale_extra"):
        keras_vit.convert_checkpoint(str(tmp_path / "x.npz"))


def test_missing_tensor_is_an_error(tmp_path):
    items = npz_items(NPZ)
    del items["Transformer/encoderblock_1/MlpBlock_3/Dense_1/bias"]
    np.savez(tmp_path / "x.npz", **items)
    with pytest.raises(CheckpointError, match="MlpBlock_3/Dense_1/bias.*missing"):
        keras_vit.convert_checkpoint(str(tmp_path / "x.npz"))


def test_shape_mismatch_names_the_tensor_and_both_shapes(tmp_path):
    items = npz_items(NPZ)
    items["Transformer/encoderblock_0/MlpBlock_3/Dense_1/bias"] = np.zeros(23, "float32")
    np.savez(tmp_path / "x.npz", **items)
    with pytest.raises(CheckpointError) as info:
        keras_vit.convert_checkpoint(str(tmp_path / "x.npz"))
    message = str(info.value)
    assert "transformer_block_0/mlp/dense_2/bias" in message
    assert "encoderblock_0/MlpBlock_3/Dense_1/bias" in message
    assert "(24,)" in message and "(23,)" in message


def test_unset_weight_is_an_error():
    model = keras_vit.ViT(image_size=32, patch_size=8, hidden_size=24, num_layers=1,
                          num_heads=2, mlp_dim=48, num_classes=5)
    porter = keras_vit.checkpoints.WeightPorter(model, {"a": np.zeros(24)}, "test")
    porter.port("a", "encoder_norm/beta")
    with pytest.raises(CheckpointError, match="not set.*encoder_norm/gamma"):
        porter.finish()


# Fine-tuning from a checkpoint (the factories' path).

def test_load_pretrained_new_head_and_resolution():
    config = keras_vit.ViTConfig(image_size=48, patch_size=8, hidden_size=24, num_layers=2,
                                 num_heads=2, mlp_dim=48, num_classes=3, dropout_rate=0.1)
    model = load_pretrained(NPZ, config=config)
    c = model.config
    assert (c.image_size, c.num_classes, c.dropout_rate) == (48, 3, 0.1)
    assert c.representation_size is None and c.gelu_approximate is True  # follows the source
    weights = {v.path: v.numpy() for v in model.weights}
    native = {v.path: v.numpy() for v in keras_vit.convert_checkpoint(NPZ).weights}
    assert not weights["head/kernel"].any() and weights["head/kernel"].shape == (24, 3)
    assert not any(p.startswith("pre_logits") for p in weights)
    key = "patch_encoder/position_embedding/embeddings"
    np.testing.assert_array_equal(
        weights[key], keras_vit.resample_position_embeddings(native[key], 6, 1, "linear"))
    for path, value in weights.items():
        if path != key and not path.startswith("head/"):
            assert np.array_equal(value, native[path]), path


def test_load_pretrained_keeps_a_matching_head():
    config = keras_vit.ViTConfig(image_size=32, patch_size=8, hidden_size=24, num_layers=2,
                                 num_heads=2, mlp_dim=48, num_classes=5)
    assert_logits_match(load_pretrained(NPZ, config=config), REFERENCE["original"])


def test_factory_rejects_a_checkpoint_of_another_size():
    with pytest.raises(CheckpointError, match="does not hold a Ti/16: its patch_size is 8"):
        keras_vit.ViTTiny16(weights=NPZ, image_size=32)


# The registry and downloads (offline: keras.utils.get_file is monkeypatched).

def test_registry_entries_are_well_formed():
    assert len(registry.CHECKPOINTS) >= 20
    for name, c in registry.CHECKPOINTS.items():
        keras_vit.variant_config(c.variant)
        assert c.url.startswith("https://storage.googleapis.com/vit_models/") and c.url.endswith(".npz")
        assert c.sha256 is None or (len(c.sha256) == 64 and int(c.sha256, 16) >= 0)
        assert c.num_classes in (1000, 21843)
        assert c.resolution == (384 if "384" in c.url.rsplit("res_", 1)[-1] or
                                c.tag == "orig_in21k_ft_in1k" else 224)
        assert c.normalization_mean == (0.5,) * 3 and c.normalization_std == (0.5,) * 3
    b16 = registry.find("augreg_in21k", "B/16")
    assert b16.url.endswith("B_16-i21k-300ep-lr_0.001-aug_medium1-wd_0.1-do_0.0-sd_0.0.npz")
    assert registry.find("ViT-B/16:orig_in21k").url.endswith("imagenet21k/ViT-B_16.npz")
    assert "B/16:augreg_in21k" in registry.markdown_table()


def test_offline_download_names_the_url_and_the_way_out(monkeypatch):
    def offline(*args, **kwargs):
        raise Exception("URL fetch failure: [Errno -3] Temporary failure in name resolution")

    monkeypatch.setattr(keras.utils, "get_file", offline)
    with pytest.raises(CheckpointError) as info:
        keras_vit.ViTBase16(weights="augreg_in21k", num_classes=37, image_size=384)
    message = str(info.value)
    assert registry.find("B/16:augreg_in21k").url in message
    assert "weights='/path/to/B_16-i21k-300ep" in message


def test_registered_name_downloads_through_get_file(monkeypatch):
    from keras_vit.models import variants

    # A registered tiny variant "T/8" whose checkpoint is the committed fixture.
    monkeypatch.setitem(variants.VARIANTS, "T", dict(num_layers=2, hidden_size=24, mlp_dim=48,
                                                     num_heads=2))
    entry = registry.Checkpoint("T/8", "tiny_test", "https://example.invalid/tiny.npz", 32, 5,
                                sha256="a" * 64)
    monkeypatch.setitem(registry.CHECKPOINTS, entry.name, entry)
    calls = []

    def fake_get_file(**kwargs):
        calls.append(kwargs)
        return NPZ

    monkeypatch.setattr(keras.utils, "get_file", fake_get_file)
    assert_logits_match(keras_vit.convert_checkpoint("T/8:tiny_test"), REFERENCE["original"])
    assert calls[0]["origin"] == entry.url and calls[0]["file_hash"] == "a" * 64
    assert calls[0]["hash_algorithm"] == "sha256"
    # The factory path: a name relative to the variant, a new head, a new size.
    model = keras_vit.ViT("T/8", image_size=48, num_classes=3)
    tuned = load_pretrained("tiny_test", config=model.config, variant="T/8")
    assert tuned.config.grid_size == (6, 6) and tuned.config.num_classes == 3
    assert not {v.path: v.numpy() for v in tuned.weights}["head/kernel"].any()
    assert len(calls) == 2


def test_unknown_name_lists_the_registered_ones():
    with pytest.raises(ValueError, match="augreg_in21k"):
        keras_vit.convert_checkpoint("not_a_checkpoint", variant="B/16")


# The command line: one line, non-zero exit, no traceback, no output file.

def cli_ok(capsys, *argv):
    rc = cli.main(["convert", *argv])
    captured = capsys.readouterr()
    assert rc == 0, captured.err
    return captured.out


def cli_error(capsys, tmp_path, *argv):
    out = tmp_path / "out.keras"
    rc = cli.main(["convert", *argv, "--output", str(out)])
    err = capsys.readouterr().err.strip()
    assert rc != 0
    assert "Traceback" not in err and len(err.splitlines()) == 1, err
    assert err.startswith("keras-vit convert: error:"), err
    assert not out.exists()
    assert [p.name for p in tmp_path.iterdir() if p.name.startswith(".convert-")] == []
    return err


def test_cli_converts_timm_with_set(tmp_path, capsys):
    out = tmp_path / "timm.keras"
    printed = cli_ok(capsys, TIMM, "--output", str(out), "--set", "num_heads=2",
                     "--set", "gelu_approximate=false")
    assert "2 heads" in printed
    assert_logits_match(keras.models.load_model(out), REFERENCE["timm"])


def test_cli_format_and_variant_flags(tmp_path, capsys):
    out = tmp_path / "hf.keras"
    cli_ok(capsys, HF, "--format", "hf", "--output", str(out))
    assert_logits_match(keras.models.load_model(out), REFERENCE["hf"])
    err = cli_error(capsys, tmp_path, NPZ, "--variant", "B/16")
    assert "B/16" in err


def test_cli_refuses_to_overwrite_without_force(tmp_path, capsys):
    out = tmp_path / "m.keras"
    out.write_text("keep me")
    assert cli.main(["convert", NPZ, "--output", str(out)]) == 1
    assert "--force" in capsys.readouterr().err and out.read_text() == "keep me"
    cli_ok(capsys, NPZ, "--output", str(out), "--force")
    assert_logits_match(keras.models.load_model(out), REFERENCE["original"])


def test_cli_truncated_npz(tmp_path, capsys):
    data = open(NPZ, "rb").read()
    (tmp_path / "cut.npz").write_bytes(data[: len(data) // 2])
    assert "npz" in cli_error(capsys, tmp_path, str(tmp_path / "cut.npz"))


def test_cli_corrupt_npz(tmp_path, capsys):
    data = bytearray(open(NPZ, "rb").read())
    for i in range(2000, len(data) - 2000, 997):  # scribble over the compressed members
        data[i] ^= 0xFF
    (tmp_path / "bad.npz").write_bytes(bytes(data))
    cli_error(capsys, tmp_path, str(tmp_path / "bad.npz"))


def test_cli_pickled_npz_is_refused_unopened(tmp_path, capsys, monkeypatch):
    import pickle

    np.savez(tmp_path / "evil.npz", x=np.array([{"a": 1}], dtype=object))
    monkeypatch.setattr(pickle, "loads", lambda *a, **k: pytest.fail("unpickled"))
    monkeypatch.setattr(pickle, "load", lambda *a, **k: pytest.fail("unpickled"))
    assert "pickle" in cli_error(capsys, tmp_path, str(tmp_path / "evil.npz"))


def test_cli_wrong_format(tmp_path, capsys):
    (tmp_path / "notes.txt").write_text("not a checkpoint\n")
    assert "cannot tell the format" in cli_error(capsys, tmp_path, str(tmp_path / "notes.txt"))
    # An .npz of something else than a ViT.
    np.savez(tmp_path / "other.npz", weights=np.zeros(3))
    assert "embedding/kernel" in cli_error(capsys, tmp_path, str(tmp_path / "other.npz"))
    # A timm file read as HF.
    assert cli_error(capsys, tmp_path, TIMM, "--format", "hf")


def test_cli_truncated_safetensors(tmp_path, capsys):
    data = open(TIMM, "rb").read()
    (tmp_path / "cut.safetensors").write_bytes(data[: len(data) - 100])
    assert "truncated" in cli_error(capsys, tmp_path, str(tmp_path / "cut.safetensors"),
                                    "--format", "timm", "--set", "num_heads=2")


def test_cli_bad_hf_config(tmp_path, capsys):
    shutil.copytree(HF, tmp_path / "m")
    (tmp_path / "m" / "config.json").write_text("{ not json")
    assert "config.json" in cli_error(capsys, tmp_path, str(tmp_path / "m"))


def test_cli_missing_file_and_bad_set(tmp_path, capsys):
    assert "No checkpoint" in cli_error(capsys, tmp_path, str(tmp_path / "nope.npz"))
    assert "FIELD=VALUE" in cli_error(capsys, tmp_path, NPZ, "--set", "num_heads")
    assert "Unknown ViTConfig field" in cli_error(capsys, tmp_path, NPZ, "--set", "heads=2")


def test_source_without_head(tmp_path):
    """A pre-logits layer without a head (HF ViTModel's pooler): features or a zero head."""
    items = {k: v for k, v in npz_items(NPZ).items() if not k.startswith("head/")}
    np.savez(tmp_path / "nohead.npz", **items)
    path = str(tmp_path / "nohead.npz")
    features = keras_vit.convert_checkpoint(path)  # the pre-logits (pooler) features
    assert features.config.include_top is False and features.config.representation_size == 16
    full = keras_vit.convert_checkpoint(NPZ)
    head = {v.path: v.numpy() for v in full.weights}
    np.testing.assert_allclose(np.asarray(features(PIXELS)) @ head["head/kernel"] + head["head/bias"],
                               REFERENCE["original"], atol=1e-4 * np.abs(REFERENCE["original"]).max())
    zero = keras_vit.convert_checkpoint(path, num_classes=4)
    assert zero.config.representation_size == 16 and not np.asarray(zero(PIXELS)).any()
    config = keras_vit.ViTConfig(image_size=32, patch_size=8, hidden_size=24, num_layers=2,
                                 num_heads=2, mlp_dim=48, num_classes=4)
    tuned = load_pretrained(path, config=config)  # pre-logits dropped, as the original does
    assert tuned.config.representation_size is None and not np.asarray(tuned(PIXELS)).any()


def test_timm_hybrid_r50_stem_matches_timm():
    """The hybrid stem (weight-standardised convs, GroupNorm, "same" padding)
    against timm's ResNetV2 + HybridEmbed (tests/fixtures/make_hybrid_fixture.py)."""
    model = keras_vit.convert_checkpoint(
        os.path.join(FIXTURES, "timm_hybrid_tiny.safetensors"), num_heads=2)
    c = model.config
    assert (c.hybrid_layers, c.hybrid_width, c.patch_size, c.grid_size) == ((1,), 32, 1, (8, 8))
    assert model.get_layer("stem_conv").epsilon == 1e-8
    assert_logits_match(model, np.load(os.path.join(FIXTURES, "timm_hybrid_logits.npy")))


def test_live_tests_are_marked_and_transformers_is_in_the_test_extra():
    """Issue 21's "What must hold": the live variants are marked `live`, and CI's venv
    (`pip install ".[tf,test]"`) has transformers, so those tests run there. timm and
    keras-hub stay out of the extra: timm's torchvision does not load beside CI's torch
    2.13.0 and keras-hub's tensorflow-text installs the full TensorFlow wheel over
    tensorflow-cpu (tests/live.py skips, saying so)."""
    root = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..")
    with open(os.path.join(root, "pyproject.toml")) as f:
        text = f.read()
    extra = re.search(r"^test = \[(.*?)^\]", text, re.S | re.M).group(1)
    assert re.search(r'^\s*"transformers[<>=]', extra, re.M)
    assert not re.search(r'^\s*"(timm|keras-hub|keras_hub)', extra, re.M)
    assert re.search(r'^\s*"live: ', text, re.M)  # the marker is declared
    checked = 0
    names = ("test_checkpoints_live.py", "test_checkpoints_families_live.py",
             "test_export_checkpoint.py", "test_keras_hub.py", "test_hub.py",
             "test_surgery.py")
    live_files = {os.path.basename(p) for p in glob.glob(os.path.join(root, "tests", "*_live.py"))}
    assert live_files <= set(names), live_files  # a new *_live.py file: add it here
    for path in (os.path.join(root, "tests", name) for name in names):
        with open(path) as f:
            source = f.read()
        module_marked = re.search(r"^pytestmark = pytest\.mark\.live$", source, re.M)
        assert module_marked or not path.endswith("_live.py"), path
        for decorators, name in re.findall(r"((?:^@.*\n)*)^def (test_\w*_live\w*)\(",
                                            source, re.M):
            assert module_marked or "@pytest.mark.live" in decorators, f"{path}::{name}"
            checked += 1
    assert checked >= 10
