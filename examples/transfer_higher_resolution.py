"""The paper's fine-tuning story on the offline digits: low resolution, then higher.

Section 3.2 of the ViT paper: pre-train at a low resolution, then fine-tune at
a higher one with the pre-trained head replaced by a zero-initialised one and
the position embeddings interpolated in 2-D to the longer patch sequence (the
patch size stays, so the sequence grows). Here: a tiny ViT (4x4 patches)
trained from scratch on 8x8 digits upscaled to 16x16 (a 4x4 grid), then
fine-tuned with SGD momentum 0.9, cosine decay, clip 1 (the paper's
fine-tuning recipe) at 32x32 (an 8x8 grid). Reports the test accuracy at
both resolutions, and the low-resolution model run at 32 px with only its
position embeddings resized (no fine-tuning).

    python examples/transfer_higher_resolution.py --output results/transfer_higher_resolution.md
    python examples/transfer_higher_resolution.py --smoke   # seconds
"""

import argparse
import sys
import time


def parse_args(argv):
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--epochs", type=int, default=30, help="low-resolution training epochs")
    p.add_argument("--finetune-epochs", type=int, default=5)
    p.add_argument("--low", type=int, default=16, help="training resolution (16)")
    p.add_argument("--high", type=int, default=32, help="fine-tuning resolution (32)")
    p.add_argument("--seeds", default="0,1,2")
    p.add_argument("--output", default=None, help="also write the markdown table here")
    p.add_argument("--smoke", action="store_true", help="1 epoch each, one seed (a test)")
    return p.parse_args(argv)


def main(argv=None):
    args = parse_args(argv)
    import keras
    import numpy as np

    import _digits
    import keras_vit
    from keras_vit.training import finetuning_optimizer, make_schedule

    seeds = [int(s) for s in args.seeds.split(",")]
    epochs, ft_epochs = args.epochs, args.finetune_epochs
    (x_lo, y), (x_lo_test, y_test) = _digits.digits(args.low)
    (x_hi, _), (x_hi_test, _) = _digits.digits(args.high)
    if args.smoke:
        seeds, epochs, ft_epochs = [0], 1, 1
        x_lo, x_hi, y = x_lo[:128], x_hi[:128], y[:128]
    start = time.perf_counter()
    results = {"low": [], "resized only": [], "fine-tuned": []}
    for seed in seeds:
        model = _digits.tiny_vit(seed, image_size=args.low)
        _digits.fit(model, x_lo, y, epochs, seed)
        results["low"].append(_digits.accuracy(model, x_lo_test, y_test))
        high = keras_vit.resize_position_embeddings(model, args.high)
        results["resized only"].append(_digits.accuracy(high, x_hi_test, y_test))
        high = keras_vit.replace_head(high, 10)  # zero head, as the paper
        keras.utils.set_random_seed(seed)
        steps = int(np.ceil(len(x_hi) / 64))
        high.compile(
            optimizer=finetuning_optimizer(make_schedule(0.01, ft_epochs, steps)),
            loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True),
            jit_compile=False,
        )
        high.fit(x_hi, y, epochs=ft_epochs, batch_size=64, verbose=0)
        results["fine-tuned"].append(_digits.accuracy(high, x_hi_test, y_test))
        print(f"seed {seed}: " + ", ".join(f"{k} {100 * v[-1]:.2f} %"
                                             for k, v in results.items()), flush=True)
    command = "python examples/transfer_higher_resolution.py " + " ".join(argv or sys.argv[1:])
    lines = [
        f"Command: `{command.strip()}`  ",
        f"Seeds: {', '.join(map(str, seeds))}; {epochs} epochs at {args.low} px, "
        f"{ft_epochs} fine-tuning epochs at {args.high} px; tiny ViT {_digits.TINY}; test "
        f"accuracy (%) on the 360 held-out digits, mean ± std; "
        f"{(time.perf_counter() - start) / 60:.1f} min.",
        "",
        "| model | resolution | tokens | test accuracy (%) |",
        "|---|---:|---:|---:|",
        f"| trained at {args.low} px | {args.low} | {(args.low // 4) ** 2} | "
        f"{_digits.mean_std(results['low'])} |",
        f"| same, position embeddings resized, no fine-tuning | {args.high} | "
        f"{(args.high // 4) ** 2} | {_digits.mean_std(results['resized only'])} |",
        f"| fine-tuned at {args.high} px (zero head, resized pos. emb.) | {args.high} | "
        f"{(args.high // 4) ** 2} | {_digits.mean_std(results['fine-tuned'])} |",
    ]
    table = "\n".join(lines) + "\n"
    _digits.emit(table, args.output)
    return 0


if __name__ == "__main__":
    sys.exit(main())
