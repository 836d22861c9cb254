"""Every private Keras / TensorFlow attribute keras_vit relies on, in one place.

Keras 3 has no public way to do these; each function says why. A Keras upgrade
that renames one of them fails tests/test_compat.py by the attribute's name,
instead of somewhere inside a fine-tune or an export.

One access cannot be a function here: `VisionTransformer._resolve_auto_jit_compile`
overrides Keras' `Trainer._resolve_auto_jit_compile` (the method Keras calls for
`jit_compile="auto"`), so the override stays on the class; `AUTO_JIT_HOOK` names it
for the test.
"""

#: The `keras.Model` method `models/vit.py` overrides to set keras_vit's XLA policy.
AUTO_JIT_HOOK = "_resolve_auto_jit_compile"


def all_layers(layer):
    """Every sublayer of `layer`, nested ones included, `layer` itself not.

    `Model.layers` is public but one level deep (a `TransformerBlock`'s Dense
    layers are not in it); Keras' recursive walk is `Layer._flatten_layers`.
    """
    return list(layer._flatten_layers(include_self=False))


def lora_base_kernel(dense):
    """The frozen W of a LoRA-enabled Dense (its `kernel` property is W + (alpha / r) A B).

    Keras stores W as `Dense._kernel` and exposes only the merged sum.
    """
    return dense._kernel


def remat_mode(layer):
    """The `keras.RematScope` mode a layer was built under, or None.

    Keras records it as `Operation._remat_mode` and has no getter.
    """
    return getattr(layer, "_remat_mode", None)


def optimizer_variable_index(optimizer, variable):
    """The index of `variable` in the list `optimizer.build` received.

    On TensorFlow `update_step` receives tf.Variables, not the Keras variables
    whose paths name them; Keras maps them with `Optimizer._get_variable_index`.
    """
    return optimizer._get_variable_index(variable)


def op_determinism_enabled():
    """Whether `tf.config.experimental.enable_op_determinism()` was called.

    TensorFlow has the setter public and the getter only under tensorflow.python.
    TensorFlow is imported here, in the function, so that `import keras_vit`
    does not import it; without TensorFlow the answer is False.
    """
    try:
        from tensorflow.python.framework.config import is_op_determinism_enabled
    except ImportError:
        return False
    return bool(is_op_determinism_enabled())
