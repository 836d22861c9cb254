"""hf:// names resolved through huggingface_hub, offline, on a cache laid out by
huggingface_hub's own code (`repo_folder_name`, `_create_symlink` into blobs/,
`_cache_commit_hash_for_specific_revision` for refs/main) and checked valid by
its `scan_cache_dir`. The checkpoints are tiny random ones written by
`export_checkpoint` (timm and HF folders). Needs huggingface_hub (the `hub`
extra); where it is absent only the install message is tested. Run the rest
with the reference venv:

    KERAS_BACKEND=torch PYTHONPATH=. /work/refvenv/bin/python -m pytest -q tests/test_hub.py
"""

import hashlib
import json
import os
import subprocess
import sys

import numpy as np
import pytest

import keras_vit
from keras_vit.checkpoints import CheckpointError
from keras_vit.checkpoints.export import export_checkpoint

COMMIT = "0123456789abcdef0123456789abcdef01234567"
TINY = dict(image_size=(32, 48), patch_size=16, hidden_size=32, num_layers=2, num_heads=2,
            mlp_dim=64, num_classes=5)


def perturbed(seed=0, **fields):
    model = keras_vit.ViT(**dict(TINY, **fields))
    rng = np.random.default_rng(seed)
    for v in model.weights:
        v.assign(v.numpy() + rng.normal(0, 0.2, v.shape).astype("float32"))
    return model


def pixels():
    return np.random.default_rng(1).uniform(0, 255, (2, 32, 48, 3)).astype("float32")


def logits(model, x):
    import keras

    return keras.ops.convert_to_numpy(model(x))


def cache_repo(cache, repo_id, folder=None, files=None, revision="main"):
    """Lays `folder`'s files (or `files`, name -> bytes) into the hub cache as
    hf_hub_download does: blobs named by their hash, snapshot symlinks, refs/REVISION."""
    from huggingface_hub import file_download as fd

    files = dict(files or {})
    for name in os.listdir(folder) if folder else ():
        with open(os.path.join(folder, name), "rb") as f:
            files[name] = f.read()
    storage = os.path.join(cache, fd.repo_folder_name(repo_id=repo_id, repo_type="model"))
    for name, data in files.items():
        blob = os.path.join(storage, "blobs", hashlib.sha256(data).hexdigest())
        os.makedirs(os.path.dirname(blob), exist_ok=True)
        with open(blob, "wb") as f:
            f.write(data)
        pointer = os.path.join(storage, "snapshots", COMMIT, name)
        os.makedirs(os.path.dirname(pointer), exist_ok=True)
        fd._create_symlink(blob, pointer, new_blob=True)
    fd._cache_commit_hash_for_specific_revision(storage, revision, COMMIT)
    return storage


@pytest.fixture
def offline_cache(tmp_path, monkeypatch):
    hub = pytest.importorskip("huggingface_hub")
    from huggingface_hub import constants

    cache = str(tmp_path / "hub")
    os.makedirs(cache)
    monkeypatch.setenv("HF_HUB_CACHE", cache)
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setattr(constants, "HF_HUB_CACHE", cache)
    monkeypatch.setattr(constants, "HF_HUB_OFFLINE", True)
    return hub, cache


def test_hf_and_timm_repos_from_an_offline_cache(tmp_path, offline_cache):
    hub, cache = offline_cache
    hf_model, timm_model = perturbed(), perturbed(seed=1, pooling="gap", fc_norm=True)
    export_checkpoint(hf_model, tmp_path / "hf", format="hf")
    export_checkpoint(timm_model, tmp_path / "timm", format="timm")
    cache_repo(cache, "acme/tiny-vit", tmp_path / "hf")
    storage = cache_repo(cache, "timm/vit_tiny.test", tmp_path / "timm")
    scan = hub.scan_cache_dir(cache)  # huggingface_hub's own check of the layout
    assert not scan.warnings and {r.repo_id for r in scan.repos} == {
        "acme/tiny-vit", "timm/vit_tiny.test"}
    assert os.path.islink(os.path.join(storage, "snapshots", COMMIT, "model.safetensors"))
    x = pixels()
    for name, want in (("hf://acme/tiny-vit", hf_model), ("hf://timm/vit_tiny.test", timm_model)):
        got = keras_vit.ViT(weights=name)
        a, b = logits(want, x), logits(got, x)
        assert np.abs(a - b).max() <= 1e-5 * np.abs(a).max()
    # the factories' new head, and a pinned revision
    new = keras_vit.ViT(weights=f"hf://acme/tiny-vit@{COMMIT}", num_classes=3)
    assert new.output_shape == (None, 3)


