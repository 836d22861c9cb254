"""The paper's fine-tuning story on the offline digits: low resolution, then higher.

Section 3.2 of the ViT paper: pre-train at a low resolution, then fine-tune at
a higher one with the pre-trained head replaced by a zero-initialised one and
the position embeddings interpolated in 2-D to the longer patch sequence (the
patch size stays, so the sequence grows). Here: a tiny ViT (4x4 patches)
trained from scratch (AdamW, `_digits.fit`) on 8x8 digits upscaled to 16x16 (a
4x4 grid), then fine-tuned at 32x32 (an 8x8 grid) with the paper's fine-tuning
recipe (App. B.1.1): SGD momentum 0.9, linear warmup then cosine decay, global
grad-norm clip 1, no weight decay, zero head, resized position embeddings.

Reported per seed: the test accuracy at the low resolution; the same model run
at the high resolution with only its position embeddings resized (no
fine-tuning); after fine-tuning at the high resolution; and a control, the
same fine-tuning (zero head, same recipe and steps) at the low resolution, so
that the gain of the higher resolution is told apart from that of training
longer.

The upscaled digits hold no more information at 32 px than at 16 px (8x8
originals): what the higher resolution changes is the tokenisation (a 4x4
patch covers 2x2 original pixels at 16 px, one at 32 px; 16 tokens become 64).

The fine-tuning learning rate and length were chosen on a validation split of
the training set (seed 0; the sweep is in results/READING.md), not on the test
images.

    python examples/transfer_higher_resolution.py --output results/transfer_higher_resolution.md
    python examples/transfer_higher_resolution.py --smoke   # seconds
"""

import argparse
import os
import platform
import sys
import time


def parse_args(argv):
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--epochs", type=int, default=30, help="low-resolution training epochs (30)")
    p.add_argument("--finetune-epochs", type=int, default=20, help="fine-tuning epochs (20)")
    p.add_argument("--finetune-lr", type=float, default=0.03,
                   help="fine-tuning peak learning rate, SGD (0.03)")
    p.add_argument("--warmup-epochs", type=float, default=1.0,
                   help="fine-tuning linear warmup, in epochs (1)")
    p.add_argument("--low", type=int, default=16, help="training resolution (16)")
    p.add_argument("--high", type=int, default=32, help="fine-tuning resolution (32)")
    p.add_argument("--seeds", default="0,1,2")
    p.add_argument("--output", default=None, help="also write the markdown table here")
    p.add_argument("--smoke", action="store_true",
                   help="one seed, 128 training images, 2 + 1 epochs, eager (a test)")
    return p.parse_args(argv)


ROWS = ("low", "resized only", "fine-tuned", "control")


def finetune(model, x, y, epochs, learning_rate, warmup_epochs, seed, batch_size=64,
             run_eagerly=False):
    """The paper's fine-tuning recipe: SGD momentum 0.9, warmup + cosine, clip 1, no
    weight decay. Returns the final training loss."""
    import keras
    import numpy as np

    from keras_vit.training import finetuning_optimizer, make_schedule

    keras.utils.set_random_seed(seed)
    steps = int(np.ceil(len(x) / batch_size))
    model.compile(
        optimizer=finetuning_optimizer(
            make_schedule(learning_rate, epochs, steps, warmup_epochs=warmup_epochs)),
        loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True),
        jit_compile=False,  # XLA's compile time outweighs its speed-up in runs this short
        run_eagerly=run_eagerly,  # the smoke run: tracing would cost more than its steps
    )
    history = model.fit(x, y, epochs=epochs, batch_size=batch_size, verbose=0, shuffle=True)
    return history.history["loss"][-1]


