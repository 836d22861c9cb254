"""Evaluation: top-k accuracy, few-shot linear evaluation, ImageNet ReaL, VTAB-1k
scoring, predictions on image files.

Imports neither tensorflow nor tensorflow_datasets (the loaders import them
when called); data may be any iterable of (images, labels) batches, a
`tf.data.Dataset`, or a pair of arrays.
"""

import importlib

from keras_vit.evaluation.accuracy import (
    cross_entropy,
    evaluate,
    extract_features,
    feature_model,
    iterate_batches,
    top_k_accuracy,
)
from keras_vit.evaluation.datasets import PREPROCESSING, evaluate_dataset, evaluation_data
from keras_vit.evaluation.fewshot import (
    L2_REG,
    NUM_SEEDS,
    SHOTS,
    LeastSquaresProbe,
    fewshot_accuracy,
    select_shots,
)
from keras_vit.evaluation.predict import (
    DIGITS_MODEL,
    class_names_for,
    load_images,
    load_model,
    predict_images,
)
from keras_vit.evaluation.real import evaluate_real, real_accuracy
from keras_vit.evaluation.vtab import summarize_vtab, vtab_markdown

# VTAB's and ReaL's data live in keras_vit.data, re-exported here under their old names.
from keras_vit.data.real import REAL_DATASET, load_real
from keras_vit.data.vtab import VTAB_GROUPS, VTAB_TASKS, VtabTask, load_vtab_split, vtab_splits

# VTAB's fine-tuning runs (keras_vit.vtab) compose training with evaluation, so they are
# not imported here (evaluation never imports training); their old names still resolve,
# on first use.
_VTAB_RUNS = ("VTAB_SETTING", "finetune_vtab_task", "run_vtab")


def __getattr__(name):
    if name in _VTAB_RUNS:  # on first use of an old name: see _VTAB_RUNS. By name, not
        # an import statement: keras_vit.vtab imports this package, and the re-export is
        # an alias resolved at call time, not a dependency of evaluation's code.
        return getattr(importlib.import_module("keras_vit.vtab"), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def __dir__():
    return sorted(set(globals()) | set(_VTAB_RUNS))
