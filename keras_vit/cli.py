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


# One entry per command, in the order `--help` lists them.
COMMANDS = [add_summary]


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
