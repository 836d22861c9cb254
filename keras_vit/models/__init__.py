"""ViTConfig, the builder, the variant table and its factories."""

from keras_vit.models.config import ViTConfig
from keras_vit.models.feature_extractor import feature_extractor
from keras_vit.models.variants import (
    VARIANTS,
    ViTBase16,
    ViTBase32,
    ViTHuge14,
    ViTHybridBase16,
    ViTLarge16,
    ViTLarge32,
    ViTSmall16,
    ViTTiny16,
    variant_config,
)
from keras_vit.models.vit import ViT, VisionTransformer
