"""Training recipes as data: the `Recipe` record, its presets by name (`RECIPES`) and
the defaults each command takes. This module imports no Keras or TensorFlow, so the
command line (`keras-vit train --help`, `--recipe NAME`) reads the presets from here,
one definition for the library and the CLI; `keras_vit.training.recipes` builds the
optimizers and schedules a recipe names and re-exports everything here.
"""

import dataclasses

from keras_vit.errors import ArgumentError


@dataclasses.dataclass(frozen=True)
class Recipe:
    """One training recipe: every value a run of `train`, `finetune` or `pretrain` takes
    from it, in one frozen record. The presets below are looked up by name with
    `get_recipe`; change a field with `recipe.with_(epochs=20)` (or
    `dataclasses.replace`), or on the command line with `--recipe NAME` and
    `--recipe-set FIELD=VALUE` (the flags --epochs, --batch-size, ... are aliases).

    Fields: model ("digits", "small", a variant such as "Ti/16", or None: the
    checkpoint's), image_size (None: the data's or the model's), epochs, batch_size
    (global), learning_rate (peak), weight_decay (kernels only), warmup_epochs,
    decay ("cosine" or "linear"), label_smoothing, dropout_rate, drop_path_rate,
    augment (see `keras_vit.data.load_dataset`), and the optimizer (`make_optimizer`):
    optimizer ("adamw", the paper's pre-training one, or "sgd", its fine-tuning one),
    momentum (SGD's momentum, AdamW's beta_1: 0.9 in both of the paper's recipes),
    global_clipnorm (1 in both; None: no clipping), gradient_accumulation_steps (None:
    one batch per update) and jit_compile ("auto": `keras_vit.training.resolve_jit_compile`,
    or True/False).

    Example:

    >>> from keras_vit.recipes import get_recipe
    >>> get_recipe("digits").with_(epochs=20).epochs
    20
    """

    model: object = None
    image_size: object = None
    epochs: int = 10
    batch_size: int = 512
    learning_rate: float = 0.01
    weight_decay: float = 0.0
    warmup_epochs: float = 0
    decay: str = "cosine"
    label_smoothing: float = 0.0
    dropout_rate: float = 0.0
    drop_path_rate: float = 0.0
    augment: str = "auto"
    optimizer: str = "adamw"  # or "sgd"
    momentum: float = 0.9
    global_clipnorm: object = 1.0
    gradient_accumulation_steps: object = None
    jit_compile: object = "auto"

    def with_(self, **fields):
        """A copy with `fields` replaced; an unknown field is refused by name."""
        check_fields(fields, recipe_fields(), "Recipe")
        return dataclasses.replace(self, **fields)

    def to_dict(self, fields=None):
        """The recipe as a dict (the run folder records it), of `fields` only if given."""
        values = dataclasses.asdict(self)
        return values if fields is None else {k: values[k] for k in fields}


def recipe_fields():
    """The names of `Recipe`'s fields, in order."""
    return tuple(f.name for f in dataclasses.fields(Recipe))


def pretrain_fields():
    """The fields `pretrain` takes from a recipe: all but label_smoothing (no labels)."""
    return tuple(f for f in recipe_fields() if f != "label_smoothing")


def check_fields(fields, allowed, what):
    """Refuses a name in `fields` that is not in `allowed`, naming both (one line)."""
    unknown = sorted(set(fields) - set(allowed))
    if unknown:
        raise ArgumentError(
            f"Received an unknown field for {what}, expected one of {', '.join(allowed)}. "
            f"Received: {unknown[0]!r}")


