"""The `keras-vit` command: parses arguments, then calls the library.

Each command is one `add_<command>` function that registers its sub-parser and
sets `run` to a function taking the parsed arguments; the work itself is a
library function a user can call from Python too.
"""

import argparse
import os
import sys


def add_summary(sub):
    p = sub.add_parser("summary", help="Print a model's layers and parameter count.")
    p.add_argument("--model", default="B/16", help="variant name, e.g. Ti/16, B/16")
    p.add_argument("--image-size", type=int, default=224)
    p.add_argument("--num-classes", type=int, default=1000)

    def run(args):
        import keras_vit

        keras_vit.ViT(
            args.model, image_size=args.image_size, num_classes=args.num_classes
        ).summary()
        return 0

    p.set_defaults(run=run)


def _recipe_arguments(p, defaults):
    """Options shared by `train` and `finetune`; None takes the recipe's value."""
    p.add_argument("--data", default="digits",
                   help="digits, cifar10, cifar100, oxford_iiit_pet, oxford_flowers102, "
                   "imagenet2012, or an image folder (default: digits)")
    p.add_argument("--data-dir", default=None, help="tensorflow-datasets data directory")
    p.add_argument("--manual-dir", default=None, help="imagenet2012: folder of its tar files")
    p.add_argument("--output-dir", default=None, help=f"run folder (default: {defaults})")
    p.add_argument("--epochs", type=int, default=None)
    p.add_argument("--batch-size", type=int, default=None, help="global batch size")
    p.add_argument("--learning-rate", type=float, default=None, help="peak learning rate")
    p.add_argument("--warmup-epochs", type=float, default=None)
    p.add_argument("--decay", choices=("cosine", "linear"), default=None)
    p.add_argument("--label-smoothing", type=float, default=None)
    p.add_argument("--augment", default=None,
                   help="none, auto, or translate/crop_flip/randaugment/mixup/cutmix "
                   "joined by '+'")
    p.add_argument("--image-size", type=int, default=None, help="training resolution")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--mixed-precision", action="store_true",
                   help="mixed_float16 on a GPU, mixed_bfloat16 on a CPU")
    p.add_argument("--jit-compile", default="auto", choices=("auto", "on", "off"),
                   help="XLA: auto = on for GPU/TPU, off on a CPU unless measured faster")
    p.add_argument("--distribute", action="store_true",
                   help="data-parallel over all devices (MirroredStrategy on TensorFlow, "
                   "keras.distribution.DataParallel on JAX)")
    p.add_argument("--gradient-accumulation-steps", type=int, default=None,
                   help="sum gradients of this many batches per update")
    p.add_argument("--no-tensorboard", action="store_true", help="skip TensorBoard logs")


def _recipe_kwargs(args):
    return dict(
        data=args.data, data_dir=args.data_dir, manual_dir=args.manual_dir,
        output_dir=args.output_dir, epochs=args.epochs, batch_size=args.batch_size,
        learning_rate=args.learning_rate, warmup_epochs=args.warmup_epochs, decay=args.decay,
        label_smoothing=args.label_smoothing, augment=args.augment,
        image_size=args.image_size, seed=args.seed, mixed_precision=args.mixed_precision,
        jit_compile=args.jit_compile, distribute=args.distribute,
        gradient_accumulation_steps=args.gradient_accumulation_steps,
        tensorboard=not args.no_tensorboard,
    )


def _run_recipe(args, command, *positional, **extra):
    """`keras-vit train|finetune`: keras_vit.training.<command>, then its metrics."""
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")  # before TF loads: no C++ chatter
    from keras_vit import training

    kwargs = dict(_recipe_kwargs(args), **extra)
    kwargs["output_dir"] = args.output_dir or training.default_output_dir(args.data, command)
    metrics = getattr(training, command)(*positional, **kwargs)
    _print_metrics(metrics, command, kwargs["output_dir"])
    return 0


def _print_metrics(metrics, command, output_dir):
    import json
    import shlex

    shown = {k: v for k, v in metrics.items() if k != "config"}
    print(json.dumps(shown, indent=2))
    # Record how the run was made next to its metrics.
    path = os.path.join(output_dir, "metrics.json")
    with open(path) as f:
        saved = json.load(f)
    saved["command"] = " ".join(["keras-vit", command] + [shlex.quote(a) for a in sys.argv[2:]])
    with open(path, "w") as f:
        json.dump(saved, f, indent=2)


