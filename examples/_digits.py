"""Shared by the digits experiments: data, a tiny ViT, a short AdamW training run.

scikit-learn's 8x8 digits (shipped, offline; 1,437 train / 360 test images),
upscaled to 16x16 as `keras-vit train` does, so 4x4 patches give a 4x4 grid.
"""

import time

import numpy as np

import keras
import keras_vit
from keras_vit.data import load_digits_arrays
from keras_vit.training import make_schedule, pretraining_optimizer

TINY = dict(patch_size=4, hidden_size=32, num_layers=2, num_heads=2, mlp_dim=64)


def digits(image_size=16):
    """((x_train, y_train), (x_test, y_test)), images bilinearly resized to image_size."""
    out = []
    for split in ("train", "test"):
        x, y = load_digits_arrays(split)
        if image_size != 8:
            x = keras.ops.convert_to_numpy(
                keras.ops.image.resize(x, (image_size, image_size), interpolation="bilinear"))
        out.append((x.astype("float32"), y))
    return out


def tiny_vit(seed, image_size=16, num_classes=10, num_channels=1, **fields):
    keras.utils.set_random_seed(seed)
    return keras_vit.ViT(image_size=image_size, num_channels=num_channels,
                         num_classes=num_classes, **{**TINY, **fields})


def fit(model, x, y, epochs, seed, batch_size=64, learning_rate=2e-3, weight_decay=0.05,
        steps=None, run_eagerly=False):
    """AdamW, warmup + cosine, clip 1, label smoothing 0.1 (the paper's pre-training
    recipe); `steps` fixes the optimizer steps whatever the data size; `run_eagerly`
    skips tracing (faster for the few steps of a smoke run). Returns seconds."""
    keras.utils.set_random_seed(seed)
    steps_per_epoch = int(np.ceil(len(x) / batch_size))
    if steps is not None:
        epochs = max(1, int(np.ceil(steps / steps_per_epoch)))
    schedule = make_schedule(learning_rate, epochs, steps_per_epoch, warmup_epochs=1)
    model.compile(
        optimizer=pretraining_optimizer(schedule, weight_decay=weight_decay, model=model),
        loss=keras.losses.CategoricalCrossentropy(from_logits=True, label_smoothing=0.1),
        jit_compile=False,  # XLA's compile time outweighs its speed-up in runs this short
        run_eagerly=run_eagerly,
    )
    start = time.perf_counter()
    model.fit(x, keras.ops.one_hot(y, model.outputs[0].shape[-1]), epochs=epochs,
              batch_size=batch_size, verbose=0, shuffle=True)
    return time.perf_counter() - start


def accuracy(model, x, y):
    return float(np.mean(np.argmax(model.predict(x, batch_size=256, verbose=0), 1) == y))


def mean_std(values):
    values = 100 * np.asarray(values)
    return f"{values.mean():.2f} ± {values.std(ddof=1) if len(values) > 1 else 0.0:.2f}"


def map_seeds(fn, seeds, jobs=1):
    """[fn(seed) for seed in seeds], in `jobs` worker processes when jobs > 1 (each
    seed's runs are independent; results come back in seed order)."""
    if jobs <= 1 or len(seeds) <= 1:
        return [fn(seed) for seed in seeds]
    import concurrent.futures
    import multiprocessing

    context = multiprocessing.get_context("spawn")
    with concurrent.futures.ProcessPoolExecutor(min(jobs, len(seeds)), mp_context=context) as pool:
        return list(pool.map(fn, seeds))


def emit(table, output=None):
    """Prints a results table and, with `output`, writes it there too."""
    print(table)
    if output:
        with open(output, "w") as f:
            f.write(table)
