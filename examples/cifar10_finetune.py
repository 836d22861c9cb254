"""Fine-tunes a pre-trained ViT on CIFAR-10 at 384 px with the paper's recipe.

The recipe (ViT paper, App. B.1.1): SGD momentum 0.9, batch 512 (here 8
accumulated batches of 64), cosine decay, grad-norm clip 1, no weight decay,
a new zero-initialised head and the position embeddings resized in 2-D to the
384 px grid; CIFAR-10 fine-tunes for 10,000 steps (vit_jax's
configs/common.py preset; the paper's Table 4 lists 10k for CIFAR).

Full run (one 80 GB GPU; weights downloaded once; CIFAR-10 prepared by tfds):

    python examples/cifar10_finetune.py --weights B/16:augreg_in21k

Expected: about 99 % test accuracy (ViT paper, Table 5: ViT-B/16 pre-trained
on ImageNet-21k: about 99 %; Table 2: ViT-L/16 99.42 %, ViT-H/14
99.50 % from JFT-300M). Cost: 10,000 steps of 512 images at 384 px through a
B/16 is about 5.1e9 images x 55 GFLOPs x 3 ~ 8.4e17 FLOPs, roughly 8-10 GPU
hours on one A100/H100 at typical utilisation (an estimate, not measured here).

    python examples/cifar10_finetune.py --smoke   # seconds, tiny model, mock data
"""

import sys

from _finetune_common import run


def main(argv=None):
    return run(argv, "cifar10", __doc__.split("\n\n")[0], default_steps=10_000,
               train_size=50_000)


if __name__ == "__main__":
    sys.exit(main())
