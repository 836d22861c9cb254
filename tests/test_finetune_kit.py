"""The fine-tuning kit: quantization, layer-wise decay, weight-decay exclusions, EMA, LoRA, remat."""

import os
import warnings

import keras
import numpy as np
import pytest

import keras_vit
from keras_vit import evaluation


def _tiny(**fields):
    config = dict(image_size=16, patch_size=4, num_channels=1, hidden_size=32, num_layers=2,
                  num_heads=2, mlp_dim=64, num_classes=10, drop_path_rate=0.1)
    config.update(fields)
    model = keras_vit.ViT(**config)
    rng = np.random.default_rng(1)
    for w in model.weights:  # the head is zero at init: perturb so outputs carry numbers
        w.assign(w.numpy() + rng.normal(0, 0.05, size=w.shape).astype("float32"))
    return model


def _quantize(model, mode):
    with warnings.catch_warnings():  # "Layer Dropout does not have a quantize method"
        warnings.simplefilter("ignore", UserWarning)
        model.quantize(mode)


@pytest.mark.portable
def test_int8_reaches_every_dense_inside_the_blocks_and_round_trips(tmp_path):
    model = _tiny()  # drop_path_rate > 0: DropPath layers are present
    reference = _tiny()
    reference.set_weights(model.get_weights())
    # Quantized straight after construction, never called: every layer is built already.
    _quantize(model, "int8")
    x = np.random.default_rng(0).uniform(0, 255, (4, 16, 16, 1)).astype("float32")
    before = keras.ops.convert_to_numpy(reference(x))
    quantized = model.get_config()["quantized_layers"]
    for i in range(2):
        for name in ("attention/qkv", "attention/output", "mlp/dense_1", "mlp/dense_2"):
            assert quantized[f"transformer_block_{i}/{name}"] == "int8"
    assert quantized["patch_embedding"] == quantized["head"] == "int8"
    after = keras.ops.convert_to_numpy(model(x))
    scale = np.abs(before).max()
    assert 0 < np.abs(after - before).max() < 0.05 * scale  # quantized, and still close
    model.save(tmp_path / "q.keras")
    loaded = keras.models.load_model(tmp_path / "q.keras")
    np.testing.assert_array_equal(keras.ops.convert_to_numpy(loaded(x)), after)
    assert loaded.get_config()["quantized_layers"] == quantized


@pytest.mark.skipif(not evaluation.DIGITS_MODEL.is_file(), reason="no shipped digits model")
def test_int8_keeps_the_digits_accuracy_and_shrinks_the_file(tmp_path):
    from keras_vit.data import load_digits_arrays

    x, y = load_digits_arrays("test")
    x = keras.ops.convert_to_numpy(keras.ops.image.resize(x, (16, 16), interpolation="bilinear"))
    model = evaluation.load_model(evaluation.DIGITS_MODEL)
    model.save(tmp_path / "float.keras")  # weights only, no optimizer state: a fair size
    accuracy = float((keras.ops.convert_to_numpy(model(x)).argmax(-1) == y).mean())
    _quantize(model, "int8")
    model.save(tmp_path / "int8.keras")
    # The in-memory int8 model: that a saved one loads to the same outputs is
    # test_int8_reaches_every_dense_inside_the_blocks_and_round_trips (loading it
    # again here cost ~5 s of this test's ~20 on a loaded 2-core CPU).
    quantized = float((keras.ops.convert_to_numpy(model(x)).argmax(-1) == y).mean())
    assert accuracy >= 0.98
    assert abs(quantized - accuracy) < 0.005
    assert os.path.getsize(tmp_path / "int8.keras") < 0.5 * os.path.getsize(tmp_path / "float.keras")


from keras_vit.training import finetune_kit as kit  # noqa: E402


