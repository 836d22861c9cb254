"""VTAB-1k scoring: the group means and the overall mean, and the markdown table.

The tasks are data sources (`keras_vit.data.vtab`); fine-tuning a copy of the
model on each is a training run (`keras_vit.vtab.run_vtab`, `keras-vit vtab`).
"""

import numpy as np

from keras_vit.data.vtab import VTAB_GROUPS, VTAB_TASKS, vtab_task


def summarize_vtab(results, tasks=None):
    """Group means and the overall mean from per-task top-1 accuracies.

    Args:
        results: {task name: top-1 accuracy} (or {name: {"top1": ...}}).
        tasks: the task names that were asked for (for the "k of n" counts).
            Defaults to all 19.

    Returns:
        A dict: "groups" {group: {"mean", "tasks_done", "tasks_total"}} for the
        groups with at least one task asked for, and "mean" over all finished
        tasks (VTAB's score: the mean accuracy over its tasks), with
        "tasks_done" and "tasks_total".
    """
    tasks = list(tasks or VTAB_TASKS)
    top1 = {name: float(v["top1"] if isinstance(v, dict) else v) for name, v in results.items()}
    groups = {}
    for group in VTAB_GROUPS:
        asked = [n for n in tasks if vtab_task(n).group == group]
        done = [top1[n] for n in asked if n in top1]
        if asked:
            groups[group] = {
                "mean": float(np.mean(done)) if done else None,
                "tasks_done": len(done),
                "tasks_total": len(asked),
            }
    done = [top1[n] for n in tasks if n in top1]
    return {
        "groups": groups,
        "mean": float(np.mean(done)) if done else None,
        "tasks_done": len(done),
        "tasks_total": len(tasks),
    }


def vtab_markdown(summary, tasks=None):
    """The per-task table, the group means and the overall mean as markdown."""
    names = list(tasks or VTAB_TASKS)
    s = summary["setting"]
    lines = [
        f"VTAB-1k of `{s['weights']}`: {s['steps']} steps, batch {s['batch_size']}, "
        f"lr {s['learning_rate']}, resolution {s['image_size']}, warmup "
        f"{s['warmup_steps']}, seed {s['seed']} (SGD momentum 0.9, cosine, clip 1).",
        "",
        "| group | task | top-1 (%) | test examples |",
        "|---|---|---:|---:|",
    ]
    for name in names:
        task = VTAB_TASKS[name]
        if name in summary["tasks"]:
            r = summary["tasks"][name]
            lines.append(f"| {task.group} | {name} | {100 * r['top1']:.2f} | "
                         f"{r['num_test_examples']} |")
        else:
            lines.append(f"| {task.group} | {name} | skipped (data missing) | |")
    lines += ["", "| mean | top-1 (%) | tasks |", "|---|---:|---:|"]
    for group, g in summary["groups"].items():
        mean = "-" if g["mean"] is None else f"{100 * g['mean']:.2f}"
        lines.append(f"| {group} | {mean} | {g['tasks_done']} of {g['tasks_total']} |")
    mean = "-" if summary["mean"] is None else f"{100 * summary['mean']:.2f}"
    lines.append(f"| all | {mean} | {summary['tasks_done']} of {summary['tasks_total']} |")
    if summary.get("skipped"):
        lines += ["", "Skipped:"] + [f"- {n}: {why}" for n, why in summary["skipped"].items()]
    return "\n".join(lines) + "\n"
