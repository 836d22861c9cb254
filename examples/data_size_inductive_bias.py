"""The paper's inductive-bias argument at small scale: ViT vs ResNet as data grows.

The ViT paper (section 4.3, Figures 3-4) finds that with little pre-training
data a ResNet beats a ViT of similar compute, whose weaker inductive bias
(no locality or translation equivariance built in) makes it overfit, and
that the ViT overtakes the ResNet as data grows. Here both are trained from
scratch on 10 %, 30 % and 100 % of a training set under the same budget (the
same number of optimizer steps of the same batch size, the same AdamW recipe),
and scored on the full test split: a tiny ViT (2 layers, width 32, 4x4
patches on 16x16 digits) and a small pre-activation ResNet (3x3 convs,
GroupNorm, 2 stages, widths 16/32) of a similar size; the table gives the
parameter counts and the measured time per step.

    python examples/data_size_inductive_bias.py --output results/data_size_inductive_bias.md
    python examples/data_size_inductive_bias.py --data cifar10   # when tfds has it
    python examples/data_size_inductive_bias.py --smoke   # seconds
"""

import argparse
import functools
import sys
import time

FRACTIONS = (0.1, 0.3, 1.0)


def resnet(seed, image_size, channels, num_classes=10, width=16):
    """A small pre-activation ResNet (BiT style: GroupNorm before each 3x3 conv)."""
    import keras
    from keras import layers

    keras.utils.set_random_seed(seed)

    def block(x, filters, stride):
        shortcut = x
        y = layers.Activation("relu")(layers.GroupNormalization(4)(x))
        if stride != 1 or x.shape[-1] != filters:
            shortcut = layers.Conv2D(filters, 1, strides=stride, use_bias=False)(y)
        y = layers.Conv2D(filters, 3, strides=stride, padding="same", use_bias=False)(y)
        y = layers.Activation("relu")(layers.GroupNormalization(4)(y))
        y = layers.Conv2D(filters, 3, padding="same", use_bias=False)(y)
        return layers.Add()([shortcut, y])

    inputs = keras.Input((image_size, image_size, channels))
    x = layers.Rescaling(1 / 127.5, offset=-1.0)(inputs)
    x = layers.Conv2D(width, 3, strides=2, padding="same", use_bias=False)(x)  # /2
    x = block(x, width, 1)
    x = block(x, 2 * width, 2)  # /4
    x = layers.Activation("relu")(layers.GroupNormalization(4)(x))
    x = layers.GlobalAveragePooling2D()(x)
    return keras.Model(inputs, layers.Dense(num_classes)(x), name="resnet")


def load(data, image_size):
    """(x_train, y_train), (x_test, y_test), channels."""
    import numpy as np

    import _digits

    if data == "digits":
        return (*_digits.digits(image_size), 1)
    import tensorflow_datasets as tfds

    out = []
    for split in ("train", "test"):
        x, y = tfds.as_numpy(tfds.load(data, split=split, as_supervised=True,
                                       batch_size=-1, download=False))
        out.append((x.astype(np.float32), y.astype(np.int32)))
    return (*out, 3)


def run_seed(seed, data, steps, smoke):
    """({(model, fraction): test accuracy}, {model: (params, ms/step)}) for one seed."""
    import numpy as np

    import _digits

    image_size = 16 if data == "digits" else 32
    (x, y), (x_test, y_test), channels = load(data, image_size)
    if smoke:
        x_test, y_test = x_test[:64], y_test[:64]
    builders = {
        "ViT": lambda: _digits.tiny_vit(seed, image_size=image_size, num_channels=channels),
        "ResNet": lambda: resnet(seed, image_size, channels),
    }
    rng = np.random.default_rng(seed)
    order = rng.permutation(len(y))
    scores, info = {}, {}
    for fraction in FRACTIONS[:1] if smoke else FRACTIONS:
        # A stratified subset: the first fraction of each class in a seeded order.
        idx = np.concatenate([order[y[order] == k][: max(1, int(fraction * np.sum(y == k)))]
                              for k in range(10)])
        for name, build in builders.items():
            model = build()
            seconds = _digits.fit(model, x[idx], y[idx], None, seed, steps=steps,
                                  run_eagerly=smoke)  # no tracing in a smoke
            scores[(name, fraction)] = _digits.accuracy(model, x_test, y_test)
            info[name] = (model.count_params(), seconds / steps * 1000)
            print(f"seed {seed} {int(fraction * 100):>3} % {name:>6}: "
                  f"{100 * scores[(name, fraction)]:.2f} %", flush=True)
    return scores, info


