"""`keras-vit predict`."""

from keras_vit.cli.common import CommandError

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
