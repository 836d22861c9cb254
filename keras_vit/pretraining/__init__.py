"""Self-supervised pre-training: masked patch prediction (paper section 4.6).

`MaskedPatchPrediction` wraps a ViT backbone for `model.fit` on unlabeled
images; `pretrain(...)` is what `keras-vit pretrain --objective mpp` calls.
Importing this package imports Keras only.
"""

from keras_vit.pretraining.masked_patch_prediction import MaskedPatchPrediction
from keras_vit.pretraining.objectives import (
    TARGETS,
    corrupt_patches,
    masked_patch_loss,
    num_color_classes,
    patch_targets,
    quantize_colors,
)
from keras_vit.pretraining.pretrain import OBJECTIVES, pretrain
