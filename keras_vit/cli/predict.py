"""`keras-vit predict`."""

import argparse

from keras_vit.cli.common import input_path, model_or_digits


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
    p.add_argument(
        "--invert", action=argparse.BooleanOptionalAction, default=None,
        help="use 255 - pixel, or never (--no-invert); by default an image is inverted "
        "when its polarity is not the training data's (for the digits model, light "
        "strokes on dark: a drawing whose border is brighter than its centre)",
    )
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
            background=background_for(path), class_names=evaluation.class_names_for(path),
        )
        if args.json:
            print(json.dumps(results, indent=2))
        for result in [] if args.json else results:
            shown = ", ".join(
                f"{p['name']} ({p['probability']:.4f})" for p in result["predictions"]
            )
            note = ""
            if result["inverted"] and args.invert is None:
                note = "  (inverted: its border is brighter than its centre; --no-invert keeps it)"
            elif result["inverted"]:
                note = "  (inverted: --invert)"
            print(f"{result['path']}: {shown}{note}")
        return 0

    p.set_defaults(run=run)
