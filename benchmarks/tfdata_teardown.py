"""TensorFlow's tf.data iterator teardown stall, measured (benchmarks/RESULTS.md).

Runs `model.fit` on a CIFAR-sized keras_vit for one epoch at a time, on the same
tf.data pipeline with tf.data autotuning on (the default) and off, and prints
each fit's wall time. With TF 2.21, a fit whose epoch is shorter than ~10 s waits
at its end for the autotuning thread; with autotuning off it does not.

    python benchmarks/tfdata_teardown.py [--fits 5]
"""

import argparse
import os
import time

os.environ.setdefault("KERAS_BACKEND", "tensorflow")
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import numpy as np  # noqa: E402
import tensorflow as tf  # noqa: E402

import keras  # noqa: E402
import keras_vit  # noqa: E402


def fit_seconds(autotune, fits):
    model = keras_vit.ViT(image_size=32, patch_size=4, hidden_size=192, num_layers=6,
                          num_heads=3, mlp_dim=768, num_classes=10)
    model.compile(keras.optimizers.AdamW(1e-3),
                  keras.losses.SparseCategoricalCrossentropy(from_logits=True))
    rng = np.random.default_rng(0)
    x = rng.uniform(0, 255, (384, 32, 32, 3)).astype("float32")
    y = rng.integers(0, 10, 384)
    dataset = tf.data.Dataset.from_tensor_slices((x, y)).batch(128)
    options = tf.data.Options()
    options.autotune.enabled = autotune
    dataset = dataset.with_options(options)
    model.fit(dataset, epochs=1, verbose=0)  # compile and warm up
    seconds = []
    for _ in range(fits):
        start = time.perf_counter()
        model.fit(dataset, epochs=1, verbose=0)
        seconds.append(time.perf_counter() - start)
    return seconds


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--fits", type=int, default=5)
    args = parser.parse_args()
    for autotune in (True, False):
        seconds = fit_seconds(autotune, args.fits)
        print(f"autotune {'on ' if autotune else 'off'}: one-epoch fits "
              f"{' '.join(f'{s:.2f}' for s in seconds)} s; total {sum(seconds):.1f} s")


if __name__ == "__main__":
    main()