@pytest.mark.portable
def test_layer_decay_rates_by_value_after_one_step():
    model = _tiny(num_layers=3, drop_path_rate=0.0)
    optimizer = kit.rebuild_optimizer(keras.optimizers.SGD(0.1), model, layer_decay=0.75)
    before = {v.path: keras.ops.convert_to_numpy(v) for v in model.trainable_variables}
    grads = [keras.ops.ones(v.shape) for v in model.trainable_variables]  # update = -rate
    optimizer.apply(grads, model.trainable_variables)
    L = 3
    for v in model.trainable_variables:
        step = before[v.path] - keras.ops.convert_to_numpy(v)
        if v.path.startswith("transformer_block_"):
            i = int(v.path.split("/")[0].rsplit("_", 1)[1])
            expected = 0.1 * 0.75 ** (L - i)  # block i: rate x decay^(L - i)
        elif v.path.split("/")[0] in ("encoder_norm", "head"):
            expected = 0.1  # the head: the full rate
        else:
            expected = 0.1 * 0.75 ** (L + 1)  # embeddings: the smallest
        np.testing.assert_allclose(step, expected, rtol=1e-5, err_msg=v.path)


def test_layer_decay_optimizer_round_trips_and_trains_in_fit(tmp_path):
    model = _tiny(drop_path_rate=0.0)
    optimizer = kit.rebuild_optimizer(keras.optimizers.AdamW(1e-3, weight_decay=0.05), model,
                                      layer_decay=0.5, ema=0.9)
    assert isinstance(optimizer, kit.LayerDecayAdamW) and optimizer.use_ema
    again = keras.optimizers.deserialize(keras.optimizers.serialize(optimizer))
    assert again.multipliers == optimizer.multipliers
    # Weight decay skips biases, norms, position embeddings and the class token only.
    model.compile(optimizer=optimizer, loss="sparse_categorical_crossentropy")
    x = np.random.default_rng(0).uniform(0, 255, (8, 16, 16, 1)).astype("float32")
    model.fit(x, np.arange(8) % 10, epochs=1, batch_size=8, verbose=0)
    decayed = {v.name for v in model.trainable_variables if optimizer._use_weight_decay(v)}
    assert decayed == {"kernel"}
    assert {v.name for v in kit.no_weight_decay_variables(model)} == {
        "bias", "gamma", "beta", "class_token", "embeddings"}


@pytest.mark.portable
def test_lora_trains_under_5_percent_and_merges_to_the_same_outputs(tmp_path):
    model = _tiny(hidden_size=48, mlp_dim=192, drop_path_rate=0.0)
    kit.enable_lora(model, rank=1)
    trainable = {v.path for v in model.trainable_variables}
    assert trainable == {p for p in trainable if "lora_kernel" in p or p.startswith("head/")}
    assert len([p for p in trainable if "lora_kernel" in p]) == 2 * 4 * 2  # A, B x 4 x 2 blocks
    assert kit.trainable_fraction(model) < 0.05
    frozen = {v.path: keras.ops.convert_to_numpy(v) for v in model.non_trainable_variables}
    model.compile(optimizer=keras.optimizers.SGD(0.5), loss="sparse_categorical_crossentropy")
    x = np.random.default_rng(0).uniform(0, 255, (8, 16, 16, 1)).astype("float32")
    model.fit(x, np.arange(8) % 10, epochs=2, batch_size=8, verbose=0)
    for v in model.non_trainable_variables:
        np.testing.assert_array_equal(keras.ops.convert_to_numpy(v), frozen[v.path])
    b = model.get_layer("transformer_block_0").mlp.dense_1.lora_kernel_b
    assert np.abs(keras.ops.convert_to_numpy(b)).max() > 0  # B left zero would merge to nothing
    merged = kit.merge_lora(model)
    assert not any("lora" in v.path for v in merged.weights)
    np.testing.assert_allclose(keras.ops.convert_to_numpy(merged(x)),
                               keras.ops.convert_to_numpy(model(x)), atol=1e-5)
    merged.save(tmp_path / "merged.keras")
    loaded = keras.models.load_model(tmp_path / "merged.keras")
    np.testing.assert_allclose(keras.ops.convert_to_numpy(loaded(x)),
                               keras.ops.convert_to_numpy(model(x)), atol=1e-5)


