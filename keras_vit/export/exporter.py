"""Export to SavedModel, ONNX and TFLite with Keras' own exporters, then verify.

Keras writes the artefact (`model.export`, format "tf_saved_model", "onnx" or
"litert"); the format's own runtime then runs it on a batch of images and its
logits are compared with the Keras model's (timm #2463 lost ~7 % accuracy in
an ONNX export that nobody checked). The preprocessing layer is part of the
model, so an exported artefact takes [0, 255] pixels as the model does.

Runtimes: `tf.saved_model.load` for SavedModel, `onnxruntime` for ONNX, the
TFLite interpreter (`ai_edge_litert` where installed, else `tf.lite`) for
TFLite. Keras' ONNX export on TensorFlow needs `tf2onnx` and `onnx`; these
are the `export` extra (`pip install ".[export]"`), not requirements.
"""

import importlib.util
import os
import shutil

import numpy as np

from keras_vit.errors import ArgumentError, KerasViTError, RunFolderError
from keras_vit.export import tf2onnx_ops

FORMATS = ("saved_model", "onnx", "tflite")
# Keras' names for them (`model.export(format=...)`).
KERAS_FORMATS = {"saved_model": "tf_saved_model", "onnx": "onnx", "tflite": "litert"}
# Max |exported - Keras| allowed, as a fraction of the logits' scale (max |logit|).
# TFLite's converter fuses and reorders float ops more freely, hence 1e-3.
TOLERANCES = {"saved_model": 1e-4, "onnx": 1e-4, "tflite": 1e-3}
# Modules each format needs, to export and to run; alternatives joined by "|".
REQUIREMENTS = {
    "saved_model": ("tensorflow",),
    "onnx": ("tensorflow", "tf2onnx", "onnx", "onnxruntime"),
    "tflite": ("tensorflow", "ai_edge_litert|tensorflow"),
}


class ExportVerificationError(KerasViTError):
    """The exported artefact's outputs differ from the Keras model's by more than allowed."""


def missing_requirements(format):
    """The modules `format` needs that are not installed (empty when it can run)."""
    _check_format(format)
    missing = []
    for names in REQUIREMENTS[format]:
        options = names.split("|")
        if not any(importlib.util.find_spec(name) for name in options):
            missing.append(options[0])
    return missing


def default_output(model_path, format):
    """Where `keras-vit export` writes by default: beside the model file."""
    stem = os.path.splitext(os.fspath(model_path))[0]
    return {"saved_model": stem + "_saved_model", "onnx": stem + ".onnx",
            "tflite": stem + ".tflite"}[format]


def export_model(model, output, format="saved_model", verify=True, images=None,
                 overwrite=False, verbose=False):
    """Exports `model` with Keras' exporter and checks the artefact with its runtime.

    Args:
        model: a `keras.Model` (a `VisionTransformer` takes [0, 255] pixels
            and normalises inside, so the artefact does too).
        output: the artefact's path: a folder for "saved_model", a file
            ending in ".onnx" or ".tflite" for the others.
        format: "saved_model", "onnx" or "tflite". Defaults to "saved_model".
        verify: run the artefact with the format's runtime on `images` and
            compare its outputs with the model's. Defaults to True.
        images: array (B, H, W, C) for the check. Defaults to 4 images of
            uniform random pixels (seed 0) at the model's input size. A
            model taking any size (`dynamic_image_size`) is also checked on
            as many random images one patch taller and three wider.
        overwrite: replace an existing `output`. Defaults to False.
        verbose: Keras' export messages. Defaults to False.

    Returns:
        A dict: format, output, and with `verify` the max |difference|, the
        logits' scale, the tolerance (a fraction of that scale) and the
        number of images checked (of the worst size), and the image sizes
        checked.

    Raises:
        ValueError: a bad argument, an existing `output`, or a missing runtime
            (named, with the command that installs it).
        ExportVerificationError: the artefact's outputs differ by more than
            `TOLERANCES[format]` of the logits' scale.

    Example:

    >>> report = export_model(model, "vit.onnx", format="onnx")
    >>> report["max_abs_difference"] <= report["tolerance"] * report["scale"]
    True
    """
    _check_format(format)
    output = os.fspath(output)
    suffix = {"onnx": ".onnx", "tflite": ".tflite"}.get(format)
    if suffix and not output.endswith(suffix):
        raise ArgumentError(
            f"Received an invalid value for argument `output`: a {format} file must "
            f"end in {suffix!r}. Received: output={output!r}"
        )
    missing = missing_requirements(format)
    if missing:
        raise ArgumentError(
            f"Exporting to {format} needs {', '.join(missing)}, which is not installed; "
            f"`pip install '.[export]'` (from the checkout; the PyPI keras-vit is another project) installs it."
        )
    if os.path.exists(output):
        if not overwrite:
            raise RunFolderError(
                f"Received an invalid value for argument `output`: {output} exists; "
                "choose another path or pass overwrite=True (--overwrite) to replace it."
            )
        shutil.rmtree(output) if os.path.isdir(output) else os.remove(output)
    if images is None and verify:
        images = sample_images(model)
    # Batch and, for a dynamic-size model, height and width stay free in the artefact.
    spec = [_input_spec(model)]
    if format == "onnx" and keras_backend() == "tensorflow":
        tf2onnx_ops.register()  # Keras' own exact gelu's Erfc, for layers that use it
    model.export(output, format=KERAS_FORMATS[format], verbose=verbose, input_signature=spec)
    report = {"format": format, "output": output}
    if verify:
        batches = [images, _second_size_images(model, images)]
        checks = [verify_export(model, output, format, b) for b in batches if b is not None]
        report.update(max(checks, key=lambda c: c["max_abs_difference"] / max(c["scale"], 1e-12)))
        report["image_sizes"] = [list(np.shape(b)[1:3]) for b in batches if b is not None]
    return report


