"""keras-vit: the Vision Transformer of "An Image is Worth 16x16 Words" for Keras 3.

This module only re-exports; nothing is defined here. It imports neither
tensorflow nor tensorflow_datasets, so it works on JAX- or PyTorch-only machines.
"""

from keras_vit.layers import (
    MLP,
    DropPath,
    MultiHeadSelfAttention,
    PatchEncoder,
    Patches,
    PositionEmbedding,
    TokenPooling,
    TransformerBlock,
)
from keras_vit.layers.std_conv2d import StdConv2D
from keras_vit.models import (
    VARIANTS,
    ViT,
    ViTConfig,
    VisionTransformer,
    feature_extractor,
    variant_config,
)
from keras_vit import evaluation  # numpy and keras only; no tensorflow
from keras_vit import pretraining  # keras only; tensorflow when a run starts
from keras_vit.surgery import (
    interpolation_matrix,
    replace_head,
    resample_position_embeddings,
    resize_position_embeddings,
)
from keras_vit.checkpoints import convert_checkpoint
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
from keras_vit.training.finetune_kit import enable_lora, merge_lora  # keras only

__version__ = "0.1.0"
