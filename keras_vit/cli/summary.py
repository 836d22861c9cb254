"""`keras-vit summary`."""

import argparse

from keras_vit.cli.common import add_checkpoint_arguments, parse_fields
from keras_vit.errors import ArgumentError, DataNotFound


def add_summary(sub):
    p = sub.add_parser(
        "summary", help="Print a model's layers and parameter count.",
        description="MODEL is a variant name (Ti/16, B/16, R50+B/16: built at random), a "
        "saved .keras model, or a checkpoint file, folder or registered name as "
        "`keras-vit convert` reads them.")
    p.add_argument("model", nargs="?", default=None, metavar="MODEL",
                   help="variant name, .keras file or checkpoint (default: B/16)")
    p.add_argument("--model", dest="model_option", default=None, help=argparse.SUPPRESS)  # the older `--model NAME`
    p.add_argument("--image-size", type=int, default=None, help="for a variant (default: 224)")
    p.add_argument("--num-classes", type=int, default=None,
                   help="for a variant (default: 1000)")
    add_checkpoint_arguments(p)

    def run(args):
        import os

        import keras

        import keras_vit

        source = args.model or args.model_option or "B/16"
        fields = parse_fields(args.set)
        if source.endswith(".keras"):
            if not os.path.isfile(source):
                raise DataNotFound(f"No model file at {source}.")
            model = keras.models.load_model(source)
        elif os.path.exists(source) or ":" in source:
            model = keras_vit.convert_checkpoint(source, variant=args.variant, **fields)
        else:
            for name, flag, default in (("image_size", args.image_size, 224),
                                        ("num_classes", args.num_classes, 1000)):
                if flag is not None and name in fields and fields[name] != flag:
                    raise ArgumentError(
                        f"Received two values for `{name}`: --{name.replace('_', '-')} "
                        f"{flag} and --set {name}={fields[name]!r}; pass one.")
                fields.setdefault(name, flag if flag is not None else default)
            model = keras_vit.ViT(source, **fields)
        model.summary()
        return 0

    p.set_defaults(run=run)

