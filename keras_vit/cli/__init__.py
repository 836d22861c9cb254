"""The `keras-vit` command: parses arguments, then calls the library.

One module per command (`keras_vit/cli/<command>.py`), each with an `add_<command>`
function that registers its sub-parser and sets `run` to a function taking the parsed
arguments; the work itself is a library function a user can call from Python too.
Command modules import nothing heavy at module level, so `--help` and argument errors
never start Keras or TensorFlow.
"""

import argparse
import sys

from keras_vit.cli.benchmark import add_benchmark
from keras_vit.cli.common import (
    check_backend_installed,
    check_input_paths,
    is_user_error,
    name_the_flags,
    quiet_tensorflow,
)
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

INTERRUPTED_STATUS = 130  # a process ended by SIGINT, as shells report it (128 + 2)
_VERBOSE_HELP = "show TensorFlow's start-up log lines (hidden by default)"


def build_parser():
    parser = argparse.ArgumentParser(
        prog="keras-vit",
        description="Vision Transformers (An Image is Worth 16x16 Words) in Keras 3.",
    )
    parser.add_argument("--verbose", action="store_true", help=_VERBOSE_HELP)
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    for add in COMMANDS:
        add(sub)
    for command in sub.choices.values():  # also after the command: `keras-vit train --verbose`
        command.add_argument("--verbose", action="store_true", default=argparse.SUPPRESS,
                             help=_VERBOSE_HELP)
        command.set_defaults(command_parser=command)  # its flags name what an error names
    return parser


def _interrupted(error):
    """True for `keras_vit.training.interrupt.TrainingInterrupted` (Ctrl-C during training),
    looked up only where training ran, so a refused argument imports no Keras."""
    module = sys.modules.get("keras_vit.training.interrupt")
    return module is not None and isinstance(error, module.TrainingInterrupted)


def main(argv=None):
    argv = sys.argv[1:] if argv is None else list(argv)
    parser = build_parser()
    args = parser.parse_args(argv)
    if args.command is None:
        parser.print_help()
        return 2
    args.argv = argv[argv.index(args.command) + 1:]  # as typed after the command, recorded
    quiet_tensorflow(args.verbose)
    try:
        check_input_paths(args)  # before Keras is imported (seconds)
        check_backend_installed()
        return args.run(args) or 0
    except KeyboardInterrupt:  # Ctrl-C outside training's own handling (loading, saving)
        print(f"keras-vit {args.command}: interrupted", file=sys.stderr)
        return INTERRUPTED_STATUS
    except Exception as error:  # noqa: BLE001 - a bug is re-raised with its traceback
        if not is_user_error(error):
            raise
        if _interrupted(error):  # not an error: what the user asked for
            print(f"keras-vit {args.command}: {error}", file=sys.stderr)
            return INTERRUPTED_STATUS
        message = name_the_flags(str(error), args.command_parser)
        print(f"keras-vit {args.command}: error: {message}", file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())
