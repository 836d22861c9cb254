"""Fine-tunes a pre-trained ViT on Oxford-IIIT Pets at 384 px with the paper's recipe.

The recipe (ViT paper, App. B.1.1): SGD momentum 0.9, batch 512 (here 8
accumulated batches of 64), cosine decay, grad-norm clip 1, no weight decay,
a new zero-initialised head and the position embeddings resized in 2-D to the
384 px grid; Pets fine-tunes for 500 steps (the paper's Table 4).

Full run (one GPU; weights downloaded once; oxford_iiit_pet prepared by tfds):

    python examples/oxford_pets_finetune.py --weights B/16:augreg_in21k

Expected: about 94 % test accuracy (ViT paper, Table 5: ViT-B/16 pre-trained
on ImageNet-21k: about 94 %; Table 2: ViT-L/16 on JFT-300M
97.32 %). Cost: 500 steps of 512 images at 384 px through a B/16, about
8.5e16 FLOPs: about 6 minutes of training on one H200 at the ~750 images/s
estimated for B/16 at 384 px from the training throughput measured there at 224
px (benchmarks/RESULTS.md), plus data preparation and evaluation. The full run
itself was not made here.

    python examples/oxford_pets_finetune.py --smoke   # seconds, tiny model, mock data
"""

import sys

from _finetune_common import run


def main(argv=None):
    return run(argv, "oxford_iiit_pet", __doc__.split("\n\n")[0], default_steps=500,
               train_size=3_680)


if __name__ == "__main__":
    sys.exit(main())