def parse_args(argv):
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--data", default="digits", help="digits (offline) or cifar10")
    p.add_argument("--steps", type=int, default=700,
                   help="optimizer steps of batch 64 per run, whatever the data size (700)")
    p.add_argument("--seeds", default="0,1,2")
    p.add_argument("--output", default=None, help="write the markdown table here (and a .png)")
    p.add_argument("--jobs", type=int, default=1, help="worker processes, one seed each (1)")
    p.add_argument("--smoke", action="store_true", help="a few steps, one seed (a test)")
    return p.parse_args(argv)


def main(argv=None):
    args = parse_args(argv)
    import numpy as np

    import _digits

    image_size = 16 if args.data == "digits" else 32
    try:
        (x, y), (x_test, _), _ = load(args.data, image_size)
    except Exception as error:  # tfds: not prepared
        print(f"data_size_inductive_bias: {args.data} is not prepared for tensorflow-datasets "
              f"({type(error).__name__}); on a machine with internet run `python -c \"import "
              f"tensorflow_datasets as tfds; tfds.load('{args.data}')\"` and copy "
              f"~/tensorflow_datasets/{args.data} here, or use --data digits", file=sys.stderr)
        return 2
    seeds = [int(s) for s in args.seeds.split(",")]
    steps = args.steps
    if args.smoke:
        seeds, steps = [0], 3
        x_test = x_test[:64]
    start = time.perf_counter()
    per_seed = _digits.map_seeds(
        functools.partial(run_seed, data=args.data, steps=steps, smoke=args.smoke), seeds,
        args.jobs)
    scores = {key: [s[0][key] for s in per_seed] for key in per_seed[0][0]}
    fractions = sorted({f for _, f in scores})
    info = per_seed[0][1]
    builders = info
    minutes = (time.perf_counter() - start) / 60
    command = "python examples/data_size_inductive_bias.py " + " ".join(argv or sys.argv[1:])
    lines = [
        f"Command: `{command.strip()}`  ",
        f"Data: {args.data} ({len(y)} training images, {len(x_test)} test); seeds "
        f"{', '.join(map(str, seeds))}; {steps} AdamW steps of batch 64 per run whatever the "
        f"data size; {minutes:.1f} min in all. Test accuracy (%), mean ± std over seeds.",
        "",
        "| model | params | ms/step (loaded CPU) | "
        + " | ".join(f"{int(f * 100)} % data" for f in fractions) + " |",
        "|---|---:|---:|" + "---:|" * len(fractions),
    ]
    for name in builders:
        params, ms = info[name]
        lines.append(f"| {name} | {params:,} | {ms:.1f} | "
                     + " | ".join(_digits.mean_std(scores[(name, f)]) for f in fractions) + " |")
    table = "\n".join(lines) + "\n"
    _digits.emit(table, args.output)
    if args.output:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt

        fig, ax = plt.subplots(figsize=(4.5, 3.2))
        for name in builders:
            means = [100 * np.mean(scores[(name, f)]) for f in FRACTIONS]
            stds = [100 * np.std(scores[(name, f)]) for f in FRACTIONS]
            ax.errorbar([100 * f for f in FRACTIONS], means, yerr=stds, marker="o",
                        capsize=3, label=name)
        ax.set_xscale("log")
        ax.set_xticks([100 * f for f in FRACTIONS], [f"{int(100 * f)} %" for f in FRACTIONS])
        ax.set_xlabel(f"share of {args.data} training data")
        ax.set_ylabel("test accuracy (%)")
        ax.legend()
        fig.tight_layout()
        fig.savefig(args.output.rsplit(".", 1)[0] + ".png", dpi=120)
    return 0


if __name__ == "__main__":
    sys.exit(main())
