"""Evaluation: top-k accuracy, few-shot linear evaluation, predictions on image files.

Imports neither tensorflow nor tensorflow_datasets; data may be any iterable of
(images, labels) batches, a `tf.data.Dataset`, or a pair of arrays.
"""

from keras_vit.evaluation.accuracy import (
    evaluate,
    extract_features,
    feature_model,
    iterate_batches,
    top_k_accuracy,
)
from keras_vit.evaluation.fewshot import (
    L2_REG,
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
