"""VTAB-1k as runs: one fine-tuned copy of a model per task, then the summary.

This module composes the three layers it needs, as `keras-vit vtab` does: the
tasks are data sources (`keras_vit.data.vtab`), each task's fine-tune is a run of
the training executor (`keras_vit.training.Run`: its XLA policy, its compile, its
fit), and the scoring is `keras_vit.evaluation` (`evaluate`, `summarize_vtab`,
`vtab_markdown`). It lives above evaluation so that evaluation never imports
training.

Fine-tuning follows the ViT paper (Dosovitskiy et al., ICLR 2021), App. B.1.1:
"For VTAB we follow the protocol in Kolesnikov et al. (2020), and use the same
hyperparameter setting for all tasks. We use a learning rate of 0.01 and train
for 2500 steps (Tab. 4). [...] we do not use task-specific input resolutions.
Instead we find that Vision Transformer benefits most from a high resolution
(384 x 384) for all tasks." Its general fine-tuning setting (same appendix):
SGD with momentum 0.9, batch 512, cosine decay, no weight decay, gradients
clipped at global norm 1. The paper names no warmup for VTAB; it is 0 here
and can be set. Images are resized to the resolution; no augmentation.
"""

import json
import os
import time

import keras

from keras_vit.data.vtab import (
    VTAB_TASKS,
    load_vtab_split,
    vtab_examples,
    vtab_split_of,
    vtab_task,
)
from keras_vit.errors import ArgumentError, RunFolderError
from keras_vit.evaluation import evaluate, summarize_vtab, vtab_markdown
from keras_vit.training import Run, WarmupDecay, finetuning_optimizer, load_for_finetuning
from keras_vit.utils import atomic_write_text, check_positive_int

# ViT paper App. B.1.1 and Table 4 (see the module docstring).
VTAB_SETTING = dict(
    steps=2500, batch_size=512, learning_rate=0.01, image_size=384, warmup_steps=0,
    momentum=0.9, global_clipnorm=1.0,
)


def finetune_vtab_task(weights, task, data_dir=None, steps=2500, batch_size=512,
                       learning_rate=0.01, image_size=384, warmup_steps=0,
                       gradient_accumulation_steps=None, eval_batch_size=64, seed=0,
                       verbose=0):
    """Fine-tunes one copy of `weights` on a task's 1,000 examples; top-1 on its test split.

    Args:
        weights: a `.keras` file, a checkpoint file or a registered checkpoint
            name (as `keras_vit.training.load_for_finetuning` takes).
        task: a `VtabTask` or its name.
        steps, batch_size, learning_rate, image_size, warmup_steps: the
            fine-tuning setting; defaults are the paper's (`VTAB_SETTING`).
            `image_size=None` keeps the model's own resolution.
        gradient_accumulation_steps: optimizer steps of `batch_size` made of
            this many smaller batches, when a batch does not fit in memory.
            Defaults to None (no accumulation).
        eval_batch_size: batch size of the test pass. Defaults to 64.
        seed: seed of the training order and of Keras. Defaults to 0.
        verbose: Keras fit verbosity. Defaults to 0.

    Returns:
        A dict: task, group, top1, num_test_examples, splits, seconds.
    """
    task = vtab_task(task)
    steps = check_positive_int("steps", steps)
    batch_size = check_positive_int("batch_size", batch_size)
    accumulation = gradient_accumulation_steps or 1
    if batch_size % accumulation:
        raise ArgumentError(
            "Received an invalid value for argument `gradient_accumulation_steps`, "
            f"expected a divisor of batch_size={batch_size}. "
            f"Received: gradient_accumulation_steps={accumulation}"
        )
    start = time.perf_counter()
    run = Run(dict(epochs=1, batch_size=batch_size, learning_rate=learning_rate, augment=None),
              {}, task.name, "vtab", None, seed, "auto", verbose=verbose)
    vtab_examples(task, "train800val200", 1, data_dir)  # missing data fails before the model
    model = load_for_finetuning(weights, task.num_classes, image_size=image_size)
    hw = tuple(model.inputs[0].shape[1:3])
    micro = batch_size // accumulation
    train = load_vtab_split(task, "train800val200", hw, micro, data_dir, shuffle=True,
                            seed=seed, repeat=True)
    # Keras advances a schedule once per micro-batch (`optimizer.iterations`), and an
    # update is applied every `accumulation` of them: the schedule spans all the
    # micro-batches, so `steps` updates follow warmup + cosine from start to end.
    schedule = WarmupDecay(learning_rate, total_steps=steps * accumulation,
                           warmup_steps=min(warmup_steps, steps - 1) * accumulation)
    optimizer = finetuning_optimizer(
        schedule, momentum=VTAB_SETTING["momentum"],
        global_clipnorm=VTAB_SETTING["global_clipnorm"],
        gradient_accumulation_steps=accumulation if accumulation > 1 else None,
    )
    run.compile(model, optimizer, loss=keras.losses.SparseCategoricalCrossentropy(
        from_logits=True), steps_per_execution=1)
    run.fit_steps(model, train, steps * accumulation)
    test = load_vtab_split(task, "test", hw, eval_batch_size, data_dir)
    scores = evaluate(model, test, top_k=(1,))
    return {
        "task": task.name,
        "group": task.group,
        "top1": scores["top1"],
        "num_test_examples": scores["num_examples"],
        "splits": {"train": vtab_split_of(task, "train800val200", data_dir),
                   "test": vtab_split_of(task, "test", data_dir)},
        "seconds": round(time.perf_counter() - start, 1),
    }


