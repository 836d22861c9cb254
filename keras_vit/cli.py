"""The `keras-vit` command: parses arguments, then calls the library."""

import argparse
import sys


def build_parser():
    parser = argparse.ArgumentParser(
        prog="keras-vit",
        description="Vision Transformers (An Image is Worth 16x16 Words) in Keras 3.",
    )
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    summary = sub.add_parser("summary", help="Print a model's layers and parameter count.")
    summary.add_argument("--model", default="B/16", help="variant name, e.g. Ti/16, B/16")
    summary.add_argument("--image-size", type=int, default=224)
    summary.add_argument("--num-classes", type=int, default=1000)
    return parser


def cmd_summary(args):
    import keras_vit

    model = keras_vit.ViT(args.model, image_size=args.image_size, num_classes=args.num_classes)
    model.summary()
    return 0


COMMANDS = {"summary": cmd_summary}


def main(argv=None):
    parser = build_parser()
    args = parser.parse_args(argv)
    if args.command is None:
        parser.print_help()
        return 2
    try:
        return COMMANDS[args.command](args)
    except (ValueError, FileNotFoundError) as error:
        print(f"keras-vit {args.command}: error: {error}", file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())
