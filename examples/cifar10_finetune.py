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
B/16 is 5.1e6 images x 111 GFLOPs (55.5 GMACs) x 3 ~ 1.7e18 FLOPs: about 2 hours
on one H200, estimated from keras_vit's B/16 bf16 training measured there at 224
px (2383 images/s, 32 % of the bf16 matmul peak; benchmarks/RESULTS.md) scaled
by the FLOPs at 384 (3.16x): about 750 images/s. The full run itself was not
made here.

    python examples/cifar10_finetune.py --smoke   # seconds, tiny model, mock data
"""

import sys

from _finetune_common import run


def main(argv=None):
    return run(argv, "cifar10", __doc__.split("\n\n")[0], default_steps=10_000,
               train_size=50_000)


if __name__ == "__main__":
    sys.exit(main())
