"""`keras-vit predict`."""

from keras_vit.cli.common import add_invert_argument, input_path, invert_note, model_or_digits


def add_predict(sub):
    p = sub.add_parser(
        "predict",
        help="Classify image files (PNG, JPEG) with a saved model.",
        description="Prints, for each image, its most probable classes and their "
        "probabilities. Without --model, uses the digits model in weights/digits/.",
    )
    input_path(p.add_argument("images", nargs="+", metavar="IMAGE", help="image files"),
               "image file not found: {}")
    input_path(p.add_argument("--model", default=None,
                              help="a .keras model file (default: the digits model)"),
               "model file not found: {}")
    p.add_argument("--top", type=int, default=1, help="classes shown per image (default: 1)")
    add_invert_argument(p)
    p.add_argument("--json", action="store_true", help="print JSON instead of text")

    def run(args):
        import json

        from keras_vit import evaluation
        from keras_vit.evaluation.predict import background_for

        path = model_or_digits(args.model)
        model = evaluation.load_model(path)
        results = evaluation.predict_images(
            model, args.images, top=args.top,
            invert="auto" if args.invert is None else args.invert,
            background=background_for(path, model), class_names=evaluation.class_names_for(path),
        )
        if args.json:
            print(json.dumps(results, indent=2))
        for result in [] if args.json else results:
            shown = ", ".join(
                f"{p['name']} ({p['probability']:.4f})" for p in result["predictions"]
            )
            print(f"{result['path']}: {shown}{invert_note(result['inverted'], args.invert)}")
        return 0

    p.set_defaults(run=run)
