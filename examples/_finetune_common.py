"""Shared by cifar10_finetune.py and oxford_pets_finetune.py: the paper's fine-tuning run."""

import argparse
import os
import sys
import tempfile


def parse_args(argv, description, default_steps):
    p = argparse.ArgumentParser(description=description)
    p.add_argument("--weights", default="B/16:augreg_in21k",
                   help="a registered checkpoint name or a local file (.keras, .npz, "
                   ".safetensors) (default: B/16:augreg_in21k)")
    p.add_argument("--image-size", type=int, default=384, help="fine-tuning resolution (384)")
    p.add_argument("--steps", type=int, default=default_steps,
                   help=f"optimizer steps of batch 512 (default: {default_steps})")
    p.add_argument("--batch-size", type=int, default=512, help="global batch (512, the paper's)")
    p.add_argument("--accumulation-steps", type=int, default=8,
                   help="batch 512 as this many smaller ones (8 x 64 fits one 80 GB GPU at 384)")
    p.add_argument("--learning-rate", type=float, default=0.01,
                   help="swept over 0.001-0.03 in the paper (default: 0.01)")
    p.add_argument("--data-dir", default=None, help="tensorflow-datasets data directory")
    p.add_argument("--output-dir", default=None)
    p.add_argument("--smoke", action="store_true",
                   help="a tiny local model for a few steps on tfds mock data (a test)")
    return p.parse_args(argv)


def run(argv, data, description, default_steps, train_size):
    """Fine-tunes `args.weights` on `data` with the paper's recipe; prints test accuracy."""
    args = parse_args(argv, description, default_steps)
    from keras_vit.training import finetune

    epochs = max(1, round(args.steps * args.batch_size / train_size))
    kwargs = dict(
        weights=args.weights, data=data, image_size=args.image_size, epochs=epochs,
        batch_size=args.batch_size, learning_rate=args.learning_rate, decay="cosine",
        gradient_accumulation_steps=args.accumulation_steps or None,
        data_dir=args.data_dir, output_dir=args.output_dir or f"runs/finetune-{data}",
    )
    if args.smoke:
        import keras_vit
        import tensorflow_datasets as tfds

        folder = tempfile.mkdtemp()
        tiny = keras_vit.ViT(image_size=16, patch_size=8, num_channels=3, hidden_size=16,
                             num_layers=1, num_heads=2, mlp_dim=16, num_classes=5)
        tiny.save(os.path.join(folder, "pretrained.keras"))  # stands in for a checkpoint
        kwargs.update(weights=os.path.join(folder, "pretrained.keras"), image_size=32,
                      epochs=1, batch_size=8, gradient_accumulation_steps=2,
                      output_dir=os.path.join(folder, "run"), tensorboard=False, verbose=0,
                      jit_compile=False)  # XLA's compile outweighs a smoke's few steps
        with tfds.testing.mock_data(num_examples=16):
            metrics = finetune(**kwargs)
    else:
        weights = args.weights
        if os.path.splitext(weights)[1] in (".keras", ".npz", ".safetensors") and not (
                os.path.exists(weights)):
            print(f"{data}: no checkpoint at {weights}: pass a registered name such as "
                  "--weights B/16:augreg_in21k (downloaded once into ~/.keras), or put the "
                  f"file (e.g. from `keras-vit convert B/16:augreg_in21k`) at {weights}",
                  file=sys.stderr)
            return 2
        try:
            metrics = finetune(**kwargs)
        except FileNotFoundError as error:  # what to download, where to put it
            print(f"{data}: {error}", file=sys.stderr)
            return 2
    print(f"{data} test accuracy after fine-tuning at {kwargs['image_size']} px: "
          f"{100 * metrics['test_accuracy']:.2f} %")
    return 0