def _second_size_images(model, images):
    """For a model taking any size: a batch like `images` at another, non-square
    grid, so the check shows the artefact's height and width are free."""
    config = getattr(model, "config", None)
    if None not in _input_shape(model)[1:3] or config is None:
        return None
    step = config.patch_size * config.stem_stride
    batch, h, w = np.shape(images)[:3]
    return sample_images(model, batch, seed=1, image_size=(h + step, w + 3 * step))


def verify_export(model, output, format, images):
    """Runs the artefact at `output` on `images` and compares with `model`.

    Returns a dict with max_abs_difference, scale (max |logit| of the Keras
    model), tolerance (`TOLERANCES[format]`) and num_images; raises
    `ExportVerificationError` when the difference exceeds tolerance x scale.
    """
    import keras

    images = np.asarray(images, dtype="float32")
    expected = keras.ops.convert_to_numpy(model(images, training=False)).astype("float64")
    received = np.asarray(RUNNERS[format](output, images), dtype="float64")
    if received.shape != expected.shape:
        raise ExportVerificationError(
            f"The exported {format} model at {output} returned shape {received.shape}; "
            f"the Keras model returns {expected.shape}."
        )
    difference = float(np.max(np.abs(received - expected)))
    scale = float(np.max(np.abs(expected)))
    tolerance = TOLERANCES[format]
    report = {"max_abs_difference": difference, "scale": scale, "tolerance": tolerance,
              "num_images": int(images.shape[0])}
    if not np.isfinite(difference) or difference > tolerance * max(scale, 1e-12):
        raise ExportVerificationError(
            f"The exported {format} model at {output} differs from the Keras model by "
            f"max |difference| {difference:.3g}, more than {tolerance:g} of the logits' "
            f"scale {scale:.3g}; the artefact was written but should not be used."
        )
    return report


def sample_images(model, batch_size=4, seed=0, image_size=None):
    """`batch_size` images of uniform random pixels in [0, 255] at the model's size."""
    shape = _input_shape(model)
    hw = shape[1:3]
    if None in hw:
        if image_size is None:
            image_size = getattr(getattr(model, "config", None), "image_hw", None)
        if image_size is None:
            raise ArgumentError(
                "Received an invalid value for argument `images`: the model takes any "
                "image size, so pass images (or image_size) to verify with."
            )
        hw = tuple(image_size)
    rng = np.random.default_rng(seed)
    return rng.uniform(0.0, 255.0, size=(batch_size, *hw, shape[3])).astype("float32")


def _run_saved_model(path, images):
    import tensorflow as tf

    loaded = tf.saved_model.load(path)
    return loaded.serve(tf.constant(images)).numpy()


def _run_onnx(path, images):
    import onnxruntime

    session = onnxruntime.InferenceSession(path, providers=["CPUExecutionProvider"])
    (name,) = [i.name for i in session.get_inputs()]
    return session.run(None, {name: images})[0]


def _run_tflite(path, images):
    try:
        from ai_edge_litert.interpreter import Interpreter
    except ImportError:  # TensorFlow's own (deprecated there in favour of LiteRT)
        import tensorflow as tf

        Interpreter = tf.lite.Interpreter
    interpreter = Interpreter(model_path=path)
    (inp,) = interpreter.get_input_details()
    interpreter.resize_tensor_input(inp["index"], list(images.shape), strict=False)
    interpreter.allocate_tensors()
    interpreter.set_tensor(inp["index"], images)
    interpreter.invoke()
    (out,) = interpreter.get_output_details()
    return interpreter.get_tensor(out["index"])


RUNNERS = {"saved_model": _run_saved_model, "onnx": _run_onnx, "tflite": _run_tflite}


def keras_backend():
    import keras

    return keras.backend.backend()


def _input_shape(model):
    if len(model.inputs) != 1:
        raise ArgumentError(
            "Received an invalid value for argument `model`: expected a model with "
            f"one image input. Received: {len(model.inputs)} inputs"
        )
    return tuple(model.inputs[0].shape)


def _input_spec(model):
    import keras

    shape = (None,) + _input_shape(model)[1:]
    return keras.InputSpec(shape=shape, dtype="float32", name=model.inputs[0].name)


def _check_format(format):
    if format not in FORMATS:
        raise ArgumentError(
            "Received an invalid value for argument `format`, expected one of "
            f"{', '.join(repr(f) for f in FORMATS)}. Received: format={format!r}"
        )