def _parse_fields(items):
    """`--set FIELD=VALUE` pairs as a dict; values read as JSON where they parse."""
    import json

    fields = {}
    for item in items:
        name, sep, text = item.partition("=")
        if not sep or not name:
            raise CommandError(f"--set expects FIELD=VALUE, got {item!r}")
        try:
            fields[name.strip()] = json.loads(text)
        except json.JSONDecodeError:
            fields[name.strip()] = text
    return fields


def add_train(sub):
    p = sub.add_parser(
        "train",
        help="Train a ViT from scratch (default: digits, offline, ~2 minutes on a CPU).",
        description="Pre-training recipe of the paper: AdamW, warmup then cosine decay, "
        "grad-norm clip 1, label smoothing, dropout, stochastic depth. Writes "
        "DIR/model.keras, DIR/metrics.json, DIR/history.csv and TensorBoard logs in "
        "DIR/logs; run again with the same --output-dir to resume after an interruption.",
    )
    p.add_argument("--model", default=None,
                   help="'digits' (the small default for digits), a variant such as Ti/16")
    _recipe_arguments(p, "runs/<data>")
    p.add_argument("--weight-decay", type=float, default=None)
    p.add_argument("--dropout-rate", type=float, default=None)
    p.add_argument("--drop-path-rate", type=float, default=None, help="stochastic depth")
    p.add_argument("--set", action="append", default=[], metavar="FIELD=VALUE",
                   help="any other ViTConfig field, e.g. --set num_layers=6 (repeatable)")

    def run(args):
        return _run_recipe(args, "train", model=args.model, weight_decay=args.weight_decay,
                           dropout_rate=args.dropout_rate, drop_path_rate=args.drop_path_rate,
                           model_fields=_parse_fields(args.set))

    p.set_defaults(run=run)


def add_finetune(sub):
    p = sub.add_parser(
        "finetune",
        help="Fine-tune a pre-trained ViT (checkpoint name or file) on a data set.",
        description="Fine-tuning recipe of the paper: SGD momentum 0.9, cosine decay, "
        "grad-norm clip 1, no weight decay; a zero head for the data set's classes "
        "and, with --image-size, position embeddings resampled to the new grid.",
    )
    p.add_argument("--weights", required=True,
                   help="a .keras model, a checkpoint file (.npz, safetensors) or a "
                   "registered name such as B/16:augreg_in21k")
    _recipe_arguments(p, "runs/finetune-<data>")

    def run(args):
        return _run_recipe(args, "finetune", args.weights)

    p.set_defaults(run=run)


def add_evaluate(sub):
    p = sub.add_parser(
        "evaluate",
        help="Top-1/top-5 accuracy and few-shot linear accuracy of a saved model.",
        description="Evaluates a saved model on a data set's test split: top-1, "
        "top-5 (where there are more than 5 classes) and the paper's few-shot "
        "linear accuracy (frozen features, closed-form least squares to {-1, 1}^K, "
        "shots drawn from the training split). Prints JSON.",
    )
    p.add_argument("--model", required=True, help="a .keras model file")
    p.add_argument("--data", default="digits", help="data set name (default: digits)")
    p.add_argument("--data-dir", default=None, help="tensorflow-datasets data directory")
    p.add_argument("--manual-dir", default=None, help="imagenet2012: folder of its tar files")
    p.add_argument("--split", default="test", help="split to evaluate (default: test)")
    p.add_argument(
        "--fewshot-split", default="train",
        help="split the few-shot examples come from (default: train)",
    )
    p.add_argument(
        "--shots", default="1,5,10,25",
        help="few-shot shots per class, comma-separated; 'none' skips (default: 1,5,10,25)",
    )
    p.add_argument("--l2-reg", type=float, default=2.0**10, help="few-shot ridge penalty (1024)")
    p.add_argument("--seed", type=int, default=0, help="seed of the shot selection (0)")
    p.add_argument("--num-seeds", type=int, default=1, help="shot selections averaged (1)")
    p.add_argument("--batch-size", type=int, default=64)
    p.add_argument("--output", default=None, help="also write the JSON to this file")

    def run(args):
        import json

        from keras_vit import evaluation

        shots = _parse_shots(args.shots)
        model = evaluation.load_model(args.model)
        test, fewshot = _evaluation_data(args, model, with_fewshot=bool(shots))
        results = evaluation.evaluate(
            model, test, fewshot_data=fewshot, shots=shots or (), l2_reg=args.l2_reg,
            seed=args.seed, num_seeds=args.num_seeds, batch_size=args.batch_size,
        )
        results = {"model": str(args.model), "data": args.data, "split": args.split, **results}
        text = json.dumps(results, indent=2)
        print(text)
        if args.output:
            with open(args.output, "w") as f:
                f.write(text + "\n")
        return 0

    p.set_defaults(run=run)