@pytest.mark.portable
def test_lora_merges_w_plus_alpha_over_rank_a_b_by_value():
    # rank 2, alpha 6: W + 3 A B; W + A B (the scale dropped) would differ.
    model = _tiny(num_layers=1, drop_path_rate=0.0)
    kit.enable_lora(model, rank=2, lora_alpha=6)
    rng = np.random.default_rng(5)
    layers = [layer for layer in model._flatten_layers(include_self=False)
              if isinstance(layer, keras.layers.Dense) and layer.lora_enabled]
    assert len(layers) == 4
    expected = {}
    for layer in layers:  # a trained B (it starts at zero, where every scale agrees)
        a = rng.normal(0, 0.3, layer.lora_kernel_a.shape).astype("float32")
        b = rng.normal(0, 0.3, layer.lora_kernel_b.shape).astype("float32")
        layer.lora_kernel_a.assign(a)
        layer.lora_kernel_b.assign(b)
        expected[layer.path] = keras.ops.convert_to_numpy(layer._kernel) + (6 / 2) * a @ b
    merged = kit.merge_lora(model)
    for path, kernel in expected.items():
        got = next(layer for layer in merged._flatten_layers(include_self=False)
                   if layer.path == path).kernel
        np.testing.assert_allclose(keras.ops.convert_to_numpy(got), kernel, rtol=1e-5,
                                   atol=1e-6, err_msg=path)
    x = np.random.default_rng(0).uniform(0, 255, (2, 16, 16, 1)).astype("float32")
    np.testing.assert_allclose(keras.ops.convert_to_numpy(merged(x)),
                               keras.ops.convert_to_numpy(model(x)), rtol=1e-4, atol=1e-4)


@pytest.mark.portable
def test_ema_momentum_is_the_one_asked_for_and_averages_by_it():
    model = _tiny(num_layers=1, drop_path_rate=0.0)
    assert kit.rebuild_optimizer(keras.optimizers.SGD(0.1), model, ema=True).ema_momentum == 0.9999
    optimizer = kit.rebuild_optimizer(keras.optimizers.SGD(0.1), model, ema=0.9)
    assert optimizer.use_ema and optimizer.ema_momentum == 0.9
    variables = model.trainable_variables
    optimizer.build(variables)
    start = [keras.ops.convert_to_numpy(v) for v in variables]
    for _ in range(2):  # step 1: the average is the weights; step 2: 0.9 avg + 0.1 new
        optimizer.apply([keras.ops.ones(v.shape) for v in variables], variables)
    averages = optimizer._model_variables_moving_average
    for v, w0, average in zip(variables, start, averages):
        after_1, after_2 = w0 - 0.1, w0 - 0.2
        np.testing.assert_allclose(keras.ops.convert_to_numpy(average),
                                   0.9 * after_1 + 0.1 * after_2, atol=1e-5, err_msg=v.path)


def test_finetune_ema_flag_passes_its_momentum(monkeypatch, tmp_path):
    from keras_vit import training
    from keras_vit.cli import main

    (tmp_path / "w.keras").touch()  # --weights must exist (checked before Keras starts)
    monkeypatch.chdir(tmp_path)
    seen = []
    monkeypatch.setattr(training, "finetune", lambda *a, **kw: seen.append(kw["ema"]) or {})
    for flags in (["--ema", "0.9"], ["--ema"], []):
        assert main(["finetune", "--weights", "w.keras", "--output-dir", "x"] + flags) == 0
    assert seen == [0.9, 0.9999, None]


