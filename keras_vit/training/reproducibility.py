"""Making a seeded run repeat bit for bit on a CPU, and shortening runs for tests.

Measured on the digits recipe (2 epochs, TensorFlow backend, XLA on, 2-core
CPU): with `keras.utils.set_random_seed` alone, two runs of seed 0 gave
different losses from the first epoch and different weights. The data order
was already the same (tf.data's seeded shuffle); the augmentation was not:
Keras' random layers (RandomTranslation, RandomFlip, RandAugment, MixUp,
CutMix) draw from one seed generator, and the parallel `Dataset.map` calls
them in whatever order its threads run. `enable_op_determinism` makes tf.data
run such stateful maps in order (and picks deterministic kernels); with it the
two runs had identical history and identical weights, and no cost showed
(second epoch 5.3 and 6.9 s with it, 7.6 and 10.4 s without, on a loaded
machine: the augmented batches are tiny).

It is process-wide and cannot be undone in the process: `seed_everything`
turns it on only when asked (`train(..., seed=...)` on a CPU). On a GPU some
TensorFlow ops have no deterministic kernel and raise when it is on.
"""

import os

import keras

from keras_vit.errors import ArgumentError

# Tests and the README harness shorten every run to at most this many epochs.
MAX_EPOCHS_VARIABLE = "KERAS_VIT_MAX_EPOCHS"


def seed_everything(seed, deterministic=True):
    """Seeds Python, NumPy and the backend, and (optionally) TF op determinism.

    Args:
        seed: int, the run's seed (initialisation, shuffling, augmentation).
        deterministic: bool, also call
            `tf.config.experimental.enable_op_determinism()` when TensorFlow
            is installed (tf.data feeds training on every backend), so that
            the seeded augmentation and the kernels repeat bit for bit.
            Process-wide and permanent. Defaults to True.

    Returns:
        True if op determinism is on afterwards, else False.
    """
    if not isinstance(seed, int) or isinstance(seed, bool) or seed < 0:
        raise ArgumentError(
            "Received an invalid value for argument `seed`, expected a non-negative "
            f"integer. Received: seed={seed!r}"
        )
    keras.utils.set_random_seed(seed)
    if not deterministic:
        return False
    try:
        import tensorflow as tf
    except ImportError:  # JAX or torch alone: no tf.data, nothing to make deterministic
        return False
    tf.config.experimental.enable_op_determinism()
    return True


def capped_epochs(epochs):
    """`epochs`, or fewer when $KERAS_VIT_MAX_EPOCHS says so (tests, the README harness).

    The cap shortens a run and nothing else: the recipe, the model and the
    files written stay what the command asked for.

    Raises:
        ValueError: the variable is set to something other than a positive int.
    """
    text = os.environ.get(MAX_EPOCHS_VARIABLE, "").strip()
    if not text:
        return epochs
    try:
        cap = int(text)
    except ValueError:
        cap = 0
    if cap < 1:
        raise ArgumentError(
            f"Received an invalid value for the environment variable "
            f"{MAX_EPOCHS_VARIABLE}, expected a positive integer. Received: {text!r}"
        )
    return min(int(epochs), cap)
