"""The `keras-vit` command: parses arguments, then calls the library.

One module per command (`keras_vit/cli/<command>.py`), each with an `add_<command>`
function that registers its sub-parser and sets `run` to a function taking the parsed
arguments; the work itself is a library function a user can call from Python too.
Command modules import nothing heavy at module level, so `--help` stays fast.
"""

import argparse
import sys

from keras_vit.cli.benchmark import add_benchmark
from keras_vit.cli.common import CommandError, parse_field_value
from keras_vit.cli.convert import add_convert
from keras_vit.cli.evaluate import add_evaluate
from keras_vit.cli.export import add_export
from keras_vit.cli.predict import add_predict
from keras_vit.cli.pretrain import add_pretrain
from keras_vit.cli.summary import add_summary
from keras_vit.cli.train import add_finetune, add_train
from keras_vit.cli.visualize import add_visualize
from keras_vit.cli.vtab import add_vtab

# One entry per command, in the order `--help` lists them.
COMMANDS = [add_summary, add_train, add_finetune, add_pretrain, add_evaluate, add_vtab,
            add_predict, add_convert, add_export, add_visualize, add_benchmark]


def build_parser():
    parser = argparse.ArgumentParser(
        prog="keras-vit",
        description="Vision Transformers (An Image is Worth 16x16 Words) in Keras 3.",
    )
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    for add in COMMANDS:
        add(sub)
    return parser


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
