"""`keras-vit pretrain`: self-supervised pre-training (masked patch prediction)."""

from keras_vit.cli.common import (
    add_distribution_arguments,
    add_overwrite_argument,
    add_recipe_arguments,
    add_set_argument,
    command_line,
    mark_data_and_weights,
    parse_fields,
)
from keras_vit import recipes
from keras_vit.cli.train import PRESETS, check_preset

# The Recipe fields `pretrain` takes (`--recipe-set FIELD=`): no labels, no smoothing.
PRETRAIN_FIELDS = recipes.pretrain_fields()


def add_pretrain(sub):
    p = sub.add_parser(
        "pretrain",
        help="Self-supervised pre-training by masked patch prediction (default: digits).",
        description="Masked patch prediction (paper section 4.6): 50 % of the patch "
        "embeddings corrupted (80 % [mask], 10 % another patch, 10 % kept), each "
        "corrupted patch's output predicting its 3-bit mean colour (or a 4x4 downsized "
        "patch, or its pixels). Labels are ignored. Writes DIR/model.keras (the "
        "backbone, for `keras-vit finetune --weights DIR/model.keras`), "
        "DIR/pretraining.keras, DIR/metrics.json, DIR/history.csv; run the same command "
        "again to resume after an interruption, or with a larger --epochs to extend the "
        "run; other options into the same folder are refused (--output-dir NEW, or "
        "--overwrite).",
    )
    p.add_argument("--objective", default="mpp", choices=("mpp",),
                   help="mpp: masked patch prediction (default)")
    p.add_argument("--target", default="mean_color",
                   choices=("mean_color", "downsampled", "pixels"),
                   help="mean_color: 3-bit mean colour (512 classes, 8 for grayscale; "
                   "default); downsampled: 4x4 in 3-bit colour; pixels: L2 on the patch")
    p.add_argument("--data", default="digits",
                   help="digits (offline, default), a tensorflow-datasets name such as "
                   "cifar10, or an image folder")
    p.add_argument("--data-dir", default=None, help="tensorflow-datasets data directory")
    p.add_argument("--manual-dir", default=None, help="imagenet2012: folder of its tar files")
    p.add_argument("--output-dir", default=None,
                   help="run folder (default: runs/pretrain-<data>)")
    add_overwrite_argument(p)
    p.add_argument("--model", default=None,
                   help="'digits' (the small default for digits), a variant such as Ti/16")
    p.add_argument("--epochs", type=int, default=None)
    p.add_argument("--batch-size", type=int, default=None)
    p.add_argument("--learning-rate", type=float, default=None, help="peak learning rate")
    p.add_argument("--weight-decay", type=float, default=None)
    p.add_argument("--warmup-epochs", type=float, default=None)
    p.add_argument("--decay", choices=("cosine", "linear"), default=None)
    p.add_argument("--augment", default=None, help="as for `train`")
    p.add_argument("--image-size", type=int, default=None, help="training resolution")
    p.add_argument("--corruption-rate", type=float, default=0.5)
    p.add_argument("--mask-rate", type=float, default=0.8)
    p.add_argument("--random-rate", type=float, default=0.1)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--jit-compile", default=None, choices=("auto", "on", "off"),
                   help="XLA (default: the recipe's, auto = on for GPU/TPU, off on a CPU)")
    add_distribution_arguments(
        p, "data-parallel over all devices with keras.distribution on JAX, "
        "across the processes of a job set by KERAS_DISTRIBUTION_* on every "
        "host (see the README, 'Past one machine')")
    p.add_argument("--no-tensorboard", action="store_true", help="skip TensorBoard logs")
    add_set_argument(p, "any other ViTConfig field")
    add_recipe_arguments(p, PRESETS)
    mark_data_and_weights(p)  # a missing --data: one line before Keras starts
    p.set_defaults(run=_run)


def _run(args):
    import json

    from keras_vit.pretraining import pretrain

    check_preset(args.recipe)
    kwargs = dict(
        data=args.data, objective=args.objective, target=args.target, model=args.model,
        output_dir=args.output_dir, epochs=args.epochs, batch_size=args.batch_size,
        learning_rate=args.learning_rate, weight_decay=args.weight_decay,
        warmup_epochs=args.warmup_epochs, decay=args.decay, augment=args.augment,
        image_size=args.image_size, corruption_rate=args.corruption_rate,
        mask_rate=args.mask_rate, random_rate=args.random_rate, seed=args.seed,
        jit_compile=args.jit_compile, data_dir=args.data_dir, manual_dir=args.manual_dir,
        model_fields=parse_fields(args.set), tensorboard=not args.no_tensorboard,
        overwrite=args.overwrite, command=command_line(args), distribute=args.distribute,
        model_parallel=args.model_parallel,
        gradient_accumulation_steps=args.gradient_accumulation_steps, recipe=args.recipe,
        recipe_set=parse_fields(args.recipe_set, "--recipe-set", PRETRAIN_FIELDS),
    )
    metrics = pretrain(**kwargs)
    print(json.dumps({k: v for k, v in metrics.items() if k != "config"}, indent=2))
    return 0
