"""The checks every layer and model goes through (STYLE.md: config round trip,
`.keras` save/load with equal outputs, a training step)."""

import json

import keras
import numpy as np


def _jsonable(config):
    return json.loads(json.dumps(config, default=str, sort_keys=True))


def check_config_round_trip(layer):
    """get_config -> from_config -> get_config gives the same JSON."""
    config = layer.get_config()
    clone = type(layer).from_config(config)
    assert _jsonable(clone.get_config()) == _jsonable(config)
    return clone


def check_save_load(model, inputs, tmp_path, atol=1e-6):
    """`.keras` round trip with no custom_objects; the outputs are equal."""
    path = str(tmp_path / "model.keras")
    model.save(path)
    loaded = keras.models.load_model(path)
    expected = keras.ops.convert_to_numpy(model(inputs, training=False))
    got = keras.ops.convert_to_numpy(loaded(inputs, training=False))
    np.testing.assert_allclose(got, expected, atol=atol, rtol=0)
    return loaded


def wrap(layer, input_shape):
    """A functional model around one layer."""
    inputs = keras.Input(input_shape)
    return keras.Model(inputs, layer(inputs))


def check_train_step(model, inputs, targets, loss="mse"):
    """One optimizer step changes every trainable weight and reduces the loss
    on a repeated batch."""
    # XLA compiles slowly under TF on a CPU; JAX without jit runs op by op.
    jit = keras.backend.backend() == "jax"
    model.compile(optimizer=keras.optimizers.Adam(1e-2), loss=loss, jit_compile=jit)
    loss_fn = keras.losses.get(loss)

    def inference_loss():  # deterministic: no dropout or drop path
        # convert_to_numpy first: np.mean cannot read a torch tensor (torch backend).
        return float(np.mean(keras.ops.convert_to_numpy(
            loss_fn(targets, model(inputs, training=False)))))

    def values():
        return [keras.ops.convert_to_numpy(w) for w in model.trainable_weights]

    before = values()
    first = inference_loss()
    for _ in range(5):
        model.train_on_batch(inputs, targets)
    after = values()
    changed = [not np.array_equal(a, b) for a, b in zip(before, after)]
    assert all(changed), [w.path for w, c in zip(model.trainable_weights, changed) if not c]
    last = inference_loss()
    assert np.isfinite(last) and last < first