def test_convert_cli_offline(tmp_path, offline_cache):
    _, cache = offline_cache
    model = perturbed()
    export_checkpoint(model, tmp_path / "hf", format="hf")
    cache_repo(cache, "acme/tiny-vit", tmp_path / "hf")
    env = dict(os.environ, HF_HUB_CACHE=cache, HF_HUB_OFFLINE="1")
    run = subprocess.run([sys.executable, "-m", "keras_vit", "convert", "hf://acme/tiny-vit",
                          "--output", str(tmp_path / "m.keras")],
                         capture_output=True, text=True, env=env)
    assert run.returncode == 0, run.stderr
    back = keras_vit.convert_checkpoint(str(tmp_path / "m.keras"))
    x = pixels()
    a = logits(model, x)
    assert np.abs(a - logits(back, x)).max() <= 1e-5 * np.abs(a).max()
    missing = subprocess.run([sys.executable, "-m", "keras_vit", "convert", "hf://acme/absent",
                              "--output", str(tmp_path / "n.keras")],
                             capture_output=True, text=True, env=env)
    assert missing.returncode != 0 and len(missing.stderr.strip().splitlines()) == 1
    assert "not in the hub cache" in missing.stderr


def test_finetune_weights_from_the_hub_cli(tmp_path, offline_cache):
    """`keras-vit finetune --weights hf://...` (issue 21, item 2) in a fresh process,
    offline: the run starts from the hub model's backbone with a new 10-way digits head."""
    _, cache = offline_cache
    model = perturbed()
    export_checkpoint(model, tmp_path / "hf", format="hf")
    cache_repo(cache, "acme/tiny-vit", tmp_path / "hf")
    env = dict(os.environ, HF_HUB_CACHE=cache, HF_HUB_OFFLINE="1")
    run = subprocess.run([sys.executable, "-m", "keras_vit", "finetune", "--weights",
                          "hf://acme/tiny-vit", "--epochs", "1", "--no-tensorboard",
                          "--output-dir", str(tmp_path / "run")],
                         capture_output=True, text=True, env=env)
    assert run.returncode == 0, run.stderr[-2000:]
    with open(tmp_path / "run" / "metrics.json") as f:
        config = json.load(f)["config"]
    assert config["weights"] == "hf://acme/tiny-vit"
    built = config["model_config"]
    assert (built["hidden_size"], built["num_layers"], built["patch_size"]) == (32, 2, 16)
    assert built["num_classes"] == 10  # digits' head, not the hub model's 5


def test_unsupported_architecture_refused_before_the_weights(offline_cache):
    _, cache = offline_cache
    cache_repo(cache, "acme/swin", files={"config.json": json.dumps(
        {"model_type": "swin", "architectures": ["SwinForImageClassification"]}).encode()})
    with pytest.raises(CheckpointError, match=r"hf://acme/swin: config.json has model_type "
                                              r"'swin' \(architectures \['Swin"):
        keras_vit.ViT(weights="hf://acme/swin")
    cache_repo(cache, "timm/convnext_tiny.x", files={"config.json": json.dumps(
        {"architecture": "convnext_tiny", "num_classes": 10}).encode()})
    with pytest.raises(CheckpointError, match=r"'convnext_tiny' is not a timm VisionTransformer"):
        keras_vit.convert_checkpoint("hf://timm/convnext_tiny.x")