def _parse_shots(text):
    if text.strip().lower() in ("", "none", "0"):
        return []
    try:
        shots = [int(s) for s in text.split(",")]
    except ValueError:
        shots = [0]
    if any(s <= 0 for s in shots):
        raise CommandError(
            f"--shots expects positive integers separated by commas, or 'none'; got {text!r}"
        )
    return shots


def _evaluation_data(args, model, with_fewshot):
    """The test split (and the few-shot pool) of `args.data`, at the model's input size."""
    try:
        import tensorflow  # noqa: F401 - tf.data carries every data set

        from keras_vit.data import load_dataset
    except ImportError as error:
        raise CommandError(
            f"--data needs tensorflow and tensorflow-datasets ({error}); "
            "install them with `pip install keras-vit[tf]`"
        ) from None

    height, width, channels = model.inputs[0].shape[1:]
    num_classes = model.outputs[0].shape[-1]

    def load(split):
        # In file order (no shuffle), so the seeded shot selection is reproducible.
        dataset, info = load_dataset(
            args.data, split=split, image_size=(height, width), batch_size=args.batch_size,
            shuffle=False, augment=None, data_dir=args.data_dir, manual_dir=args.manual_dir,
        )
        if info.num_channels != channels:
            raise CommandError(
                f"the model takes {channels}-channel images but {args.data} has "
                f"{info.num_channels}-channel images"
            )
        if "head" in {layer.name for layer in model.layers} and num_classes != info.num_classes:
            raise CommandError(
                f"the model has {num_classes} classes but {args.data} has {info.num_classes}"
            )
        return dataset

    return load(args.split), (load(args.fewshot_split) if with_fewshot else None)


def add_predict(sub):
    p = sub.add_parser(
        "predict",
        help="Classify image files (PNG, JPEG) with a saved model.",
        description="Prints, for each image, its most probable classes and their "
        "probabilities. Without --model, uses the digits model in weights/digits/.",
    )
    p.add_argument("images", nargs="+", metavar="IMAGE", help="image files")
    p.add_argument("--model", default=None, help="a .keras model file (default: the digits model)")
    p.add_argument("--top", type=int, default=1, help="classes shown per image (default: 1)")
    p.add_argument(
        "--invert", action="store_true",
        help="use 255 - pixel (dark ink on light paper, for the digits model)",
    )
    p.add_argument("--json", action="store_true", help="print JSON instead of text")

    def run(args):
        import json

        from keras_vit import evaluation

        path = args.model
        if path is None:
            path = evaluation.DIGITS_MODEL
            if not path.is_file():
                raise CommandError(
                    f"no --model given and the shipped digits model {path} is missing; "
                    "make it with `keras-vit train --output-dir weights/digits`"
                )
        model = evaluation.load_model(path)
        results = evaluation.predict_images(
            model, args.images, top=args.top, invert=args.invert,
            class_names=evaluation.class_names_for(path),
        )
        if args.json:
            print(json.dumps(results, indent=2))
        for result in [] if args.json else results:
            shown = ", ".join(
                f"{p['name']} ({p['probability']:.4f})" for p in result["predictions"]
            )
            print(f"{result['path']}: {shown}")
        return 0

    p.set_defaults(run=run)


