"""The paper's position-embedding ablation at small scale, on the offline digits.

The seed's table ("Positional Embedding", ViT paper Table 8: ViT-B/16 trained
on ImageNet, 5-shot linear accuracy): no position embedding 0.614; 1-D, 2-D
and relative, at the input ("stem"), added in every layer, or in every layer
with one shared table, all within 0.640-0.643. Here: a tiny ViT (2 layers,
width 32, 4x4 patches on 16x16 digits, 16 tokens) trained from scratch per
cell and seed, scored by test accuracy on the 360 held-out digits.

    python examples/position_embedding_ablation.py --epochs 30 --seeds 0,1,2 \\
        --output results/position_embedding_ablation.md
    python examples/position_embedding_ablation.py --smoke   # seconds
"""

import argparse
import functools
import sys
import time

# (row, column) -> (position_embedding, position_embedding_placement); the
# paper's cells (its N/A cells left out).
CELLS = {
    ("none", "stem"): ("none", "stem"),
    ("1-D", "stem"): ("learned", "stem"),
    ("1-D", "every layer"): ("learned", "every_layer"),
    ("1-D", "every layer, shared"): ("learned", "every_layer_shared"),
    ("2-D", "stem"): ("learned_2d", "stem"),
    ("2-D", "every layer"): ("learned_2d", "every_layer"),
    ("2-D", "every layer, shared"): ("learned_2d", "every_layer_shared"),
    ("relative", "stem"): ("relative", "stem"),
}
PAPER = {("none", "stem"): 0.61382, ("1-D", "stem"): 0.64206, ("1-D", "every layer"): 0.63964,
         ("1-D", "every layer, shared"): 0.64292, ("2-D", "stem"): 0.64001,
         ("2-D", "every layer"): 0.64046, ("2-D", "every layer, shared"): 0.64022,
         ("relative", "stem"): 0.64032}
COLUMNS = ("stem", "every layer", "every layer, shared")
ROWS = ("none", "1-D", "2-D", "relative")


def run_seed(seed, cells, epochs, smoke):
    """Test accuracy of every cell for one seed."""
    import _digits

    (x, y), (x_test, y_test) = _digits.digits(16)
    if smoke:
        x, y = x[:128], y[:128]
    scores = {}
    for cell, (kind, placement) in cells.items():
        model = _digits.tiny_vit(seed, position_embedding=kind,
                                 position_embedding_placement=placement)
        _digits.fit(model, x, y, epochs, seed, run_eagerly=smoke)  # no tracing in a smoke
        scores[cell] = _digits.accuracy(model, x_test, y_test)
        print(f"{cell[0]:>8} / {cell[1]:<20} seed {seed}: {100 * scores[cell]:.2f} %",
              flush=True)
    return scores


def parse_args(argv):
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--epochs", type=int, default=30)
    p.add_argument("--seeds", default="0,1,2", help="comma-separated seeds (>= 3 for a std)")
    p.add_argument("--cells", default="all",
                   help="'all' (the paper's 8 cells) or 'issue' (none, 1-D, 2-D, relative at "
                   "the stem; 1-D in every layer, every layer shared)")
    p.add_argument("--output", default=None, help="also write the markdown table here")
    p.add_argument("--jobs", type=int, default=1, help="worker processes, one seed each (1)")
    p.add_argument("--smoke", action="store_true", help="2 cells, 1 epoch, 1 seed (a test)")
    return p.parse_args(argv)


def main(argv=None):
    args = parse_args(argv)
    import _digits

    seeds = [int(s) for s in args.seeds.split(",")]
    cells = dict(CELLS)
    if args.cells == "issue":
        cells = {k: v for k, v in CELLS.items() if k[0] != "2-D" or k[1] == "stem"}
    epochs = args.epochs
    if args.smoke:
        cells = {k: CELLS[k] for k in (("none", "stem"), ("relative", "stem"))}
        seeds, epochs = [0], 1
    start = time.perf_counter()
    per_seed = _digits.map_seeds(
        functools.partial(run_seed, cells=cells, epochs=epochs, smoke=args.smoke), seeds,
        args.jobs)
    scores = {cell: [s[cell] for s in per_seed] for cell in cells}
    minutes = (time.perf_counter() - start) / 60
    command = "python examples/position_embedding_ablation.py " + " ".join(argv or sys.argv[1:])
    lines = [
        f"Command: `{command.strip()}`  ",
        f"Seeds: {', '.join(map(str, seeds))}; {epochs} epochs; tiny ViT "
        f"({_digits.TINY}) on 16x16 digits, test accuracy (%) on the 360 held-out "
        f"images, mean ± std over seeds; {minutes:.1f} min in all.",
        "",
        "| Pos. Emb. | " + " | ".join(COLUMNS) + " |",
        "|---|" + "---:|" * len(COLUMNS),
    ]
    for row in ROWS:
        cols = [_digits.mean_std(scores[(row, c)]) if (row, c) in scores else "N/A"
                for c in COLUMNS]
        if any(c != "N/A" for c in cols):
            lines.append(f"| {row} | " + " | ".join(cols) + " |")
    lines += ["", "Paper (Table 8, ViT-B/16 on ImageNet, 5-shot linear): "
              + "; ".join(f"{r} / {c}: {PAPER[(r, c)]:.3f}" for r, c in cells)]
    table = "\n".join(lines) + "\n"
    _digits.emit(table, args.output)
    return 0


if __name__ == "__main__":
    sys.exit(main())