# `keras-vit train` with no arguments: a 4-layer, width-64 ViT on the 8x8
# digits upscaled (bilinear) to 16x16 and cut into 4x4 patches (16 tokens +
# class token). Upscaling makes neighbouring patches share pixels, an overlap
# that measured 96.4 % -> 98.1 % against 2x2 patches of the 8x8 images at the
# same cost. Chosen by measurement on a 2-core CPU (README, "Training on digits").
DIGITS_MODEL = dict(
    patch_size=4, hidden_size=64, num_layers=4, num_heads=4, mlp_dim=128,
)
DIGITS = Recipe(
    model="digits", image_size=16, epochs=60, batch_size=32, learning_rate=2e-3,
    weight_decay=0.05, warmup_epochs=3, decay="cosine", label_smoothing=0.1,
    dropout_rate=0.0, drop_path_rate=0.0, augment="auto",
)
# `keras-vit train --data FOLDER` of small images (<= 64 px) with no --model or
# --image-size: the digits model at the images' own size, cut into a grid of about
# 7x7 to 8x8 patches (`small_images_model`). Measured in the README ("Your own images").
SMALL_IMAGES = Recipe(
    model="small", image_size=None, epochs=30, batch_size=64, learning_rate=2e-3,
    weight_decay=0.05, warmup_epochs=3, decay="cosine", label_smoothing=0.1,
    dropout_rate=0.0, drop_path_rate=0.0, augment="translate",
)
# From scratch on anything else: the paper's optimiser at a small-data scale.
FROM_SCRATCH = Recipe(
    model="Ti/16", image_size=None, epochs=100, batch_size=128, learning_rate=1e-3,
    weight_decay=0.05, warmup_epochs=5, decay="cosine", label_smoothing=0.1,
    dropout_rate=0.0, drop_path_rate=0.1, augment="auto",
)
# Paper App. B.1.1: SGD momentum 0.9, batch 512, cosine decay, no weight decay,
# clip 1; the learning rate is swept over {0.001, 0.003, 0.01, 0.03}.
FINETUNE = Recipe(
    model=None, image_size=None, epochs=10, batch_size=512, learning_rate=0.01,
    weight_decay=0.0, warmup_epochs=1, decay="cosine", label_smoothing=0.0,
    augment="auto", optimizer="sgd", momentum=0.9, global_clipnorm=1.0,
)
# The fields fine-tuning takes from a recipe (the model and its resolution come from
# the weights and `image_size`; dropout stays as saved).
FINETUNE_FIELDS = ("epochs", "batch_size", "learning_rate", "warmup_epochs", "decay",
                   "label_smoothing", "augment", "weight_decay", "optimizer", "momentum",
                   "global_clipnorm", "gradient_accumulation_steps", "jit_compile")
# The optimizer fields a run folder written before the recipe held them (issue 20) did
# not record, and the values the command then implied: train and pretrain used
# `pretraining_optimizer` (AdamW, b1 0.9, clip 1), finetune `finetuning_optimizer`
# (SGD, momentum 0.9, clip 1, no weight decay). `keras_vit.training.runs` compares a
# recorded configuration that lacks them as if it held these.
IMPLIED_BEFORE_RECIPE = {
    "train": dict(optimizer="adamw", momentum=0.9, global_clipnorm=1.0),
    "pretrain": dict(optimizer="adamw", momentum=0.9, global_clipnorm=1.0),
    "finetune": dict(optimizer="sgd", momentum=0.9, global_clipnorm=1.0, weight_decay=0.0),
}
OPTIMIZERS = ("adamw", "sgd")

# Presets by name. The default per data source (`default_recipe`): `train` on "digits"
# takes "digits", on a folder of images up to 64 px (no model or image size given)
# "small_images", on anything else "from_scratch"; `finetune` takes "finetune" (its
# steps fitted to the data, `finetune_plan`); `pretrain` (MPP) takes "digits" on digits
# and "mpp" otherwise.
# VTAB-1k (paper App. D.3 / evaluation/vtab.py): 2,500 steps at batch 512 on the 800+200
# training images, so "epochs" here is the step count over about 1,000 images.
VTAB = FINETUNE.with_(epochs=1280, batch_size=512, learning_rate=0.01, warmup_epochs=0)
# Masked patch prediction (paper 4.6 / App. B.1.2) at this project's scale: Adam-style
# (AdamW) pre-training as from scratch, no labels so no label smoothing.
MPP = FROM_SCRATCH.with_(label_smoothing=0.0)
RECIPES = {"digits": DIGITS, "small_images": SMALL_IMAGES, "from_scratch": FROM_SCRATCH,
           "finetune": FINETUNE, "vtab": VTAB, "mpp": MPP}


def default_recipe(data, small_folder=False, command="train"):
    """The preset's name a `command` ("train", "pretrain" or "finetune") on `data`
    takes when none is given: "finetune" for `finetune`; else "digits" on the embedded
    digits; for `pretrain` "mpp" on anything else; for `train` "small_images" on a
    folder of images up to 64 px with no model or image size given (`small_folder`),
    "from_scratch" on anything else."""
    if command == "finetune":
        return "finetune"
    if data == "digits":
        return "digits"
    if command == "pretrain":
        return "mpp"
    return "small_images" if small_folder else "from_scratch"

