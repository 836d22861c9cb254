"""Backend neutrality: `import keras_vit` without TensorFlow, and a model saved
under one backend loading under JAX and PyTorch with equal outputs and a
training step there."""

import importlib.util
import os
import subprocess
import sys
import textwrap

import keras
import numpy as np
import pytest

import keras_vit

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def run_python(code, backend, timeout=300):
    env = dict(os.environ, KERAS_BACKEND=backend, TF_CPP_MIN_LOG_LEVEL="3")
    env["PYTHONPATH"] = ROOT + os.pathsep + env.get("PYTHONPATH", "")
    result = subprocess.run(
        [sys.executable, "-c", textwrap.dedent(code)],
        env=env, capture_output=True, text=True, timeout=timeout, cwd=ROOT,
    )
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    return result.stdout


def need(module):
    if importlib.util.find_spec(module) is None:
        pytest.skip(f"{module} is not installed")


@pytest.mark.portable
def test_import_does_not_import_tensorflow():
    need("jax")
    out = run_python(
        """
        import importlib, pkgutil, sys
        import keras_vit
        # Every module but data and training code (which use tf.data) and the CLI.
        skip = ("keras_vit.data", "keras_vit.training", "keras_vit.cli", "keras_vit.__main__")
        for info in pkgutil.walk_packages(keras_vit.__path__, "keras_vit."):
            if not info.name.startswith(skip):
                importlib.import_module(info.name)
        print(sorted(m for m in sys.modules if m.split(".")[0] in ("tensorflow", "tensorflow_datasets")))
        """,
        backend="jax",
    )
    assert out.strip().splitlines()[-1] == "[]"


@pytest.mark.parametrize("backend", ["jax", "torch"])
def test_saved_model_loads_and_trains_under_other_backends(backend, tmp_path, rng):
    need(backend)
    if backend == keras.backend.backend():
        pytest.skip("same backend")
    config = keras_vit.ViTConfig(
        image_size=(16, 24), patch_size=8, num_channels=3, hidden_size=32, num_layers=2,
        num_heads=4, mlp_dim=48, num_classes=3, representation_size=8,
        position_embedding="relative", pooling="gap",  # gap: every token reaches the loss
        qk_norm=True, pre_norm=True, quick_gelu=True, head_bias=False,  # CLIP, qk_norm options
    )
    model = keras_vit.ViT(config)
    for w in model.weights:
        w.assign(rng.normal(scale=0.2, size=w.shape).astype(w.dtype))
    x = rng.uniform(0, 255, size=(4, 16, 24, 3)).astype("float32")
    np.save(tmp_path / "x.npy", x)
    np.save(tmp_path / "y.npy", keras.ops.convert_to_numpy(model(x)))
    model.save(tmp_path / "m.keras")
    out = run_python(
        f"""
        import keras, numpy as np
        import keras_vit  # registers the layers, as for any package of custom layers
        path = {str(tmp_path)!r}
        model = keras.models.load_model(path + "/m.keras")
        x, y = np.load(path + "/x.npy"), np.load(path + "/y.npy")
        got = keras.ops.convert_to_numpy(model(x, training=False))
        print("maxdiff", float(np.abs(got - y).max()))
        before = [np.array(w) for w in model.trainable_weights]
        model.compile(optimizer="adam",
                      loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True))
        loss = model.train_on_batch(x, np.array([0, 1, 2, 0]))
        changed = sum(not np.array_equal(a, np.array(w))
                      for a, w in zip(before, model.trainable_weights))
        print("trained", float(loss), changed, len(before), keras.backend.backend())
        """,
        backend=backend,
    )
    lines = dict(line.split(" ", 1) for line in out.strip().splitlines() if " " in line)
    assert float(lines["maxdiff"]) < 1e-4 * max(1.0, np.abs(np.load(tmp_path / "y.npy")).max())
    loss, changed, total, used = lines["trained"].split()
    assert used == backend and np.isfinite(float(loss)) and changed == total
