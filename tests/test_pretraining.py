"""Masked patch prediction (paper section 4.6, App. B.1.2): corruption by counting,
targets by value on hand-made images, the loss on corrupted patches only, save/load,
and the pre-trained backbone in every classifier of its shape."""

import json
import os
import subprocess
import sys

import keras
import numpy as np
import pytest

import keras_vit
from keras_vit.errors import ArgumentError
from keras_vit.pretraining import (
    MaskedPatchPrediction,
    corrupt_patches,
    masked_patch_loss,
)
from keras_vit.pretraining.objectives import KEPT, MASKED, REPLACED, UNCORRUPTED
from keras_vit.surgery import transfer_weights
from keras_vit.training import load_for_finetuning
from tests.layer_checks import check_config_round_trip

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def tiny_backbone(image_size=16, patch_size=4, channels=3, **fields):
    config = keras_vit.ViTConfig(
        image_size=image_size, patch_size=patch_size, hidden_size=16, num_layers=1,
        num_heads=2, mlp_dim=32, num_channels=channels, include_top=False, **fields,
    )
    return keras_vit.VisionTransformer(config)


def numpy(x):
    return keras.ops.convert_to_numpy(x)


@pytest.mark.portable
@pytest.mark.parametrize("seed", ["generator", "int"])
def test_corruption_counts_and_kinds_on_a_fixed_seed(seed):
    # The docstring allows both; a stateless int once gave all three draws the
    # same numbers (every corrupted patch masked: 1.00/0.00/0.00).
    batch, n, width = 40, 64, 4
    ids = np.arange(batch * n, dtype="float32").reshape(batch, n, 1) + 1.0
    embeddings = np.repeat(ids, width, axis=-1)  # each patch's embedding is its id
    mask_token = np.full((1, 1, width), -7.0, "float32")
    make_seed = (lambda: keras.random.SeedGenerator(3)) if seed == "generator" else (lambda: 3)
    out, kinds = corrupt_patches(embeddings, mask_token, make_seed())
    out, kinds = numpy(out), numpy(kinds)
    again_out, again_kinds = corrupt_patches(embeddings, mask_token, make_seed())
    np.testing.assert_array_equal(numpy(again_kinds), kinds)  # the same seed, the same draw
    np.testing.assert_array_equal(numpy(again_out), out)
    corrupted = kinds != UNCORRUPTED
    # Exactly half of every image's patches.
    np.testing.assert_array_equal(corrupted.sum(axis=1), np.full(batch, n // 2))
    total = corrupted.sum()  # 1280 corrupted patches
    for kind, p in ((MASKED, 0.8), (REPLACED, 0.1), (KEPT, 0.1)):
        share = (kinds == kind).sum() / total
        sigma = np.sqrt(p * (1 - p) / total)
        assert abs(share - p) < 4 * sigma, (kind, share, p)
    # What each kind did to the embedding.
    np.testing.assert_array_equal(out[kinds == MASKED], -7.0)
    np.testing.assert_array_equal(out[kinds == KEPT], embeddings[kinds == KEPT])
    np.testing.assert_array_equal(out[kinds == UNCORRUPTED], embeddings[kinds == UNCORRUPTED])
    swapped = out[kinds == REPLACED][:, 0]
    assert np.all(swapped != embeddings[kinds == REPLACED][:, 0])  # another patch
    assert np.all((swapped >= 1) & (swapped <= batch * n) & (swapped == np.round(swapped)))
    # Other images' patches are drawn too (the batch is the pool).
    own_image = (swapped - 1) // n == np.nonzero(kinds == REPLACED)[0]
    assert not own_image.all()


@pytest.mark.portable
def test_a_replaced_patch_takes_the_other_one_of_two():
    # Two patches, both replaced: each must become the other (a shift of 0 would
    # keep it, which a large batch shows too rarely to catch).
    embeddings = np.array([[[1.0, 1.0], [2.0, 2.0]]], "float32")
    for seed in range(5):
        out, kinds = corrupt_patches(embeddings, np.zeros((1, 1, 2), "float32"), seed,
                                     corruption_rate=1.0, mask_rate=0.0, random_rate=1.0)
        np.testing.assert_array_equal(numpy(kinds), [[REPLACED, REPLACED]])
        np.testing.assert_array_equal(numpy(out), [[[2.0, 2.0], [1.0, 1.0]]])


@pytest.mark.portable
def test_mean_color_target_of_hand_made_rgb_image():
    # 8x8 image, 4x4 patches in raster order, each of one colour.
    colours = [(200, 100, 30), (255, 255, 255), (0, 0, 0), (31, 32, 63)]
    image = np.zeros((1, 8, 8, 3), "float32")
    for k, colour in enumerate(colours):
        r, c = divmod(k, 2)
        image[0, 4 * r : 4 * r + 4, 4 * c : 4 * c + 4] = colour
    model = MaskedPatchPrediction(tiny_backbone(image_size=8, patch_size=4))
    # floor(v / 32) per channel, read as base-8 digits r g b.
    expected = [6 * 64 + 3 * 8 + 0, 7 * 64 + 7 * 8 + 7, 0, 0 * 64 + 1 * 8 + 1]
    np.testing.assert_array_equal(numpy(model.compute_targets(image)), [expected])
    assert model(image)["predictions"].shape == (1, 4, 512)


@pytest.mark.portable
def test_mean_color_target_averages_the_patch_and_grayscale_has_8_classes():
    image = np.zeros((1, 4, 8, 1), "float32")
    image[0, :, :4] = 130.0  # floor(130 / 32) = 4
    image[0, :2, 4:] = 255.0  # mean 127.5 -> 3
    model = MaskedPatchPrediction(tiny_backbone(image_size=(4, 8), channels=1))
    np.testing.assert_array_equal(numpy(model.compute_targets(image)), [[4, 3]])
    assert model(image)["predictions"].shape == (1, 2, 8)


@pytest.mark.portable
def test_downsampled_target_of_hand_made_patch():
    # One 8x8 patch: left half red, right half blue; cell (0, 0) half 0, half 64.
    image = np.zeros((1, 8, 8, 3), "float32")
    image[0, :, :4] = (255, 0, 0)
    image[0, :, 4:] = (0, 0, 255)
    image[0, 0:2, 0:2] = 0.0
    image[0, 0, 0:2] = (64, 0, 0)  # mean red of the 2x2 cell: 32 -> 1
    model = MaskedPatchPrediction(tiny_backbone(image_size=8, patch_size=8),
                                  target="downsampled")
    expected = np.array([[448, 448, 7, 7]] * 4)
    expected[0, 0] = 1 * 64
    np.testing.assert_array_equal(numpy(model.compute_targets(image)), [[expected.ravel()]])
    assert model(image)["predictions"].shape == (1, 1, 16, 512)


@pytest.mark.portable
def test_colour_targets_stay_float32_under_mixed_precision():
    images = np.random.default_rng(6).uniform(0, 255, (4, 16, 16, 3)).astype("float32")
    config = tiny_backbone().config
    full = MaskedPatchPrediction(keras_vit.VisionTransformer(config), target="downsampled")
    mixed = MaskedPatchPrediction(
        keras_vit.VisionTransformer(config, dtype="mixed_bfloat16"), target="downsampled")
    np.testing.assert_array_equal(numpy(mixed.compute_targets(images)),
                                  numpy(full.compute_targets(images)))
    assert numpy(mixed(images)["predictions"]).dtype == np.float32


@pytest.mark.portable
def test_pixels_target_is_the_normalised_patch():
    image = np.random.default_rng(0).uniform(0, 255, (2, 8, 8, 3)).astype("float32")
    model = MaskedPatchPrediction(tiny_backbone(image_size=8, patch_size=4), target="pixels")
    # Patches in raster order, each flattened (row, col, channel); x / 127.5 - 1.
    patches = image.reshape(2, 2, 4, 2, 4, 3).transpose(0, 1, 3, 2, 4, 5).reshape(2, 4, 48)
    np.testing.assert_allclose(numpy(model.compute_targets(image)), patches / 127.5 - 1,
                               atol=1e-6)


@pytest.mark.portable
@pytest.mark.parametrize("target", ["mean_color", "downsampled", "pixels"])
def test_loss_is_taken_on_corrupted_patches_only(target):
    rng = np.random.default_rng(1)
    b, n = 3, 6
    corrupted = rng.random((b, n)) < 0.5
    corrupted[0, 0], corrupted[0, 1] = True, False
    if target == "pixels":
        targets = rng.normal(size=(b, n, 12)).astype("float32")
        predictions = rng.normal(size=(b, n, 12)).astype("float32")
        per = ((predictions - targets) ** 2).mean(-1)
    else:
        shape = (b, n) if target == "mean_color" else (b, n, 16)
        targets = rng.integers(0, 8, shape).astype("int32")
        predictions = rng.normal(size=shape + (8,)).astype("float32")
        log_p = predictions - np.log(np.exp(predictions).sum(-1, keepdims=True))
        per = -np.take_along_axis(log_p, targets[..., None], -1)[..., 0]
        per = per if target == "mean_color" else per.mean(-1)
    loss = float(numpy(masked_patch_loss(targets, predictions, corrupted, target)))
    np.testing.assert_allclose(loss, per[corrupted].mean(), rtol=1e-5)
    # Anything at an uncorrupted patch, even a huge error, leaves the loss as it was.
    changed_p, changed_t = predictions.copy(), targets.copy()
    changed_p[~corrupted] = 1e4
    changed_t[~corrupted] = 0 if target != "pixels" else -1e4
    again = float(numpy(masked_patch_loss(changed_t, changed_p, corrupted, target)))
    assert again == loss
    # ...while a change at a corrupted patch moves it (the check can fail).
    changed_p = predictions.copy()
    changed_p[0, 0].flat[0] += 3.0  # one logit or value of a corrupted patch
    assert float(numpy(masked_patch_loss(targets, changed_p, corrupted, target))) != loss


def test_gradient_reaches_corrupted_patches_only():
    import tensorflow as tf

    if keras.backend.backend() != "tensorflow":
        pytest.skip("the gradient is taken with tf.GradientTape")
    model = MaskedPatchPrediction(tiny_backbone(channels=1), seed=0)
    images = np.random.default_rng(2).uniform(0, 255, (4, 16, 16, 1)).astype("float32")
    out = model(images)
    predictions = tf.Variable(out["predictions"])
    with tf.GradientTape() as tape:
        loss = model.compute_loss(y_pred=dict(out, predictions=predictions))
    grad = np.abs(tape.gradient(loss, predictions).numpy()).sum(-1)  # (B, N)
    corrupted = numpy(out["corruption"]) != UNCORRUPTED
    assert np.all(grad[~corrupted] == 0.0)
    assert np.all(grad[corrupted] > 0.0)


def test_pretraining_model_trains_saves_and_loads(tmp_path):
    backbone = tiny_backbone(channels=1)
    model = MaskedPatchPrediction(backbone, seed=4)
    assert len(model.trainable_weights) == len(backbone.trainable_weights) + 3  # mask, head
    images = np.random.default_rng(3).uniform(0, 255, (16, 16, 16, 1)).astype("float32")
    model.compile(optimizer=keras.optimizers.AdamW(1e-2), jit_compile=False)
    before = [np.array(w) for w in model.trainable_weights]
    model.fit(images, batch_size=8, epochs=1, verbose=0)
    changed = [not np.array_equal(a, np.array(w)) for a, w in zip(before, model.trainable_weights)]
    assert all(changed), [w.path for w, c in zip(model.trainable_weights, changed) if not c]

    clone = check_config_round_trip(model)
    assert clone.target == "mean_color" and clone.seed == 4
    path = str(tmp_path / "pretraining.keras")
    model.save(path)
    loaded = keras.models.load_model(path)
    assert isinstance(loaded, MaskedPatchPrediction)
    for a, b in zip(model.weights, loaded.weights):
        assert a.path == b.path
        np.testing.assert_array_equal(np.array(a), np.array(b))
    loaded.seed_generator.state.assign(model.seed_generator.state.value)
    expected, got = model(images, training=False), loaded(images, training=False)
    for key in ("predictions", "targets", "corruption"):
        np.testing.assert_allclose(numpy(got[key]), numpy(expected[key]), atol=1e-6, rtol=0)
    # The saved backbone is a plain headless VisionTransformer.
    loaded.backbone.save(str(tmp_path / "backbone.keras"))
    assert not keras.models.load_model(str(tmp_path / "backbone.keras")).config.include_top


def _assert_backbone_weights_equal(source, classifier):
    src = {v.path: np.array(v) for v in source.weights}
    dst = {v.path: np.array(v) for v in classifier.weights if not v.path.startswith("head/")}
    assert set(src) == set(dst), (set(src) ^ set(dst))
    for path in src:
        np.testing.assert_array_equal(dst[path], src[path], err_msg=path)
    head = classifier.get_layer("head")
    assert not np.any(np.array(head.kernel)) and not np.any(np.array(head.bias))


def test_pretrained_backbone_loads_into_every_classifier_bit_identically(tmp_path):
    backbone = keras_vit.ViTTiny16(image_size=32, num_layers=1, include_top=False)
    model = MaskedPatchPrediction(backbone, target="pixels", seed=0)
    rng = np.random.default_rng(4)
    for variable in model.weights:  # no weight left at its initial value (zeros, ones)
        variable.assign(variable + rng.normal(0, 0.1, variable.shape).astype("float32"))
    path = str(tmp_path / "model.keras")
    backbone.save(path)
    config = backbone.config.replace(include_top=True, num_classes=7)
    # finetune's loader, a fresh process's view of the file, and head surgery.
    _assert_backbone_weights_equal(backbone, load_for_finetuning(path, 7))
    _assert_backbone_weights_equal(backbone, keras_vit.replace_head(
        keras.models.load_model(path), 7))
    # Each classifier builder of that shape takes the weights with only the head new.
    for classifier in (
        keras_vit.ViTTiny16(num_classes=7, image_size=32, num_layers=1),
        keras_vit.ViT("Ti/16", image_size=32, num_layers=1, num_classes=7),
        keras_vit.VisionTransformer(config),
    ):
        transfer_weights(keras.models.load_model(path), classifier, skip=("head",))
        _assert_backbone_weights_equal(backbone, classifier)


@pytest.mark.slow
@pytest.mark.parametrize("factory", ["ViTTiny16", "ViTSmall16", "ViTBase16", "ViTBase32"])
def test_pretrained_full_size_backbone_loads_into_its_factory(factory, tmp_path):
    make = getattr(keras_vit, factory)
    backbone = make(image_size=64, include_top=False)
    model = MaskedPatchPrediction(backbone, seed=0)
    model.compile(optimizer=keras.optimizers.AdamW(1e-3), jit_compile=False)
    images = np.random.default_rng(5).uniform(0, 255, (2, 64, 64, 3)).astype("float32")
    model.fit(images, batch_size=2, epochs=1, verbose=0)
    path = str(tmp_path / "model.keras")
    backbone.save(path)
    _assert_backbone_weights_equal(backbone, load_for_finetuning(path, 5))
    classifier = make(num_classes=5, image_size=64)
    transfer_weights(keras.models.load_model(path), classifier, skip=("head",))
    _assert_backbone_weights_equal(backbone, classifier)


@pytest.mark.portable
def test_bad_arguments_are_refused_by_name():
    with pytest.raises(ValueError, match="`target`.*'mean_colour'"):
        MaskedPatchPrediction(tiny_backbone(), target="mean_colour")
    with pytest.raises(ValueError, match="patch_size=2"):
        MaskedPatchPrediction(tiny_backbone(patch_size=2), target="downsampled")
    with pytest.raises(ValueError, match="include_preprocessing=False"):
        MaskedPatchPrediction(tiny_backbone(include_preprocessing=False))
    with pytest.raises(ValueError, match="mask_rate=0.8, random_rate=0.3"):
        MaskedPatchPrediction(tiny_backbone(), random_rate=0.3)
    with pytest.raises(ValueError, match="`backbone`"):
        MaskedPatchPrediction(keras.Sequential([keras.layers.Dense(2)]))
    with pytest.raises(ValueError, match="ResNet stem.*hybrid_layers=\\(1,\\)"):
        MaskedPatchPrediction(tiny_backbone(image_size=32, patch_size=1, hybrid_layers=(1,),
                                            hybrid_width=32))


def _cli(*args, timeout=600):
    env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="3")
    return subprocess.run([sys.executable, "-m", "keras_vit", *args], cwd=ROOT, env=env,
                          capture_output=True, text=True, timeout=timeout)


@pytest.mark.slow  # three fresh processes: ~2-3 minutes on a loaded 2-core machine
def test_cli_pretrain_resumes_and_finetune_takes_its_backbone(tmp_path):
    run, tuned = str(tmp_path / "mpp"), str(tmp_path / "tuned")
    tiny = ["--set", "num_layers=1", "--set", "hidden_size=16", "--set", "mlp_dim=32",
            "--no-tensorboard"]
    first = _cli("pretrain", "--epochs", "1", "--output-dir", run, *tiny)
    assert first.returncode == 0, first.stderr[-2000:]
    again = _cli("pretrain", "--epochs", "2", "--output-dir", run, *tiny)
    assert again.returncode == 0, again.stderr[-2000:]
    metrics = json.load(open(os.path.join(run, "metrics.json")))
    assert metrics["resumed_from_epoch"] == 1 and metrics["epochs"] == 2
    assert metrics["config"]["target"] == "mean_color"
    assert 0 <= metrics["test_patch_accuracy"] <= 1 and np.isfinite(metrics["test_loss"])
    assert metrics["command"].startswith("keras-vit pretrain")
    rows = open(os.path.join(run, "history.csv")).read().splitlines()
    assert rows[0].startswith("epoch,") and [r.split(",")[0] for r in rows[1:]] == ["1", "2"]
    assert os.path.exists(os.path.join(run, "pretraining.keras"))
    tune = _cli("finetune", "--weights", os.path.join(run, "model.keras"), "--epochs", "1",
                "--batch-size", "64", "--output-dir", tuned, "--no-tensorboard")
    assert tune.returncode == 0, tune.stderr[-2000:]
    assert json.load(open(os.path.join(tuned, "metrics.json")))["test_examples"] == 360


# One batch an epoch (1,437 digits): one step to trace, the most of a tiny run's time.
_TINY_PRETRAIN = ["--set", "num_layers=1", "--set", "hidden_size=16", "--set", "num_heads=2",
                  "--set", "mlp_dim=32", "--batch-size", "2048", "--no-tensorboard"]


def _run_files(folder):
    return {p: os.path.getmtime(os.path.join(folder, p)) for p in sorted(os.listdir(folder))}


def test_cli_pretrain_keeps_its_run_folder_as_train_does(tmp_path, capsys):
    """`keras-vit pretrain` through main(): the command is recorded, a rerun with other
    options is refused in one line and changes nothing, the same command again does
    nothing (~9 s on a loaded 2-core machine; kill -9, extend and --overwrite are in
    the slow test below)."""
    from keras_vit.cli import main

    run = str(tmp_path / "mpp")
    args = ["pretrain", "--epochs", "1", "--output-dir", run, *_TINY_PRETRAIN]
    assert main(args) == 0, capsys.readouterr().err[-2000:]
    capsys.readouterr()
    metrics = json.load(open(os.path.join(run, "metrics.json")))
    assert metrics["command"] == "keras-vit " + " ".join(args)
    assert metrics["config"]["mask_rate"] == 0.8 and metrics["epochs"] == 1
    before = _run_files(run)
    assert {"model.keras", "pretraining.keras", "metrics.json", "history.csv",
            "checkpoint"} <= set(before)

    for extra, difference in ((["--mask-rate", "0.5"], "mask_rate 0.8 -> 0.5"),
                              (["--set", "num_layers=2"], "num_layers 1 -> 2"),
                              (["--target", "pixels"], "target 'mean_color' -> 'pixels'")):
        assert main([*args, *extra]) == 1
        err = capsys.readouterr().err.strip()
        assert len(err.splitlines()) == 1 and err.startswith("keras-vit pretrain: error:"), err
        assert run in err and difference in err and "--output-dir NEW" in err, err
        assert "--overwrite" in err, err
        assert _run_files(run) == before

    assert main(args) == 0
    assert "were already done" in capsys.readouterr().err
    assert _run_files(run) == before


@pytest.mark.slow  # four fresh processes and a kill: ~2 minutes on a loaded 2-core machine
def test_cli_pretrain_resumes_after_sigkill_extends_and_overwrites(tmp_path):
    from keras_vit.training.callbacks import read_history
    from tests.process_checks import kill_after_epochs

    run = str(tmp_path / "mpp")
    args = [sys.executable, "-m", "keras_vit", "pretrain", "--epochs", "8", "--output-dir",
            run, *_TINY_PRETRAIN[:-3], "--batch-size", "32", "--no-tensorboard"]
    history = os.path.join(run, "history.csv")
    killed_at = kill_after_epochs(args, history, cwd=ROOT)
    assert 2 <= killed_at < 8 and not os.path.exists(os.path.join(run, "model.keras"))
    out = subprocess.run(args, cwd=ROOT, capture_output=True, text=True, timeout=600)
    assert out.returncode == 0, out.stderr[-2000:]
    assert f"Resuming from epoch {killed_at} of 8" in out.stderr
    assert [int(r["epoch"]) for r in read_history(history)] == list(range(1, 9))
    metrics = json.load(open(os.path.join(run, "metrics.json")))
    assert metrics["resumed_from_epoch"] == killed_at
    assert metrics["command"] == "keras-vit " + " ".join(args[3:])

    longer = [a if a != "8" else "9" for a in args]  # --epochs 9: extends
    out = subprocess.run(longer, cwd=ROOT, capture_output=True, text=True, timeout=600)
    assert out.returncode == 0, out.stderr[-2000:]
    assert "Extending the run" in out.stderr and "Resuming from epoch 8 of 9" in out.stderr
    assert [int(r["epoch"]) for r in read_history(history)] == list(range(1, 10))
    metrics = json.load(open(os.path.join(run, "metrics.json")))
    assert [s["to_epoch"] for s in metrics["segments"]] == [killed_at, 8, 9]

    out = subprocess.run([*args, "--set", "num_layers=2", "--overwrite"], cwd=ROOT,
                         capture_output=True, text=True, timeout=600)
    assert out.returncode == 0, out.stderr[-2000:]
    metrics = json.load(open(os.path.join(run, "metrics.json")))
    assert metrics["config"]["model_config"]["num_layers"] == 2 and metrics["epochs"] == 8
    assert [int(r["epoch"]) for r in read_history(history)] == list(range(1, 9))


def test_cli_pretrain_refuses_an_unknown_target(capsys):
    from keras_vit.cli import build_parser

    with pytest.raises(SystemExit) as exit_info:
        build_parser().parse_args(["pretrain", "--target", "colour"])
    assert exit_info.value.code == 2 and "--target" in capsys.readouterr().err
    args = build_parser().parse_args(["pretrain"])
    assert (args.objective, args.target, args.data) == ("mpp", "mean_color", "digits")


@pytest.mark.slow  # ~4 minutes on a loaded 2-core machine
def test_example_smoke_prints_the_comparison_table(tmp_path):
    out = str(tmp_path / "table.md")
    result = subprocess.run(
        [sys.executable, "examples/masked_patch_prediction.py", "--smoke", "--output", out,
         "--work-dir", str(tmp_path / "runs")],
        cwd=ROOT, capture_output=True, text=True, timeout=1200,
        env=dict(os.environ, TF_CPP_MIN_LOG_LEVEL="3"),
    )
    assert result.returncode == 0, result.stderr[-2000:]
    text = open(out).read()
    assert "--smoke" in text
    for arm in ("| scratch | 0 |", "| mpp (mean_color) + fine-tune | 0 | 1 | 1 |",
                "| random init + fine-tune | 0 |"):
        assert arm in text, text


def test_pretrain_asks_the_run_for_xla_off_on_a_cpu(tmp_path):
    # The objective measured slower with XLA on a CPU: "auto" must record (and compile)
    # without it there, where a classifier's "auto" on TensorFlow compiles with XLA.
    from keras_vit.utils import has_accelerator

    if keras.backend.backend() != "tensorflow" or has_accelerator():
        pytest.skip("the CPU answer of TensorFlow's auto policy")
    metrics = keras_vit.pretraining.pretrain(
        "digits", output_dir=str(tmp_path / "mpp"), epochs=1, batch_size=2048,
        model_fields=dict(num_layers=1, hidden_size=16, num_heads=2, mlp_dim=32),
        tensorboard=False, verbose=0)
    assert metrics["config"]["jit_compile"] is False


PRETRAIN_DISTRIBUTED = """
import json, sys
from keras_vit.pretraining import pretrain
m = pretrain("digits", model_fields=dict(num_layers=1, hidden_size=16, num_heads=2,
             mlp_dim=32), image_size=8, output_dir=sys.argv[1], epochs=1, batch_size=700,
             distribute=True, jit_compile=False, tensorboard=False, verbose=2)
print(json.dumps({k: m["config"].get(k) for k in ("replicas", "processes", "devices")}))
"""


def test_pretrain_distributes_on_jax_over_two_virtual_cpus(tmp_path):
    # As train's test_distribute_on_jax_over_two_virtual_cpus: keras.distribution's
    # DataParallel over two devices of one process (two processes: test_distribution.py).
    pytest.importorskip("jax")
    env = dict(os.environ, KERAS_BACKEND="jax", TF_CPP_MIN_LOG_LEVEL="3",
               XLA_FLAGS="--xla_force_host_platform_device_count=2")
    out = subprocess.run([sys.executable, "-c", PRETRAIN_DISTRIBUTED, str(tmp_path)],
                         capture_output=True, text=True, timeout=300, env=env)
    assert out.returncode == 0, out.stderr[-2000:]
    result = json.loads(out.stdout.strip().splitlines()[-1])
    assert result == {"replicas": 2, "processes": 1, "devices": 2}
    assert "Distributing over 1 process, 2 devices" in out.stderr
    assert {"model.keras", "pretraining.keras", "metrics.json"} <= set(os.listdir(tmp_path))


def test_pretrain_refuses_what_it_cannot_distribute(tmp_path, monkeypatch):
    from keras_vit.pretraining import pretrain

    run = dict(output_dir=str(tmp_path / "run"), epochs=1, tensorboard=False, verbose=0)
    if keras.backend.backend() == "tensorflow":
        # MirroredStrategy would sum, not average, the replicas' masked-patch gradients.
        with pytest.raises(ArgumentError, match="KERAS_BACKEND=jax.*distribute=True with "
                           "backend 'tensorflow'"):
            pretrain("digits", distribute=True, **run)
    with pytest.raises(ArgumentError, match="pass --distribute with it.*model_parallel=2"):
        pretrain("digits", model_parallel=2, **run)
    monkeypatch.setattr(os, "environ", {**os.environ, "KERAS_DISTRIBUTION_NUM_PROCESSES": "2",
                                        "KERAS_DISTRIBUTION_PROCESS_ID": "1",
                                        "KERAS_DISTRIBUTION_JOB_ADDRESSES": "10.0.0.1:1"})
    with pytest.raises(ArgumentError, match="process 1 of a 2-process job.*pass --distribute"):
        pretrain("digits", **run)
    assert not os.path.exists(tmp_path / "run")
