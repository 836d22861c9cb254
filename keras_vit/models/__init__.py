"""ViTConfig, the builder and the variant table (weight-agnostic: nothing here
reads a checkpoint)."""

from keras_vit.models import names
from keras_vit.models.config import ViTConfig
from keras_vit.models.feature_extractor import feature_extractor
from keras_vit.models.variants import HYBRIDS, VARIANTS, variant_config
from keras_vit.models.vit import ViT, VisionTransformer