def test_pickled_only_repo_refused(offline_cache):
    hub, cache = offline_cache
    from huggingface_hub import file_download as fd

    storage = cache_repo(cache, "acme/old", files={"config.json": json.dumps(
        {"model_type": "vit"}).encode(), "pytorch_model.bin": b"not read"})
    # what hf_hub_download records for a file the repo lacks
    os.makedirs(os.path.join(storage, ".no_exist", COMMIT))
    open(os.path.join(storage, ".no_exist", COMMIT, "model.safetensors"), "w").close()
    assert hub.try_to_load_from_cache("acme/old", "model.safetensors") is fd._CACHED_NO_EXIST
    with pytest.raises(CheckpointError, match=r"hf://acme/old has no model.safetensors.*"
                                              r"name its revision: hf://acme/old@refs/pr/N"):
        keras_vit.ViT(weights="hf://acme/old")


def test_a_cached_repo_loads_without_opening_a_connection(tmp_path, offline_cache, monkeypatch):
    """No network at run time but an explicit download: with the repo cached and
    HF_HUB_OFFLINE=1, a hub name is read with every socket connection refused."""
    import socket

    _, cache = offline_cache
    model = perturbed(seed=3)
    export_checkpoint(model, tmp_path / "hf", format="hf")
    cache_repo(cache, "acme/tiny-vit", tmp_path / "hf")

    def refuse(*args, **kwargs):
        raise AssertionError(f"a network connection was opened: {args[1:] or kwargs}")

    monkeypatch.setattr(socket.socket, "connect", refuse)
    monkeypatch.setattr(socket, "create_connection", refuse)
    got = keras_vit.ViT(weights="hf://acme/tiny-vit")
    x = pixels()
    a = logits(model, x)
    assert np.abs(a - logits(got, x)).max() <= 1e-5 * np.abs(a).max()


def test_a_pull_request_revision_from_the_cache(tmp_path, offline_cache):
    """google/vit-large-patch16-224 and facebook/deit-base-patch16-224 have their
    model.safetensors only in an open pull request: the registry names them @refs/pr/N."""
    hub, cache = offline_cache
    model = perturbed(seed=2)
    export_checkpoint(model, tmp_path / "hf", format="hf")
    storage = cache_repo(cache, "acme/pr-only", tmp_path / "hf", revision="refs/pr/2")
    assert os.path.isfile(os.path.join(storage, "refs", "refs", "pr", "2"))
    assert not hub.scan_cache_dir(cache).warnings
    got = keras_vit.convert_checkpoint("hf://acme/pr-only@refs/pr/2")
    x = pixels()
    a = logits(model, x)
    assert np.abs(a - logits(got, x)).max() <= 1e-5 * np.abs(a).max()
    with pytest.raises(CheckpointError, match=r"not in the hub cache"):  # main was never cached
        keras_vit.convert_checkpoint("hf://acme/pr-only")


def test_bad_names_and_no_huggingface_hub(monkeypatch):
    with pytest.raises(CheckpointError, match=r"is not a hub name: expected hf://OWNER/NAME"):
        keras_vit.ViT(weights="hf://no-owner")
    monkeypatch.setitem(sys.modules, "huggingface_hub", None)  # as if not installed
    with pytest.raises(CheckpointError, match=r'need huggingface_hub.*pip install "\.\[hub\]"'):
        keras_vit.ViT(weights="hf://google/vit-base-patch16-224")


def test_registry_lists_hub_names():
    from keras_vit.checkpoints import hub, registry

    names = [c.name for c in registry.HUB_CHECKPOINTS]
    assert "hf://timm/vit_base_patch16_224.augreg2_in21k_ft_in1k" in names
    assert "hf://google/vit-base-patch16-224" in names
    for name in names:
        hub.parse(name)  # each is a valid hub name
    path = os.path.join(os.path.dirname(__file__), "..", "weights", "CHECKPOINTS.md")
    with open(path) as f:
        assert registry.hub_markdown_table() in f.read()  # the doc is regenerated
    assert all(c.source and c.licence for c in registry.HUB_CHECKPOINTS)


