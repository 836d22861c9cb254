"""Data: tfds loaders, image folders, the offline digits, resizing and augmentation.

Importing this package does not import tensorflow; `load_dataset` does, when
called.
"""

from keras_vit.data.augmentation import AUGMENTATIONS, parse_augment
from keras_vit.data.datasets import DATASETS, DatasetInfo, load_dataset
from keras_vit.data.digits import load_digits_arrays
from keras_vit.data.tfds_datasets import TFDS_DATASETS

__all__ = [
    "AUGMENTATIONS",
    "DATASETS",
    "DatasetInfo",
    "TFDS_DATASETS",
    "load_dataset",
    "load_digits_arrays",
    "parse_augment",
]
