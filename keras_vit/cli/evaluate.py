"""`keras-vit evaluate`."""

from keras_vit.cli.common import CommandError

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