@pytest.mark.portable
def test_remat_recomputes_whole_blocks_with_the_same_gradients(monkeypatch):
    """Each block is checkpointed as a whole (flags bound: Keras' per-layer remat fails
    on JAX and TF), nothing else is, and one SGD step gives the plain model's weights."""
    calls = []  # fails loudly if Keras stops calling Layer.rematerialized_call
    real_remat = keras.remat
    monkeypatch.setattr(keras, "remat", lambda f: calls.append(f) or real_remat(f))
    with kit.remat_scope(True):
        model = _tiny(drop_path_rate=0.0)
    plain = _tiny(drop_path_rate=0.0)
    plain.set_weights(model.get_weights())
    remat = {layer.name for layer in model._flatten_layers(include_self=True)
             if getattr(getattr(layer, "_remat_mode", None), "mode", None)}
    assert remat == {"transformer_block_0", "transformer_block_1"}
    x = np.random.default_rng(0).uniform(0, 255, (4, 16, 16, 1)).astype("float32")
    np.testing.assert_allclose(keras.ops.convert_to_numpy(model(x)),
                               keras.ops.convert_to_numpy(plain(x)), atol=1e-6)
    for m in (model, plain):
        m.compile(optimizer=keras.optimizers.SGD(1.0),
                  loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True))
        m.fit(x, np.arange(4), batch_size=4, epochs=1, verbose=0, shuffle=False)
    moved = max(np.abs(a - b).max() for a, b in zip(plain.get_weights(), _tiny().get_weights()))
    assert moved > 1e-3  # the step did something, so equality below means equal gradients
    for a, b in zip(model.get_weights(), plain.get_weights()):
        np.testing.assert_allclose(a, b, atol=1e-6)
    assert len(calls) >= 2  # each block went through keras.remat at least once


@pytest.mark.portable
def test_remat_refuses_a_stochastic_block_by_name():
    with kit.remat_scope(True):
        model = _tiny()  # drop_path_rate=0.1: the recomputation would draw new masks
    with pytest.raises(keras_vit.errors.ArgumentError, match="`remat`.*drop_path_rate=0.1$"):
        kit.check_remat(model)  # finetune's check before training
    assert kit.check_remat(_tiny()) is not None  # no remat: nothing to refuse
    model.compile(optimizer="sgd", loss="sparse_categorical_crossentropy")
    x = np.zeros((2, 16, 16, 1), "float32")
    with pytest.raises(ValueError, match="`remat` of transformer_block_1.*drop_path_rate="):
        model.fit(x, np.arange(2), epochs=1, verbose=0)


def test_finetune_remat_refuses_stochastic_depth_in_one_line_before_training(tmp_path, capsys):
    from keras_vit.cli import main

    _tiny().save(tmp_path / "tiny.keras")  # drop_path_rate=0.1
    out = tmp_path / "run"
    assert main(["finetune", "--weights", str(tmp_path / "tiny.keras"), "--epochs", "1",
                 "--no-tensorboard", "--output-dir", str(out), "--remat"]) == 1
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "--set drop_path_rate=0" in err, err
    assert not out.exists()


@pytest.mark.slow  # a real finetune run (~30 s on a loaded 2-core CPU)
def test_finetune_with_the_kit_saves_a_plain_model_and_records_it(tmp_path):
    import json

    from keras_vit.cli import main

    model = _tiny(drop_path_rate=0.0)
    model.save(tmp_path / "tiny.keras")
    out = tmp_path / "run"
    argv = ["finetune", "--weights", str(tmp_path / "tiny.keras"), "--epochs", "1",
            "--batch-size", "128", "--no-tensorboard", "--output-dir", str(out),
            "--layer-decay", "0.8", "--ema", "0.9", "--lora-rank", "1"]
    assert main(argv + ["--remat"]) == 0
    config = json.loads((out / "metrics.json").read_text())["config"]
    assert (config["layer_decay"], config["ema"], config["lora_rank"], config["remat"]) == (
        0.8, 0.9, 1, True)
    assert 0 < config["trainable_fraction"] < 0.1
    saved = keras.models.load_model(out / "model.keras")
    assert not any("lora" in v.path for v in saved.weights)  # merged on save
    # Only LoRA and the head trained: the merged kernels moved, biases and norms did not.
    block, trained = model.get_layer("transformer_block_0"), saved.get_layer("transformer_block_0")
    np.testing.assert_array_equal(block.mlp.dense_1.bias.numpy(), trained.mlp.dense_1.bias.numpy())
    np.testing.assert_array_equal(block.layer_norm_1.gamma.numpy(),
                                  trained.layer_norm_1.gamma.numpy())
    assert np.abs(block.mlp.dense_1.kernel.numpy() - trained.mlp.dense_1.kernel.numpy()).max() > 0
