"""What a ViT learns (paper section 4.5): attention maps and rollout, mean attention
distance, position-embedding similarity, embedding filters, and their figures.

Every function takes a `keras_vit.VisionTransformer` and uses its own layers
(looked up by name); nothing is rebuilt or reloaded. Imports neither tensorflow
nor pyplot (figures use matplotlib's Agg canvas).
"""

from keras_vit.analysis.attention import (
    HEAD_FUSIONS,
    attention_maps,
    attention_rollout,
    mean_attention_distance,
    patch_distances,
)
from keras_vit.analysis.embeddings import embedding_filters, position_embedding_similarity
from keras_vit.analysis.plots import (
    plot_attention_maps,
    plot_attention_rollout,
    plot_embedding_filters,
    plot_mean_attention_distance,
    plot_position_embedding_similarity,
)
from keras_vit.analysis.visualize import similarity_by_distance, visualize
