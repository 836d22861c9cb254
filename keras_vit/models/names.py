"""The names of a VisionTransformer's layers that code outside models/ relies on
(feature extraction, fine-tuning, checkpoint converters, analysis), defined once.
`models/vit.py` builds its layers under these names."""

IMAGES = "images"  # the input
PREPROCESSING = "preprocessing"
PATCHES = "patches"
PATCH_EMBEDDING = "patch_embedding"
PATCH_ENCODER = "patch_encoder"  # class token(s) and position embedding
PRE_NORM = "pre_norm"
ENCODER_NORM = "encoder_norm"
MAP_HEAD = "map_head"
POOLING = "pooling"
PRE_LOGITS = "pre_logits"
HEAD = "head"
HEAD_DIST = "head_dist"
DISTILLATION_POOLING = "distillation_pooling"
HEAD_AVERAGE = "head_average"


def block_name(i):
    """The name of encoder block `i` (0-based)."""
    return f"transformer_block_{i}"
