"""Few-shot linear evaluation of frozen features, as the paper's few-shot protocol.

Features are taken before the head (keras_vit.evaluation.feature_model), a
regularised least-squares classifier to {-1, 1}^K is solved in closed form
from 1, 5, 10 and 25 examples per class, seeds 0, 1, 2 (big_vision's
fewshot_lsr; see keras_vit/evaluation/fewshot.py), scored on the test split.
Compares the shipped digits model (weights/digits/model.keras, trained by
`keras-vit train`) with a randomly initialised model of the same shape.

    python examples/few_shot.py --output results/few_shot.md
    python examples/few_shot.py --model my.keras --data cifar10   # any model, any data
    python examples/few_shot.py --smoke   # seconds
"""

import argparse
import sys
import time


def parse_args(argv):
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--model", default=None,
                   help="a .keras model (default: the shipped digits model)")
    p.add_argument("--data", default="digits", help="a keras-vit data set name (digits)")
    p.add_argument("--shots", default="1,5,10,25")
    p.add_argument("--num-seeds", type=int, default=3)
    p.add_argument("--output", default=None, help="also write the markdown table here")
    p.add_argument("--smoke", action="store_true", help="shots 1,5 and one seed (a test)")
    return p.parse_args(argv)


def main(argv=None):
    args = parse_args(argv)
    import keras

    from keras_vit import evaluation

    path = args.model or str(evaluation.DIGITS_MODEL)
    try:
        trained = evaluation.load_model(path)
    except (FileNotFoundError, ValueError) as error:
        print(f"few_shot: {error} (train one with `keras-vit train`, or pass --model)",
              file=sys.stderr)
        return 2
    keras.utils.set_random_seed(0)
    random = keras.models.clone_model(trained)  # same shape, fresh random initialisation
    shots = [int(s) for s in args.shots.split(",")]
    num_seeds = args.num_seeds
    if args.smoke:
        shots, num_seeds = [1, 5], 1
    start = time.perf_counter()
    rows = {}
    for name, model in (("trained", trained), ("random init", random)):
        try:
            rows[name] = evaluation.evaluate_dataset(model, args.data, shots=shots,
                                                     num_seeds=num_seeds, fewshot_only=True)
        except FileNotFoundError as error:
            print(f"few_shot: {error}", file=sys.stderr)
            return 2
    seeds = rows["trained"]["fewshot_seeds"]
    command = "python examples/few_shot.py " + " ".join(argv or sys.argv[1:])
    lines = [
        f"Command: `{command.strip()}`  ",
        f"Model: {path}; data: {args.data} (test split, shots from train); seeds "
        f"{', '.join(map(str, seeds))}; {time.perf_counter() - start:.0f} s. Accuracy (%), "
        "mean over seeds (each seed in brackets).",
        "",
        "| features | " + " | ".join(f"{n}-shot" for n in shots) + " |",
        "|---|" + "---:|" * len(shots),
    ]
    for name, result in rows.items():
        cells = []
        for n in shots:
            each = ", ".join(f"{100 * a:.1f}" for a in result["fewshot_per_seed"][str(n)])
            cells.append(f"{100 * result['fewshot'][str(n)]:.1f} ({each})")
        lines.append(f"| {name} | " + " | ".join(cells) + " |")
    table = "\n".join(lines) + "\n"
    print(table)
    if args.output:
        with open(args.output, "w") as f:
            f.write(table)
    return 0


if __name__ == "__main__":
    sys.exit(main())
