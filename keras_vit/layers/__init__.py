"""The ViT's layers, one file each."""

from keras_vit.layers.drop_path import DropPath
from keras_vit.layers.mlp import MLP
from keras_vit.layers.multi_head_self_attention import MultiHeadSelfAttention
from keras_vit.layers.patch_encoder import PatchEncoder
from keras_vit.layers.patches import Patches
from keras_vit.layers.position_embedding import PositionEmbedding
from keras_vit.layers.std_conv2d import StdConv2D
from keras_vit.layers.token_pooling import TokenPooling
from keras_vit.layers.transformer_block import TransformerBlock
