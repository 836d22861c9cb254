"""keras_vit.compat's private Keras / TensorFlow accesses still exist in the installed
versions: an upgrade that renames one fails here, by the attribute's name."""
import keras
import numpy as np
import pytest

from keras_vit import compat
from keras_vit.models.vit import VisionTransformer


def _has(owner, attribute):
    assert hasattr(owner, attribute), (
        f"Keras {keras.__version__} has no {getattr(owner, '__name__', type(owner).__name__)}."
        f"{attribute}: keras_vit/compat.py relies on it; find its new name")


def test_all_layers_recurses_into_nested_layers():
    _has(keras.layers.Layer, "_flatten_layers")
    inner = keras.Sequential([keras.layers.Dense(3, name="inner_dense")], name="inner")
    outer = keras.Sequential([keras.Input((2,)), inner, keras.layers.Dense(1, name="top")])
    names = [layer.name for layer in compat.all_layers(outer)
             if not isinstance(layer, keras.layers.InputLayer)]
    assert names == ["inner", "inner_dense", "top"], names
    assert outer.name not in names


def test_lora_base_kernel_is_w_without_the_update():
    dense = keras.layers.Dense(4)
    dense.build((None, 3))
    w = np.asarray(dense.kernel)
    dense.enable_lora(2)
    _has(dense, "_kernel")
    dense.lora_kernel_b.assign(np.ones((2, 4), "float32"))
    assert np.array_equal(np.asarray(compat.lora_base_kernel(dense)), w)
    assert not np.allclose(np.asarray(dense.kernel), w)  # the property is W + (alpha / r) A B


def test_remat_mode_reads_the_scope_a_layer_was_built_under():
    _has(keras.layers.Dense(1), "_remat_mode")
    assert compat.remat_mode(keras.layers.Dense(1)) is None
    with keras.RematScope(mode="full"):
        layer = keras.layers.Dense(1)
    assert compat.remat_mode(layer).mode == "full"


def test_optimizer_variable_index():
    _has(keras.optimizers.Optimizer, "_get_variable_index")
    variables = [keras.Variable(np.zeros(2)), keras.Variable(np.zeros(3))]
    optimizer = keras.optimizers.SGD()
    optimizer.build(variables)
    assert compat.optimizer_variable_index(optimizer, variables[1]) == 1


def test_auto_jit_hook_is_the_method_keras_calls():
    _has(keras.Model, compat.AUTO_JIT_HOOK)
    assert compat.AUTO_JIT_HOOK in VisionTransformer.__dict__, (
        "VisionTransformer no longer overrides " + compat.AUTO_JIT_HOOK)


def test_op_determinism_getter():
    tf = pytest.importorskip("tensorflow")
    from tensorflow.python.framework import config  # the private getter compat uses
    assert hasattr(config, "is_op_determinism_enabled"), (
        f"TensorFlow {tf.__version__} has no tensorflow.python.framework.config."
        "is_op_determinism_enabled: keras_vit/compat.py relies on it")
    assert compat.op_determinism_enabled() is bool(config.is_op_determinism_enabled())
