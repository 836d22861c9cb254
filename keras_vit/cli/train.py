"""`keras-vit train` and `keras-vit finetune`."""

from keras_vit.cli.common import (
    add_checkpoint_arguments,
    add_distribution_arguments,
    add_overwrite_argument,
    add_recipe_arguments,
    add_set_argument,
    command_line,
    mark_data_and_weights,
    parse_fields,
)
from keras_vit import recipes
from keras_vit.errors import ArgumentError


def _recipe_arguments(p, defaults):
    """Options shared by `train` and `finetune`; None takes the recipe's value."""
    p.add_argument("--data", default="digits",
                   help="digits, cifar10, cifar100, oxford_iiit_pet, oxford_flowers102, "
                   "imagenet2012, or an image folder (default: digits)")
    p.add_argument("--data-dir", default=None, help="tensorflow-datasets data directory")
    p.add_argument("--manual-dir", default=None, help="imagenet2012: folder of its tar files")
    p.add_argument("--output-dir", default=None, help=f"run folder (default: {defaults}); "
                   "run again with the same options to resume it, or a larger --epochs "
                   "to extend it")
    add_overwrite_argument(p)
    p.add_argument("--epochs", type=int, default=None)
    p.add_argument("--batch-size", type=int, default=None, help="global batch size")
    p.add_argument("--learning-rate", type=float, default=None, help="peak learning rate")
    p.add_argument("--warmup-epochs", type=float, default=None)
    p.add_argument("--decay", choices=("cosine", "linear"), default=None)
    p.add_argument("--label-smoothing", type=float, default=None)
    p.add_argument("--augment", default=None,
                   help="none, auto, or translate/crop_flip/randaugment/mixup/cutmix "
                   "joined by '+'")
    p.add_argument("--image-size", type=int, default=None, help="training resolution")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--mixed-precision", action="store_true",
                   help="mixed_float16 on a GPU, mixed_bfloat16 on a CPU")
    p.add_argument("--jit-compile", default=None, choices=("auto", "on", "off"),
                   help="XLA (default: the recipe's, auto: see "
                   "keras_vit.training.resolve_jit_compile)")
    add_distribution_arguments(
        p, "data-parallel over all devices (MirroredStrategy on TensorFlow, "
        "keras.distribution.DataParallel on JAX; on JAX across the processes "
        "of a job set by KERAS_DISTRIBUTION_* on every host, see the README)")
    p.add_argument("--no-tensorboard", action="store_true", help="skip TensorBoard logs")
    add_recipe_arguments(p, PRESETS)
    mark_data_and_weights(p)  # a missing --data or --weights: one line before Keras starts


# The presets and the Recipe fields each command takes (`--recipe-set FIELD=`), read
# from keras_vit.recipes, which imports no Keras, so `--help` starts no TensorFlow.
PRESETS = tuple(recipes.RECIPES)
TRAIN_FIELDS = recipes.recipe_fields()
FINETUNE_FIELDS = ("image_size", *recipes.FINETUNE_FIELDS)


def check_preset(name):
    """Refuses a `--recipe` that names no preset, in one line."""
    if name is not None and name not in PRESETS:
        raise ArgumentError(
            f"Received an invalid value for argument `--recipe`, expected one of "
            f"{', '.join(PRESETS)}. Received: --recipe {name!r}")


def _recipe_kwargs(args):
    return dict(
        data=args.data, data_dir=args.data_dir, manual_dir=args.manual_dir,
        output_dir=args.output_dir, epochs=args.epochs, batch_size=args.batch_size,
        learning_rate=args.learning_rate, warmup_epochs=args.warmup_epochs, decay=args.decay,
        label_smoothing=args.label_smoothing, augment=args.augment,
        image_size=args.image_size, seed=args.seed, mixed_precision=args.mixed_precision,
        jit_compile=args.jit_compile, distribute=args.distribute,
        model_parallel=args.model_parallel,
        gradient_accumulation_steps=args.gradient_accumulation_steps,
        tensorboard=not args.no_tensorboard, overwrite=args.overwrite,
        command=command_line(args),
    )


