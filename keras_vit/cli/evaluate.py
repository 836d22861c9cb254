"""`keras-vit evaluate`."""

from keras_vit.cli.common import CommandError, input_path


def add_evaluate(sub):
    p = sub.add_parser(
        "evaluate",
        help="Top-1/top-5, few-shot linear accuracy or ImageNet ReaL of a saved model.",
        description="Evaluates a saved model on a data set's test split: top-1, "
        "top-5 (where there are more than 5 classes) and the paper's few-shot "
        "linear accuracy (frozen features before the head, closed-form least squares "
        "to {-1, 1}^K, shots drawn from the training split, seeds 0, 1, 2 each "
        "reported with their mean). --data imagenet2012_real reports the original "
        "top-1 beside ReaL top-1. Prints JSON.",
    )
    input_path(p.add_argument("--model", required=True, help="a .keras model file"),
               "model file not found: {}")
    p.add_argument(
        "--data", default="digits",
        help="data set name, an image folder, or imagenet2012_real (default: digits)",
    )
    p.add_argument("--data-dir", default=None, help="tensorflow-datasets data directory")
    p.add_argument(
        "--manual-dir", default=None,
        help="imagenet2012 / imagenet2012_real: folder of the ImageNet tar files",
    )
    p.add_argument("--split", default="test", help="split to evaluate (default: test)")
    p.add_argument(
        "--fewshot-split", default="train",
        help="split the few-shot examples come from (default: train)",
    )
    p.add_argument(
        "--few-shot", action="store_true",
        help="few-shot only: no top-k, so a model with a head of any size (or none) works",
    )
    p.add_argument(
        "--shots", default="1,5,10,25",
        help="few-shot shots per class, comma-separated; 'none' skips (default: 1,5,10,25)",
    )
    p.add_argument("--l2-reg", type=float, default=2.0**10, help="few-shot ridge penalty (1024)")
    p.add_argument("--seed", type=int, default=0, help="first seed of the shot selection (0)")
    p.add_argument(
        "--num-seeds", type=int, default=3,
        help="shot selections, each reported, and their mean (3, as big_vision)",
    )
    p.add_argument(
        "--preprocessing", choices=("resize", "big_vision"), default="resize",
        help="resize: bilinear to the model's size; big_vision: its few-shot "
        "resize(256)|central_crop(224), scaled to the model's size (default: resize)",
    )
    p.add_argument("--batch-size", type=int, default=64)
    p.add_argument("--output", default=None, help="also write the JSON to this file")

    def run(args):
        import json

        from keras_vit import evaluation

        shots = _parse_shots(args.shots)
        if args.few_shot and not shots:
            raise CommandError("--few-shot needs shot counts; got --shots none")
        model = evaluation.load_model(args.model)
        results = evaluation.evaluate_dataset(
            model, args.data, split=args.split, fewshot_split=args.fewshot_split,
            shots=shots, l2_reg=args.l2_reg, seed=args.seed, num_seeds=args.num_seeds,
            batch_size=args.batch_size, data_dir=args.data_dir, manual_dir=args.manual_dir,
            preprocessing=args.preprocessing, fewshot_only=args.few_shot,
        )
        results = {"model": str(args.model), **results}
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
