"""keras-vit: the Vision Transformer of "An Image is Worth 16x16 Words" for Keras 3.

This module only re-exports; nothing is defined here. Names and subpackages
load on first use (a module `__getattr__`, as SciPy does), so `import keras_vit`
costs nothing until it is used and `keras-vit --help` never starts TensorFlow;
`keras_vit.data`, `keras_vit.training`, ... are attributes like any other.

Everything a saved model can name (layers, models, the learning-rate schedule
in a compile config) is registered with Keras as soon as Keras is imported,
before or after this package, so `import keras, keras_vit;
keras.models.load_model("model.keras")` works with no `custom_objects`.
"""

import importlib
import importlib.util
import sys

__version__ = "0.1.0"

# Public name -> the module that defines it.
_EXPORTS = {
    **dict.fromkeys(
        ("MLP", "DropPath", "MultiHeadSelfAttention", "PatchEncoder", "Patches",
         "PositionEmbedding", "StdConv2D", "TokenPooling", "TransformerBlock"),
        "keras_vit.layers",
    ),
    **dict.fromkeys(
        ("VARIANTS", "ViTConfig", "VisionTransformer", "feature_extractor",
         "variant_config"),
        "keras_vit.models",
    ),
    # The named factories take `weights=`, so they live above the loading pipeline.
    **dict.fromkeys(
        ("ViT", "ViTBase16", "ViTBase32", "ViTHuge14", "ViTHybridBase16", "ViTLarge16",
         "ViTLarge32", "ViTSmall16", "ViTTiny16"),
        "keras_vit.checkpoints.factories",
    ),
    **dict.fromkeys(
        ("interpolation_matrix", "replace_head", "resample_position_embeddings",
         "resize_position_embeddings"),
        "keras_vit.surgery",
    ),
    "convert_checkpoint": "keras_vit.checkpoints",
    "export_checkpoint": "keras_vit.checkpoints",
    **dict.fromkeys(("enable_lora", "merge_lora"), "keras_vit.training.finetune_kit"),
}
_SUBMODULES = (
    "analysis", "checkpoints", "cli", "data", "errors", "evaluation", "export", "layers",
    "models", "pretraining", "surgery", "training", "utils", "vtab",
)
# Modules holding every class a `.keras` file may name (registered on import).
_REGISTERING = (
    "keras_vit.layers", "keras_vit.models", "keras_vit.training.schedules",
    "keras_vit.training.finetune_kit",  # the layer-decay optimizers of a compile config
    "keras_vit.pretraining.masked_patch_prediction",
)

__all__ = sorted(_EXPORTS) + ["__version__"]


def __getattr__(name):
    if name in _EXPORTS:
        value = getattr(importlib.import_module(_EXPORTS[name]), name)
    elif name in _SUBMODULES:
        value = importlib.import_module(f"{__name__}.{name}")
    else:
        raise AttributeError(f"module 'keras_vit' has no attribute {name!r}")
    globals()[name] = value  # later look-ups skip this function
    return value


def __dir__():
    return sorted(set(globals()) | set(_EXPORTS) | set(_SUBMODULES))


def _register_keras_objects():
    for module in _REGISTERING:
        importlib.import_module(module)


class _RegisterWhenKerasLoads:
    """A meta-path finder: once Keras is loaded and no keras_vit module is half-imported,
    imports `_REGISTERING` (once), then steps aside.

    It watches the imports of `keras` and of keras_vit's submodules; registering in the
    middle of a keras_vit import (which is what imports Keras, mostly) would meet that
    module half-initialised, so it waits for the outermost one to finish.
    """

    def __init__(self):
        self.depth = 0  # keras_vit submodules being executed right now
        self.busy = False

    def find_spec(self, name, path=None, target=None):
        if self.busy or not (name == "keras" or name.startswith(__name__ + ".")):
            return None
        self.busy = True
        try:
            spec = importlib.util.find_spec(name)  # what the other finders would give
        finally:
            self.busy = False
        if spec is None or not hasattr(spec.loader, "exec_module"):
            return spec
        load, inner = spec.loader.exec_module, name != "keras"

        def exec_module(module):
            self.depth += inner
            try:
                load(module)
            finally:
                self.depth -= inner
            self.register_if_ready()

        spec.loader.exec_module = exec_module
        return spec

    def register_if_ready(self):
        if self.depth or "keras" not in sys.modules or self not in sys.meta_path:
            return
        sys.meta_path.remove(self)
        _register_keras_objects()


if "keras" in sys.modules:
    _register_keras_objects()
elif not any(type(f).__name__ == "_RegisterWhenKerasLoads" for f in sys.meta_path):
    sys.meta_path.insert(0, _RegisterWhenKerasLoads())
