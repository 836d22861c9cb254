"""`keras-vit convert`."""

import os

from keras_vit.cli.common import (
    CommandError,
    add_checkpoint_arguments,
    input_path,
    parse_fields,
)


def add_convert(sub):
    p = sub.add_parser(
        "convert",
        help="Convert an official, timm or HF checkpoint to a .keras model, or a model "
        "back out to a timm or HF folder (--to).",
        description="Reads an original Google .npz, a timm .safetensors state dict "
        "(or hub folder) or an HF folder (config.json + model.safetensors), or a "
        "registered name such as B/16:augreg_in21k, and writes a .keras model that "
        "takes [0, 255] pixels. With --to timm|hf it writes the model (a .keras file or "
        "any of those) as a timm hub folder (config.json + model.safetensors) or an HF "
        "ViTForImageClassification folder instead, into the folder --output.",
    )
    input_path(p.add_argument("source", metavar="SOURCE",
                              help="checkpoint file, folder or registered name"),
               "No checkpoint file or folder at {}.", names_too=True)
    p.add_argument("--output", required=True, metavar="OUT.keras",
                   help="the .keras file to write (with --to: the folder)")
    p.add_argument("--to", choices=("keras", "timm", "hf"), default="keras",
                   help="what to write: a .keras model (default), a timm hub folder or an "
                   "HF folder")
    p.add_argument("--format", choices=("npz", "timm", "hf"), default=None,
                   help="source format (default: inferred)")
    add_checkpoint_arguments(p)
    p.add_argument("--force", action="store_true", help="overwrite an existing --output")

    def run(args):
        import keras_vit
        from keras_vit.utils import atomic_path

        if args.to != "keras":
            return _export(args)
        if not args.output.endswith(".keras"):
            raise CommandError(f"--output must end in .keras; got {args.output!r}")
        if os.path.exists(args.output) and not args.force:
            raise CommandError(f"{args.output} exists; pass --force to overwrite it")
        overrides = parse_fields(args.set)
        try:
            model = keras_vit.convert_checkpoint(
                args.source, format=args.format, variant=args.variant, **overrides
            )
        except OSError as error:
            raise CommandError(f"cannot read {args.source}: {error}") from error
        with atomic_path(args.output) as tmp:  # never a half-written file; the user's umask
            model.save(tmp)
        c = model.config
        print(
            f"wrote {args.output}: {c.num_layers} layers, width {c.hidden_size}, "
            f"{c.num_heads} heads, patch {c.patch_size}, image {c.image_size}, "
            f"{model.count_params():,} parameters"
        )
        return 0

    def _export(args):
        import keras_vit
        from keras_vit.checkpoints.export import export_checkpoint

        if args.output.endswith(".keras"):
            raise CommandError(f"--output is a folder with --to {args.to}; got {args.output!r}")
        overrides = parse_fields(args.set)
        try:
            model = keras_vit.convert_checkpoint(
                args.source, format=args.format, variant=args.variant, **overrides
            )
        except OSError as error:
            raise CommandError(f"cannot read {args.source}: {error}") from error
        written = export_checkpoint(model, args.output, format=args.to, overwrite=args.force)
        c = model.config
        files = ", ".join(map(os.path.basename, written))
        print(f"wrote {args.to} folder {args.output} ({files}): "
              f"{c.num_layers} layers, width {c.hidden_size}, image {c.image_size}, "
              f"{c.num_classes if c.include_top else 0} classes")
        return 0

    p.set_defaults(run=run)
