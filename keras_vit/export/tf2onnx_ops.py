"""The TensorFlow ops tf2onnx lacks that a Keras model may use, as ONNX subgraphs.

TensorFlow 2.21 computes Keras' exact GELU (`keras.ops.gelu(approximate=False)`)
with `Erfc`, which tf2onnx 1.17 cannot convert ("Tensorflow op [.../Gelu/Erfc:
Erfc] is not supported"), so Keras' ONNX export of a model using it fails.
keras_vit's own MLP writes its GELU with `Erf` (keras_vit.layers.mlp.exact_gelu);
this handler is for other layers, a user's head say. ONNX has `Erf` (opset 9+):
erfc(x) = 1 - erf(x), exact to float32 rounding for the arguments GELU sees.
"""

import numpy as np


def register():
    """Registers the handlers with tf2onnx once (a no-op when already there)."""
    from tf2onnx import utils
    from tf2onnx.handler import tf_op

    if any("Erfc" in opset for opset in tf_op.get_opsets().get("", [])):
        return

    @tf_op("Erfc")
    class Erfc:  # noqa: F841 - registered by the decorator
        @classmethod
        def version_9(cls, ctx, node, **kwargs):
            dtype = utils.map_onnx_to_numpy_type(ctx.get_dtype(node.input[0]))
            one = ctx.make_const(utils.make_name("erfc_one"), np.array(1, dtype))
            erf = ctx.make_node("Erf", [node.input[0]], op_name_scope=node.name)
            node.type = "Sub"
            ctx.replace_inputs(node, [one.output[0], erf.output[0]])