TIMM_CFGS = os.path.join(os.path.dirname(__file__), "fixtures", "timm_pretrained_cfgs.json")


def test_registry_timm_entries_say_what_timms_pretrained_cfgs_say():
    """Each hf://timm/ entry against timm's own cfg of that name, as timm gives it
    (tests/fixtures/make_timm_pretrained_cfgs.py): size, classes, mean/std, licence."""
    from keras_vit.checkpoints import registry

    with open(TIMM_CFGS) as f:
        cfgs = json.load(f)["cfgs"]
    timm_entries = [c for c in registry.HUB_CHECKPOINTS if c.name.startswith("hf://timm/")]
    assert len(timm_entries) >= 8
    for c in timm_entries:
        name = c.name[len("hf://timm/"):]
        assert name in cfgs, f"{name}: rerun tests/fixtures/make_timm_pretrained_cfgs.py"
        cfg = cfgs[name]
        assert cfg["hf_hub_id"] == f"timm/{name}", name
        assert cfg["input_size"] == [3, c.resolution, c.resolution], name
        assert cfg["num_classes"] == c.num_classes, name
        assert cfg["mean"] == pytest.approx(c.normalization_mean, abs=1e-9), name
        assert cfg["std"] == pytest.approx(c.normalization_std, abs=1e-9), name
        assert cfg["license"] == c.licence, name


def test_registry_pins_the_facts_a_wrong_edit_would_break():
    """Numbers as the sources print them (timm.data.constants, the repos' config.json and
    preprocessor_config.json), typed here, not read from the code under test."""
    from keras_vit.checkpoints import registry

    by_name = {c.name: c for c in registry.HUB_CHECKPOINTS}

    def facts(name):
        c = by_name[name]
        return c.resolution, c.num_classes, c.normalization_mean, c.normalization_std

    half = (0.5, 0.5, 0.5)
    imagenet = (0.485, 0.456, 0.406), (0.229, 0.224, 0.225)
    clip = (0.48145466, 0.4578275, 0.40821073), (0.26862954, 0.26130258, 0.27577711)
    assert facts("hf://timm/vit_base_patch16_clip_224.openai_ft_in1k") == (224, 1000, *clip)
    assert facts("hf://timm/deit_base_patch16_224.fb_in1k") == (224, 1000, *imagenet)
    assert facts("hf://timm/vit_small_patch14_dinov2.lvd142m") == (518, 0, *imagenet)
    assert facts("hf://facebook/dinov2-small") == (518, 0, *imagenet)
    assert facts("hf://timm/vit_base_patch16_224.augreg_in21k") == (224, 21843, half, half)
    assert facts("hf://timm/vit_base_patch16_384.augreg_in21k_ft_in1k") == (384, 1000, half, half)
    assert facts("hf://timm/vit_base_patch16_siglip_256.webli") == (256, 0, half, half)
    # HF's DeiT folder: its preprocessor_config.json (and model card) say 0.5, not ImageNet's
    assert facts("hf://facebook/deit-base-patch16-224@refs/pr/3") == (224, 1000, half, half)
    assert facts("hf://google/vit-base-patch16-224-in21k") == (224, 0, half, half)
    # the HF readers' defaults where a folder has no preprocessor_config.json agree
    from keras_vit.checkpoints import hf

    assert hf._DEFAULT_NORMALIZATION["clip_vision_model"] == clip
    assert hf._DEFAULT_NORMALIZATION["dinov2"] == imagenet


@pytest.mark.live
def test_timm_pretrained_cfgs_fixture_is_timms():
    """Where timm imports: the committed cfgs are still what timm says."""
    from tests.live import require

    timm = require("timm")
    with open(TIMM_CFGS) as f:
        cfgs = json.load(f)["cfgs"]
    for name, want in cfgs.items():
        cfg = timm.models.get_pretrained_cfg(name)
        got = dict(input_size=list(cfg.input_size), num_classes=cfg.num_classes,
                   mean=list(cfg.mean), std=list(cfg.std), license=cfg.license,
                   hf_hub_id=cfg.hf_hub_id)
        assert got == want, name
