"""Evaluation: top-k accuracy, few-shot linear evaluation, ImageNet ReaL, VTAB-1k,
predictions on image files.

Imports neither tensorflow nor tensorflow_datasets (the loaders import them
when called); data may be any iterable of (images, labels) batches, a
`tf.data.Dataset`, or a pair of arrays.
"""

from keras_vit.evaluation.accuracy import (
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
from keras_vit.evaluation.real import REAL_DATASET, evaluate_real, load_real, real_accuracy
from keras_vit.evaluation.vtab import (
    VTAB_GROUPS,
    VTAB_SETTING,
    VTAB_TASKS,
    VtabTask,
    finetune_vtab_task,
    load_vtab_split,
    run_vtab,
    summarize_vtab,
    vtab_markdown,
    vtab_splits,
)
