"""The `keras-vit` command: parses arguments, then calls the library.

Each command is one `add_<command>` function that registers its sub-parser and
sets `run` to a function taking the parsed arguments; the work itself is a
library function a user can call from Python too.
"""

import argparse
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
    from keras_vit.data import load_dataset

    height, width, channels = model.inputs[0].shape[1:]

    def load(split):
        return load_dataset(
            args.data, split=split, image_size=(height, width), num_channels=channels,
            batch_size=args.batch_size, data_dir=args.data_dir,
        )

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


# One entry per command, in the order `--help` lists them.
COMMANDS = [add_summary, add_evaluate, add_predict]


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
