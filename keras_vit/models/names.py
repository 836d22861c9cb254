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
# App. D.4's placements other than the stem: one table shared by every block's input,
# or one table per block (`position_embedding_name(i)`).
SHARED_POSITION_EMBEDDING = "position_embedding"


_BLOCK_PREFIX = "transformer_block_"
# A regular expression for any block's name (e.g. inside a weight or layer path).
BLOCK_PATTERN = _BLOCK_PREFIX + r"\d+"


def block_name(i):
    """The name of encoder block `i` (0-based)."""
    return f"{_BLOCK_PREFIX}{i}"


def is_block_name(name):
    """Whether `name` is an encoder block's name."""
    return name.startswith(_BLOCK_PREFIX) and name[len(_BLOCK_PREFIX):].isdigit()


def position_embedding_name(i):
    """The name of block `i`'s own position embedding ("every_layer" placement)."""
    return f"{SHARED_POSITION_EMBEDDING}_{i}"
