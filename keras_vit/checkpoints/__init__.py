"""Official checkpoints, converters from the original .npz, timm and HF formats,
and the one loading pipeline (`load`) with the named factories on top of it."""

from keras_vit.checkpoints.convert import (
    FORMATS,
    convert_checkpoint,
    detect_format,
    load,
    load_pretrained,
    resolve,
)
from keras_vit.checkpoints.export import export_checkpoint
from keras_vit.checkpoints.factories import (
    ViTBase16,
    ViTBase32,
    ViTHuge14,
    ViTHybridBase16,
    ViTLarge16,
    ViTLarge32,
    ViTSmall16,
    ViTTiny16,
)
from keras_vit.checkpoints.port import CheckpointError, WeightPorter
from keras_vit.checkpoints.registry import CHECKPOINTS, Checkpoint