def run_seed(seed, args, data):
    """{row: test accuracy} for one seed (the rows of `ROWS`)."""
    import keras_vit
    import _digits

    (x_lo, x_hi, y), (x_lo_test, x_hi_test, y_test) = data
    model = _digits.tiny_vit(seed, image_size=args.low)
    _digits.fit(model, x_lo, y, args.epochs, seed, run_eagerly=args.smoke)
    out = {"low": _digits.accuracy(model, x_lo_test, y_test)}
    high = keras_vit.resize_position_embeddings(model, args.high)  # the trained weights
    high.compile(jit_compile=False, run_eagerly=args.smoke)  # one predict: XLA would not pay
    out["resized only"] = _digits.accuracy(high, x_hi_test, y_test)
    recipe = dict(epochs=args.finetune_epochs, learning_rate=args.finetune_lr,
                  warmup_epochs=args.warmup_epochs, seed=seed, run_eagerly=args.smoke)
    high = keras_vit.replace_head(high, 10)  # zero head, as the paper
    loss_hi = finetune(high, x_hi, y, **recipe)
    out["fine-tuned"] = _digits.accuracy(high, x_hi_test, y_test)
    same = keras_vit.replace_head(model, 10)  # control: the same recipe, no resolution change
    loss_lo = finetune(same, x_lo, y, **recipe)
    out["control"] = _digits.accuracy(same, x_lo_test, y_test)
    print(f"seed {seed}: " + ", ".join(f"{k} {100 * v:.2f} %" for k, v in out.items())
          + f" (last fine-tuning epoch's training loss {loss_hi:.3f} at {args.high} px, "
          f"{loss_lo:.3f} at {args.low} px)", flush=True)
    return out


def machine():
    cpu = platform.processor() or platform.machine()
    try:
        with open("/proc/cpuinfo") as f:
            cpu = next(l.split(":", 1)[1].strip() for l in f if l.startswith("model name"))
    except (OSError, StopIteration):
        pass
    load = os.getloadavg()[0] if hasattr(os, "getloadavg") else float("nan")
    return f"{cpu}, {os.cpu_count()} cores, 1-minute load average {load:.1f} at the start"


def main(argv=None):
    args = parse_args(argv)
    import _digits

    seeds = [int(s) for s in args.seeds.split(",")]
    (x_lo, y), (x_lo_test, y_test) = _digits.digits(args.low)
    (x_hi, _), (x_hi_test, _) = _digits.digits(args.high)
    if args.smoke:
        seeds, args.epochs, args.finetune_epochs = [0], 2, 1
        x_lo, x_hi, y = x_lo[:128], x_hi[:128], y[:128]
    data = (x_lo, x_hi, y), (x_lo_test, x_hi_test, y_test)
    start, machine_at_start = time.perf_counter(), machine()
    per_seed = [run_seed(seed, args, data) for seed in seeds]
    minutes = (time.perf_counter() - start) / 60
    command = "python examples/transfer_higher_resolution.py " + " ".join(
        sys.argv[1:] if argv is None else argv)
    lo, hi = f"{args.low} px", f"{args.high} px"
    labels = {
        "low": (f"trained at {lo}", args.low),
        "resized only": ("same, position embeddings resized, no fine-tuning", args.high),
        "fine-tuned": (f"fine-tuned at {hi} (zero head, resized pos. emb.)", args.high),
        "control": (f"control: the same fine-tuning at {lo} (zero head)", args.low),
    }
    lines = [
        f"Command: `{command.strip()}`  ",
        f"Seeds: {', '.join(map(str, seeds))}. Tiny ViT {_digits.TINY} trained {args.epochs} "
        f"epochs at {lo} (AdamW, warmup + cosine, label smoothing 0.1), then fine-tuned "
        f"{args.finetune_epochs} epochs (SGD momentum 0.9, lr {args.finetune_lr}, "
        f"{args.warmup_epochs:g} epoch warmup + cosine, clip 1, no weight decay, batch 64, "
        f"{len(y)} training images). Test accuracy (%) on the {len(y_test)} held-out digits.  ",
        f"Time: {minutes:.1f} min for all seeds on {machine_at_start} (a load above 0 "
        f"means other processes shared the machine). Mean ± std over seeds (ddof 1).",
        "",
        "| model | px | tokens | " + " | ".join(f"seed {s}" for s in seeds) + " | mean ± std |",
        "|---|---:|---:|" + "---:|" * len(seeds) + "---:|",
    ]
    for row in ROWS:
        label, px = labels[row]
        values = [r[row] for r in per_seed]
        lines.append(f"| {label} | {px} | {(px // _digits.TINY['patch_size']) ** 2} | "
                     + " | ".join(f"{100 * v:.2f}" for v in values)
                     + f" | {_digits.mean_std(values)} |")
    _digits.emit("\n".join(lines) + "\n", args.output)
    return 0


if __name__ == "__main__":
    sys.exit(main())
