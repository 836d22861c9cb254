"""Official checkpoints and converters from the original .npz, timm and HF formats."""

from keras_vit.checkpoints.convert import (
    FORMATS,
    convert_checkpoint,
    detect_format,
    load_pretrained,
)
from keras_vit.checkpoints.port import CheckpointError, WeightPorter
from keras_vit.checkpoints.registry import CHECKPOINTS, Checkpoint