def parse_field_value(text):
    """A `--set` value: true/false, none, ints, floats, comma lists, else the string."""
    if "," in text:
        return tuple(parse_field_value(t) for t in text.split(",") if t.strip())
    low = text.strip().lower()
    if low in ("true", "false"):
        return low == "true"
    if low in ("none", "null"):
        return None
    for kind in (int, float):
        try:
            return kind(text)
        except ValueError:
            pass
    return text


def add_convert(sub):
    p = sub.add_parser(
        "convert",
        help="Convert an official, timm or HF checkpoint to a .keras model.",
        description="Reads an original Google .npz, a timm .safetensors state dict "
        "(or hub folder) or an HF folder (config.json + model.safetensors), or a "
        "registered name such as B/16:augreg_in21k, and writes a .keras model that "
        "takes [0, 255] pixels.",
    )
    p.add_argument("source", metavar="SOURCE", help="checkpoint file, folder or registered name")
    p.add_argument("--output", required=True, metavar="OUT.keras", help="the .keras file to write")
    p.add_argument("--format", choices=("npz", "timm", "hf"), default=None,
                   help="source format (default: inferred)")
    p.add_argument("--variant", default=None, help="e.g. B/16, for what the file does not record")
    p.add_argument("--set", action="append", default=[], metavar="FIELD=VALUE",
                   help="a ViTConfig field, e.g. --set num_heads=3 (repeatable)")
    p.add_argument("--force", action="store_true", help="overwrite an existing --output")

    def run(args):
        import os
        import tempfile

        if not args.output.endswith(".keras"):
            raise CommandError(f"--output must end in .keras; got {args.output!r}")
        if os.path.exists(args.output) and not args.force:
            raise CommandError(f"{args.output} exists; pass --force to overwrite it")
        overrides = {}
        for item in args.set:
            field, sep, value = item.partition("=")
            if not sep or not field.strip():
                raise CommandError(f"--set expects FIELD=VALUE; got {item!r}")
            overrides[field.strip()] = parse_field_value(value.strip())

        import keras_vit

        try:
            model = keras_vit.convert_checkpoint(
                args.source, format=args.format, variant=args.variant, **overrides
            )
        except OSError as error:
            raise CommandError(f"cannot read {args.source}: {error}") from None
        folder = os.path.dirname(os.path.abspath(args.output))
        fd, tmp = tempfile.mkstemp(suffix=".keras", prefix=".convert-", dir=folder)
        os.close(fd)
        try:  # write next to the output, then rename: never a half-written file
            model.save(tmp)
            os.replace(tmp, args.output)
        finally:
            if os.path.exists(tmp):
                os.remove(tmp)
        c = model.config
        print(
            f"wrote {args.output}: {c.num_layers} layers, width {c.hidden_size}, "
            f"{c.num_heads} heads, patch {c.patch_size}, image {c.image_size}, "
            f"{model.count_params():,} parameters"
        )
        return 0

    p.set_defaults(run=run)


def add_benchmark(sub):
    p = sub.add_parser(
        "benchmark",
        help="Throughput and memory of keras_vit against keras-hub and timm.",
        description="Interleaved, repeated runs of keras_vit and its peers, each in its "
        "own process; prints a markdown table of medians and ratios.",
    )
    from keras_vit.benchmark import add_arguments

    add_arguments(p)

    def run(args):
        from keras_vit.benchmark import main as benchmark_main

        return benchmark_main(args)

    p.set_defaults(run=run)


# One entry per command, in the order `--help` lists them.
COMMANDS = [add_summary, add_train, add_finetune, add_evaluate, add_predict, add_convert, add_benchmark]


def build_parser():
    parser = argparse.ArgumentParser(
        prog="keras-vit",
        description="Vision Transformers (An Image is Worth 16x16 Words) in Keras 3.",
    )
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    for add in COMMANDS:
        add(sub)
    return parser


class CommandError(Exception):
    """A user-facing failure: printed as one line, exit status 1."""


def main(argv=None):
    parser = build_parser()
    args = parser.parse_args(argv)
    if args.command is None:
        parser.print_help()
        return 2
    try:
        return args.run(args) or 0
    except (CommandError, ValueError, FileNotFoundError) as error:
        print(f"keras-vit {args.command}: error: {error}", file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())