def _run_recipe(args, command, *positional, **extra):
    """`keras-vit train|finetune`: keras_vit.training.<command>, then its metrics."""
    import json

    from keras_vit import training

    check_preset(args.recipe)
    allowed = TRAIN_FIELDS if command == "train" else FINETUNE_FIELDS
    kwargs = dict(_recipe_kwargs(args), **extra, recipe=args.recipe,
                  recipe_set=parse_fields(args.recipe_set, "--recipe-set", allowed))
    metrics = getattr(training, command)(*positional, **kwargs)
    print(json.dumps({k: v for k, v in metrics.items() if k != "config"}, indent=2))
    return 0


def add_train(sub):
    p = sub.add_parser(
        "train",
        help="Train a ViT from scratch (default: digits, offline, ~2 minutes on a CPU).",
        description="Pre-training recipe of the paper: AdamW, warmup then cosine decay, "
        "grad-norm clip 1, label smoothing, dropout, stochastic depth. Writes "
        "DIR/model.keras, DIR/metrics.json, DIR/history.csv and TensorBoard logs in "
        "DIR/logs; run again with the same --output-dir to resume after an interruption.",
    )
    p.add_argument("--model", default=None,
                   help="'digits' (the default for digits), 'small' (the default for a "
                   "folder of images up to 64 px: the digits model with a ~7x7 patch grid), "
                   "or a variant such as Ti/16 (the default otherwise)")
    _recipe_arguments(p, "runs/<data>")
    p.add_argument("--weight-decay", type=float, default=None)
    p.add_argument("--dropout-rate", type=float, default=None)
    p.add_argument("--drop-path-rate", type=float, default=None, help="stochastic depth")
    add_set_argument(p, "any other ViTConfig field")

    def run(args):
        return _run_recipe(args, "train", model=args.model, weight_decay=args.weight_decay,
                           dropout_rate=args.dropout_rate, drop_path_rate=args.drop_path_rate,
                           model_fields=parse_fields(args.set))

    p.set_defaults(run=run)


def add_finetune(sub):
    p = sub.add_parser(
        "finetune",
        help="Fine-tune a pre-trained ViT (checkpoint name or file) on a data set.",
        description="Fine-tuning recipe of the paper: SGD momentum 0.9, cosine decay, "
        "grad-norm clip 1, no weight decay; a zero head for the data set's classes "
        "and, with --image-size, position embeddings resampled to the new grid.",
    )
    p.add_argument("--weights", required=True,
                   help="a .keras model, a checkpoint file (.npz, safetensors) or a "
                   "registered name such as B/16:augreg_in21k")
    _recipe_arguments(p, "runs/finetune-<data>")
    add_checkpoint_arguments(p)
    # The fine-tuning kit (keras_vit.training.finetune_kit).
    p.add_argument("--layer-decay", type=float, default=None,
                   help="layer-wise learning-rate decay: block i of L learns at "
                   "rate x decay^(L - i), e.g. 0.75 (default: off)")
    p.add_argument("--ema", type=float, nargs="?", const=0.9999, default=None,
                   metavar="MOMENTUM", help="EMA of the weights, evaluated and saved "
                   "(momentum default 0.9999)")
    p.add_argument("--lora-rank", type=int, default=None,
                   help="LoRA of this rank on attention and MLP projections; all else "
                   "frozen but the head; saved merged")
    p.add_argument("--remat", action="store_true",
                   help="recompute activations in the backward pass (keras.RematScope)")

    def run(args):
        return _run_recipe(args, "finetune", args.weights, layer_decay=args.layer_decay,
                           ema=args.ema, lora_rank=args.lora_rank, remat=args.remat,
                           variant=args.variant, model_fields=parse_fields(args.set))

    p.set_defaults(run=run)
