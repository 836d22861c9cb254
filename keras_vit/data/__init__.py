"""Data: tfds loaders (VTAB-1k tasks and ImageNet ReaL among them), image folders, the
offline digits, resizing and augmentation.

Importing this package does not import tensorflow; `load_dataset` does, when
called.
"""

from keras_vit.data.augmentation import AUGMENTATIONS, parse_augment
from keras_vit.data.datasets import DATASETS, VTAB_DATASETS, DatasetInfo, load_dataset
from keras_vit.data.digits import load_digits_arrays
from keras_vit.data.real import REAL_DATASET, load_real
from keras_vit.data.tfds_datasets import TFDS_DATASETS
from keras_vit.data.vtab import VTAB_GROUPS, VTAB_TASKS, VtabTask, load_vtab_split, vtab_splits

__all__ = [
    "AUGMENTATIONS",
    "DATASETS",
    "DatasetInfo",
    "REAL_DATASET",
    "TFDS_DATASETS",
    "VTAB_DATASETS",
    "VTAB_GROUPS",
    "VTAB_TASKS",
    "VtabTask",
    "load_dataset",
    "load_digits_arrays",
    "load_real",
    "load_vtab_split",
    "parse_augment",
    "vtab_splits",
]
