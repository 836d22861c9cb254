"""`keras-vit convert`."""

from keras_vit.cli.common import CommandError, add_checkpoint_arguments, parse_fields


def add_convert(sub):
    p = sub.add_parser(
        "convert",
        help="Convert an official, timm or HF checkpoint to a .keras model.",
        description="Reads an original Google .npz, a timm .safetensors state dict "
        "(or hub folder) or an HF folder (config.json + model.safetensors), or a "
        "registered name such as B/16:augreg_in21k, and writes a .keras model that "
        "takes [0, 255] pixels.",
    )
    p.add_argument("source", metavar="SOURCE", help="checkpoint file, folder or registered name")
    p.add_argument("--output", required=True, metavar="OUT.keras", help="the .keras file to write")
    p.add_argument("--format", choices=("npz", "timm", "hf"), default=None,
                   help="source format (default: inferred)")
    add_checkpoint_arguments(p)
    p.add_argument("--force", action="store_true", help="overwrite an existing --output")

    def run(args):
        import os

        import keras_vit
        from keras_vit.utils import atomic_path

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

    p.set_defaults(run=run)