def run_vtab(weights, tasks=None, data_dir=None, output_dir="runs/vtab", steps=2500,
             batch_size=512, learning_rate=0.01, image_size=384, warmup_steps=0,
             gradient_accumulation_steps=None, eval_batch_size=64, seed=0, verbose=0,
             log=print):
    """Runs VTAB-1k: one fine-tuned copy of `weights` per task; writes markdown and JSON.

    Each finished task is saved as `output_dir/tasks/<task>.json`; a rerun with
    the same setting skips those (resume). A task whose data is not prepared
    is listed as skipped, with what to download, and the others still run.

    Args:
        weights: see `finetune_vtab_task`.
        tasks: task names (see `VTAB_TASKS`). Defaults to all 19.
        data_dir: where tfds data sets are prepared.
        output_dir: where `vtab.json`, `vtab.md` and `tasks/` go.
            Defaults to "runs/vtab".
        steps, batch_size, learning_rate, image_size, warmup_steps,
        gradient_accumulation_steps, eval_batch_size, seed, verbose: see
            `finetune_vtab_task`; the defaults are the paper's setting.
        log: called with one line of progress per task. Defaults to print.

    Returns:
        The dict written to `vtab.json`: "setting", "tasks" {name: result},
        "skipped" {name: reason}, "groups", "mean", "tasks_done", "tasks_total".
    """
    names = list(tasks) if tasks else list(VTAB_TASKS)
    for name in names:
        vtab_task(name)
    setting = {
        "weights": os.fspath(weights), "steps": steps, "batch_size": batch_size,
        "learning_rate": learning_rate, "image_size": image_size,
        "warmup_steps": warmup_steps, "seed": seed,
    }
    task_dir = os.path.join(output_dir, "tasks")
    os.makedirs(task_dir, exist_ok=True)
    results, skipped = {}, {}
    for name in names:
        path = os.path.join(task_dir, f"{name}.json")
        if os.path.exists(path):
            with open(path) as f:
                saved = json.load(f)
            if saved.get("setting") != setting:
                raise RunFolderError(
                    f"{path} holds a result of another setting ({saved.get('setting')}); "
                    "pass another output_dir (--output-dir) or delete it to rerun."
                )
            results[name] = saved
            log(f"{name}: done earlier, top-1 {saved['top1']:.4f} (from {path})")
            continue
        try:
            result = finetune_vtab_task(
                weights, name, data_dir=data_dir, steps=steps, batch_size=batch_size,
                learning_rate=learning_rate, image_size=image_size,
                warmup_steps=warmup_steps,
                gradient_accumulation_steps=gradient_accumulation_steps,
                eval_batch_size=eval_batch_size, seed=seed, verbose=verbose,
            )
        except FileNotFoundError as error:
            skipped[name] = str(error)
            log(f"{name}: skipped: {error}")
            continue
        result["setting"] = setting
        atomic_write_text(path, json.dumps(result, indent=2) + "\n")
        results[name] = result
        log(f"{name}: top-1 {result['top1']:.4f} ({result['seconds']} s)")
    summary = {"setting": setting, "tasks": results, "skipped": skipped,
               **summarize_vtab(results, names)}
    atomic_write_text(os.path.join(output_dir, "vtab.json"), json.dumps(summary, indent=2) + "\n")
    atomic_write_text(os.path.join(output_dir, "vtab.md"), vtab_markdown(summary, names))
    return summary
