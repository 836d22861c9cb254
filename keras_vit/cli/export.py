"""`keras-vit export`."""

from keras_vit.cli.common import CommandError, input_path

FORMATS = ("saved_model", "onnx", "tflite")  # keras_vit.export.FORMATS, without importing it


def add_export(sub):
    p = sub.add_parser(
        "export",
        help="Export a saved model to SavedModel, ONNX or TFLite and verify it.",
        description="Writes the model (preprocessing inside: it takes [0, 255] pixels) "
        "with Keras' exporter, then runs the artefact with the format's own runtime "
        "(tf.saved_model, onnxruntime, the TFLite interpreter) on a batch of images and "
        "prints the max |difference| from the Keras model's logits; fails when it "
        "exceeds the tolerance (1e-4 of the logits' scale, 1e-3 for TFLite). "
        "ONNX needs `pip install '.[export]'` from the checkout.",
    )
    input_path(p.add_argument("model", metavar="MODEL", help="a .keras model file"),
               "model file not found: {}")
    p.add_argument("--format", required=True, choices=FORMATS)
    p.add_argument("--output", default=None,
                   help="artefact path (default: beside MODEL: _saved_model/, .onnx, .tflite)")
    p.add_argument("--verify", action="store_true", default=True,
                   help="run the artefact and compare with Keras (default)")
    p.add_argument("--no-verify", dest="verify", action="store_false",
                   help="export only")
    p.add_argument("--batch-size", type=int, default=4,
                   help="images in the verification batch (default: 4)")
    p.add_argument("--image-size", type=int, nargs="+", default=None, metavar="SIZE",
                   help="verification image size, for a model taking any size (H [W])")
    p.add_argument("--overwrite", action="store_true", help="replace an existing --output")

    def run(args):
        import json
        import os

        os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
        from keras_vit import export
        from keras_vit.evaluation import load_model

        if args.batch_size < 1:
            raise CommandError(f"--batch-size must be a positive integer, got {args.batch_size}")
        model = load_model(args.model)
        output = args.output or export.default_output(args.model, args.format)
        images = None
        if args.verify:
            size = args.image_size
            size = None if size is None else (size * 2)[:2]
            images = export.sample_images(model, args.batch_size, image_size=size)
        report = export.export_model(model, output, format=args.format, verify=args.verify,
                                     images=images, overwrite=args.overwrite)
        print(json.dumps(report, indent=2))
        return 0

    p.set_defaults(run=run)