# The presets as dicts, as runs record them (kept for code written against them).
DIGITS_RECIPE = DIGITS.to_dict()
SMALL_IMAGES_RECIPE = SMALL_IMAGES.to_dict()
PRETRAIN_RECIPE = FROM_SCRATCH.to_dict()
FINETUNE_RECIPE = FINETUNE.to_dict(FINETUNE_FIELDS)


# Fine-tuning by optimizer steps (paper App. B.1.1): 500 steps for Oxford Pets (3,680
# images), 10,000 for CIFAR-10 (50,000), at batch 512, the rate swept over
# {0.001, 0.003, 0.01, 0.03}. That many steps of 512 would be hundreds of passes over a
# small data set and its batch is larger than many of them, so a set of fewer than 20
# batches of 512 is fine-tuned as small data: a batch of about n / 64 (a power of two,
# 16..512), SMALL_DATA_EPOCHS passes (at least 500 updates) at the top of the paper's
# swept rates, and, for images of at most 64 px, whole-pixel shifts ("translate", as
# `train`'s small-images recipe) instead of crops and flips (which turn a 2 into an S).
# Measured on 4,000 MNIST PNGs (28 px, held-out 1,000) from the shipped digits model,
# seed 0, a loaded 2-core AMD EPYC: 10 epochs at batch 512, lr 0.01 (the paper's numbers
# read as epochs) 59.8 %; 500 updates at lr 0.01 63.6 %; 45 passes at batch 32, lr 0.03,
# translate 96.8 % in 53 s, where training from scratch (`keras-vit train`) gave 96.1 %
# in 84 s in the same load.
PAPER_FINETUNE_BATCH = 512
PAPER_FINETUNE_STEPS = (500, 10_000)
SMALL_DATA_EPOCHS = 45
SMALL_DATA_LEARNING_RATE = 0.03
SMALL_IMAGE_SIDE = 64


def finetune_plan(num_examples, image_size=None):
    """The fine-tuning recipe's epochs, batch_size and learning_rate (and augment, for
    small images) for a training set of `num_examples` images of `image_size` (H, W)
    (None: unknown), and one line saying why.

    Returns:
        (dict(epochs=, batch_size=, learning_rate=[, augment=]), reason).

    >>> finetune_plan(50_000)[0]
    {'epochs': 103, 'batch_size': 512, 'learning_rate': 0.01}
    """
    low, high = PAPER_FINETUNE_STEPS
    plan = {}
    if num_examples >= 20 * PAPER_FINETUNE_BATCH:
        batch, rate = PAPER_FINETUNE_BATCH, 0.01
        steps = min(high, round(num_examples / 5))  # CIFAR-10: 10,000
        why = "the paper's batch and step count (App. B.1.1)"
    else:
        batch, rate = 16, SMALL_DATA_LEARNING_RATE
        while batch * 2 <= min(PAPER_FINETUNE_BATCH, num_examples / 64):
            batch *= 2
        steps = max(low, SMALL_DATA_EPOCHS * -(-num_examples // batch))
        why = (f"fewer than {20 * PAPER_FINETUNE_BATCH} images: a small batch, "
               f"{SMALL_DATA_EPOCHS} passes, the top of the paper's swept rates")
        if image_size is not None and max(image_size) <= SMALL_IMAGE_SIDE:
            plan["augment"] = "translate"
            why += f", shifts for images of at most {SMALL_IMAGE_SIDE} px"
    per_epoch = -(-num_examples // batch)
    epochs = -(-steps // per_epoch)
    plan = dict(epochs=epochs, batch_size=batch, learning_rate=rate, **plan)
    return plan, (f"{epochs * per_epoch} steps at batch {batch}, lr {rate:g}, on "
                  f"{num_examples} images: {why}")


def get_recipe(recipe):
    """A `Recipe` from itself or a preset's name in `RECIPES`; else one line naming it."""
    if isinstance(recipe, Recipe):
        return recipe
    if isinstance(recipe, str) and recipe in RECIPES:
        return RECIPES[recipe]
    raise ArgumentError(
        f"Received an invalid value for argument `recipe`, expected a Recipe or one of "
        f"{', '.join(RECIPES)}. Received: recipe={recipe!r}")


def small_images_model(image_size):
    """`DIGITS_MODEL` with the patch that cuts `image_size` into about 7-8 patches a side
    (the largest patch dividing both sides that is at most 1/7 of the shorter one)."""
    height, width = (image_size, image_size) if isinstance(image_size, int) else image_size
    most = max(1, min(height, width) // 7)
    patch = max(p for p in range(1, most + 1) if height % p == 0 and width % p == 0)
    return dict(DIGITS_MODEL, patch_size=patch)
