"""A small ViT trained from scratch on CIFAR-10 (patch 4 on 32x32 images).

Full run (one GPU, a few hours; CIFAR-10 prepared by tensorflow-datasets):

    python examples/cifar10_from_scratch.py --epochs 200

Expected: about 90-91 % test accuracy. Source: omihub777/ViT-CIFAR (README,
"Results": 91.01 % on CIFAR-10 with 7 layers, hidden 384, MLP 384, 12 heads,
patch 4 (an 8x8 grid), 200 epochs, batch 128, Adam lr 1e-3 -> 1e-5 cosine, 5
warmup epochs, weight decay 5e-5, AutoAugment, label smoothing 0.1). This
script uses that model and schedule with this library's pre-training recipe
(AdamW, weight decay 0.05 on kernels, grad clip 1) and Keras core's
augmentations (random crop + flip, RandAugment, MixUp, label smoothing 0.1,
stochastic depth 0.1) in place of AutoAugment; its own full-run figure is
not measured here (no GPU, no CIFAR-10 on these machines).

    python examples/cifar10_from_scratch.py --smoke   # seconds, on tfds mock data
"""

import argparse
import sys
import tempfile

# The model of the cited recipe: 7 x 384, MLP 384, 12 heads, 4x4 patches.
MODEL = dict(patch_size=4, hidden_size=384, num_layers=7, num_heads=12, mlp_dim=384)
SMOKE_MODEL = dict(patch_size=8, hidden_size=16, num_layers=1, num_heads=2, mlp_dim=16)


def parse_args(argv):
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--epochs", type=int, default=200)
    p.add_argument("--batch-size", type=int, default=128)
    p.add_argument("--learning-rate", type=float, default=1e-3)
    p.add_argument("--augment", default="crop_flip+randaugment+mixup",
                   help="augmentations joined by + (default: crop_flip+randaugment+mixup)")
    p.add_argument("--data-dir", default=None, help="tensorflow-datasets data directory")
    p.add_argument("--output-dir", default="runs/cifar10_from_scratch")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--smoke", action="store_true",
                   help="a tiny model for a few steps on tfds mock data (a test)")
    return p.parse_args(argv)


def main(argv=None):
    args = parse_args(argv)
    from keras_vit.training import train

    kwargs = dict(
        data="cifar10", model=dict(MODEL), epochs=args.epochs, batch_size=args.batch_size,
        learning_rate=args.learning_rate, weight_decay=0.05, warmup_epochs=5, decay="cosine",
        label_smoothing=0.1, drop_path_rate=0.1, augment=args.augment, seed=args.seed,
        data_dir=args.data_dir, output_dir=args.output_dir,
    )
    if args.smoke:
        import tensorflow_datasets as tfds

        kwargs.update(model=dict(SMOKE_MODEL), epochs=1, batch_size=8, warmup_epochs=0,
                      output_dir=tempfile.mkdtemp(), tensorboard=False, verbose=0,
                      jit_compile=False)  # XLA's compile outweighs a smoke's few steps
        with tfds.testing.mock_data(num_examples=16):
            metrics = train(**kwargs)
    else:
        try:
            metrics = train(**kwargs)
        except FileNotFoundError as error:  # what to download, where to put it
            print(f"cifar10_from_scratch: {error}", file=sys.stderr)
            return 2
    print(f"CIFAR-10 test accuracy: {100 * metrics['test_accuracy']:.2f} %")
    return 0


if __name__ == "__main__":
    sys.exit(main())
