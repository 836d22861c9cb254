"""Masked patch prediction (paper section 4.6): pre-train, fine-tune, compare with scratch.

Three arms, each with the same total budget of epochs over the training images
and the same ViT (the digits model unless --set says otherwise):

- scratch:   `train` for the whole budget (the paper's pre-training recipe:
             AdamW, warmup + cosine, label smoothing), labels from the start.
- mpp:       `pretrain` (masked patch prediction, labels unused) for half the
             budget, then `finetune` (SGD momentum 0.9, cosine) for the other half.
- random+ft: the same `finetune` from a random initialisation for half the
             budget: the control that says what the pre-training itself added.

Prints a Markdown table (test accuracy per seed, mean, seconds) and, with
--output, writes it with the command that made it.

    python examples/masked_patch_prediction.py --smoke          # ~1 minute
    python examples/masked_patch_prediction.py --epochs 16 --seeds 0 1 \
        --output results/masked_patch_prediction_digits.md
    python examples/masked_patch_prediction.py --data cifar10   # where tfds has it
"""

import argparse
import os
import platform
import shlex
import sys
import tempfile
import time

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")


def parse_args(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--data", default="digits", help="digits (offline), cifar10, an image folder")
    p.add_argument("--data-dir", default=None, help="tensorflow-datasets data directory")
    p.add_argument("--epochs", type=int, default=16,
                   help="total budget per arm: mpp pre-trains half and fine-tunes half")
    p.add_argument("--seeds", type=int, nargs="+", default=[0, 1])
    p.add_argument("--target", default="mean_color",
                   choices=("mean_color", "downsampled", "pixels"))
    p.add_argument("--finetune-learning-rate", type=float, default=0.03,
                   help="SGD learning rate of the fine-tuning (the paper sweeps "
                   "0.001-0.03)")
    p.add_argument("--finetune-batch-size", type=int, default=32)
    p.add_argument("--set", action="append", default=[], metavar="FIELD=VALUE",
                   help="ViTConfig fields of the model, e.g. --set num_layers=2")
    p.add_argument("--jit-compile", default="off", choices=("auto", "on", "off"),
                   help="XLA for every arm (default off: on a CPU its compile time "
                   "outweighs short runs, and the arms' seconds stay comparable)")
    p.add_argument("--output", default=None, help="write the table (Markdown) here")
    p.add_argument("--work-dir", default=None, help="run folders (default: a temp folder)")
    p.add_argument("--smoke", action="store_true",
                   help="a tiny run that checks the script works (2 epochs, 1 seed, 1 layer)")
    args = p.parse_args(argv)
    if args.smoke:
        args.epochs, args.seeds = 2, [0]
        args.set = args.set + ["num_layers=1", "hidden_size=32", "mlp_dim=64"]
    if args.epochs < 2:
        p.error(f"--epochs must be at least 2 (half pre-training, half fine-tuning); got {args.epochs}")
    return args


def dataset_available(data, data_dir):
    """digits and folders always; a tfds data set only if prepared on disk."""
    if data == "digits" or os.path.isdir(data):
        return True, ""
    import tensorflow_datasets as tfds

    try:
        prepared = tfds.builder(data, data_dir=data_dir).is_prepared()
    except tfds.core.registered.DatasetNotFoundError as error:
        return False, f"{data}: {error}"
    if not prepared:
        return False, f"{data} is not prepared in {data_dir or '~/tensorflow_datasets'}"
    return True, ""


def run(args):
    import keras

    from keras_vit.cli.common import parse_fields
    from keras_vit.data import load_dataset
    from keras_vit.pretraining import pretrain
    from keras_vit.training import DIGITS_RECIPE, PRETRAIN_RECIPE, build_model, finetune, train

    ok, why = dataset_available(args.data, args.data_dir)
    if not ok:
        print(f"Skipped: {why}.")
        return None
    fields = parse_fields(args.set)
    work = args.work_dir or tempfile.mkdtemp(prefix="mpp-example-")
    half = args.epochs // 2
    ft = dict(data=args.data, data_dir=args.data_dir, epochs=args.epochs - half,
              batch_size=args.finetune_batch_size, learning_rate=args.finetune_learning_rate,
              warmup_epochs=1, jit_compile=args.jit_compile, tensorboard=False, verbose=0)
    rows = []
    for seed in args.seeds:
        folder = os.path.join(work, f"seed{seed}")
        start = time.time()
        m = train(args.data, output_dir=os.path.join(folder, "scratch"), epochs=args.epochs,
                  seed=seed, model_fields=fields, data_dir=args.data_dir, tensorboard=False,
                  jit_compile=args.jit_compile, verbose=0)
        rows.append(("scratch", seed, 0, args.epochs, m["test_accuracy"], time.time() - start))
        print(rows[-1], flush=True)

        start = time.time()
        p = pretrain(args.data, target=args.target, output_dir=os.path.join(folder, "mpp"),
                     epochs=half, seed=seed, model_fields=fields, data_dir=args.data_dir,
                     jit_compile=args.jit_compile, tensorboard=False, verbose=0)
        m = finetune(os.path.join(folder, "mpp", "model.keras"), seed=seed,
                     output_dir=os.path.join(folder, "mpp-finetune"), **ft)
        rows.append((f"mpp ({args.target}) + fine-tune", seed, half, args.epochs - half,
                     m["test_accuracy"], time.time() - start, p.get("test_patch_accuracy")))
        print(rows[-1], flush=True)

        start = time.time()
        keras.utils.set_random_seed(seed)
        _, info = load_dataset(args.data, "test", batch_size=1, data_dir=args.data_dir)
        recipe = DIGITS_RECIPE if args.data == "digits" else PRETRAIN_RECIPE
        random_init = build_model(recipe["model"], info, image_size=recipe["image_size"],
                                  dropout_rate=recipe["dropout_rate"],
                                  drop_path_rate=recipe["drop_path_rate"], include_top=False,
                                  **fields)
        os.makedirs(folder, exist_ok=True)
        random_init.save(os.path.join(folder, "random.keras"))
        m = finetune(os.path.join(folder, "random.keras"), seed=seed,
                     output_dir=os.path.join(folder, "random-finetune"), **ft)
        rows.append(("random init + fine-tune", seed, 0, args.epochs - half, m["test_accuracy"],
                     time.time() - start))
        print(rows[-1], flush=True)
    return rows


def table(rows, args, seconds):
    import keras

    lines = [
        f"Masked patch prediction on {args.data}: test accuracy, same total budget "
        f"({args.epochs} epochs over the training images per arm).",
        "",
        "| arm | seed | pre-train epochs | train / fine-tune epochs | test accuracy | "
        "patch accuracy (pre-training, test) | seconds |",
        "|---|---|---|---|---|---|---|",
    ]
    for row in rows:
        arm, seed, pre, tune, acc, secs = row[:6]
        patch = f"{row[6]:.3f}" if len(row) > 6 and row[6] is not None else ""
        lines.append(f"| {arm} | {seed} | {pre} | {tune} | {acc:.4f} | {patch} | {secs:.0f} |")
    lines += ["", "| arm | mean test accuracy | seeds |", "|---|---|---|"]
    for arm in dict.fromkeys(r[0] for r in rows):
        accs = [r[4] for r in rows if r[0] == arm]
        lines.append(f"| {arm} | {sum(accs) / len(accs):.4f} | {len(accs)} |")
    cpu = next((line.split(":", 1)[1].strip() for line in open("/proc/cpuinfo")
                if line.startswith("model name")), platform.processor()) \
        if os.path.exists("/proc/cpuinfo") else platform.processor()
    lines += ["", f"Backend {keras.backend.backend()}, {os.cpu_count()} CPU cores ({cpu}), "
              f"{seconds:.0f} s in all; seconds include each run's start-up and tracing."]
    return "\n".join(lines)


def main(argv=None):
    args = parse_args(argv)
    start = time.time()
    rows = run(args)
    if rows is None:
        return 0
    text = table(rows, args, time.time() - start)
    print(text)
    if args.output:
        command = "python examples/masked_patch_prediction.py " + " ".join(
            shlex.quote(a) for a in (argv if argv is not None else sys.argv[1:]))
        os.makedirs(os.path.dirname(args.output) or ".", exist_ok=True)
        with open(args.output, "w") as f:
            f.write(f"# Masked patch prediction vs training from scratch\n\n"
                    f"Made by `{command}`.\n\n{text}\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
