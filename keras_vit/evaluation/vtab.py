"""VTAB-1k: the 19-task transfer suite of the paper's Figure 2 and Table 2.

The tasks, their tensorflow-datasets names, label definitions and splits are
those of the benchmark's own code, google-research/task_adaptation
(`task_adaptation/data/*.py`, commit d7630d3, and the task list of
`scripts/run_all_tasks.sh`): each task trains on "train800val200" (the first
800 examples of its training split plus 200 examples from where its
validation part starts) and is scored on its "test" split. The slices are
fixed positions in tfds' deterministic order, so every run sees the same
1,000 examples; only the order in which training visits them is seeded.

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

import dataclasses
import json
import os
import time
from typing import Optional, Tuple

import numpy as np

from keras_vit.errors import ArgumentError, DataNotFound, RunFolderError
from keras_vit.evaluation.accuracy import evaluate
from keras_vit.training import finetuning_optimizer, load_for_finetuning, resolve_jit_compile
from keras_vit.utils import atomic_write_text as _write_text
from keras_vit.training.schedules import WarmupDecay
from keras_vit.utils import check_positive_int, to_hw

VTAB_GROUPS = ("natural", "specialized", "structured")

# ViT paper App. B.1.1 and Table 4 (see the module docstring).
VTAB_SETTING = dict(
    steps=2500, batch_size=512, learning_rate=0.01, image_size=384, warmup_steps=0,
    momentum=0.9, global_clipnorm=1.0,
)


@dataclasses.dataclass(frozen=True)
class VtabTask:
    """One VTAB-1k task as task_adaptation defines it.

    The 200 validation examples start at `val_start_percent` % of `val_split`
    (task_adaptation computes `percent * num_examples // 100`); `test` is a
    tfds split expression where `{start}` stands for the sum of
    `percent * num_examples // 100` over `test_start_percents` of the train
    split (data sets that task_adaptation cuts into train/val/test itself).
    """

    name: str
    group: str  # "natural" | "specialized" | "structured"
    tfds_name: str
    label_key: str  # the tfds feature, or a label task_adaptation derives (see _LABEL_FNS)
    num_classes: int
    val_split: str  # where the 200 validation examples come from
    val_start_percent: int  # 0: from the start of `val_split`
    test: str  # the scored split
    test_start_percents: Tuple[int, ...] = ()
    catalog_train_size: Optional[int] = None  # tfds' train size, used where tfds has no metadata
    how_to_get: str = ""  # extra download note (manual downloads)


def _task(name, group, tfds_name, num_classes, val=("validation", 0), test="test",
          label_key="label", test_start_percents=(), train_size=None, how_to_get=""):
    return VtabTask(name, group, tfds_name, label_key, num_classes, val[0], val[1], test,
                    tuple(test_start_percents), train_size, how_to_get)


# Order and arguments of task_adaptation/scripts/run_all_tasks.sh, grouped as
# the paper's Figure 2. Train sizes are tfds' (catalog) for the tasks whose
# validation or test cut depends on them.
VTAB_TASKS = {
    t.name: t
    for t in (
        # Natural
        _task("caltech101", "natural", "caltech101", 102, val=("train", 90), train_size=3060),
        _task("cifar100", "natural", "cifar100", 100, val=("train", 90), train_size=50000),
        _task("dtd", "natural", "dtd", 47),
        _task("oxford_flowers102", "natural", "oxford_flowers102", 102),
        _task("oxford_iiit_pet", "natural", "oxford_iiit_pet", 37, val=("train", 80),
              train_size=3680),
        _task("sun397", "natural", "sun397/tfds", 397),
        _task("svhn", "natural", "svhn_cropped", 10, val=("train", 90), train_size=73257),
        # Specialized
        _task("patch_camelyon", "specialized", "patch_camelyon", 2),
        _task("eurosat", "specialized", "eurosat/rgb", 10, val=("train", 60),
              test="train[{start}:]", test_start_percents=(60, 20), train_size=27000),
        _task("resisc45", "specialized", "resisc45", 45, val=("train", 60),
              test="train[{start}:]", test_start_percents=(60, 20), train_size=31500,
              how_to_get="NWPU-RESISC45.rar (a manual download, see tfds' resisc45 page)"),
        _task("diabetic_retinopathy", "specialized",
              "diabetic_retinopathy_detection/btgraham-300", 5,
              how_to_get="the Kaggle 'diabetic-retinopathy-detection' files (a manual "
              "download, see tfds' diabetic_retinopathy_detection page)"),
        # Structured
        _task("clevr_count_all", "structured", "clevr", 8, val=("train", 90),
              test="validation", label_key="count_all", train_size=70000),
        _task("clevr_closest_object_distance", "structured", "clevr", 6, val=("train", 90),
              test="validation", label_key="closest_object_distance", train_size=70000),
        _task("dmlab", "structured", "dmlab", 6),
        _task("kitti_closest_vehicle_distance", "structured", "kitti", 4,
              label_key="closest_vehicle_distance"),
        _task("dsprites_label_x_position", "structured", "dsprites", 16, val=("train", 80),
              test="train[{start}:]", test_start_percents=(80, 10),
              label_key="label_x_position", train_size=737280),
        _task("dsprites_label_orientation", "structured", "dsprites", 16, val=("train", 80),
              test="train[{start}:]", test_start_percents=(80, 10),
              label_key="label_orientation", train_size=737280),
        _task("smallnorb_label_azimuth", "structured", "smallnorb", 18, val=("test", 0),
              test="test[50%:]", label_key="label_azimuth"),
        _task("smallnorb_label_elevation", "structured", "smallnorb", 9, val=("test", 0),
              test="test[50%:]", label_key="label_elevation"),
    )
}

# Classes the source label is grouped into (task_adaptation's dsprites
# `num_classes=16`: label // (original classes / 16)).
_DSPRITES_ORIGINAL_CLASSES = {"label_x_position": 32, "label_orientation": 40}


def vtab_splits(task, train_size=None):
    """The tfds split expressions of a task: train800, val200, train800val200, test.

    Args:
        task: a `VtabTask` or its name.
        train_size: examples in the tfds split the validation/test cut is a
            percentage of (`task.val_split`, or "train" for
            `test_start_percents`). Defaults to tfds' catalog size.

    Example:

    >>> vtab_splits("cifar100")["train800val200"]
    'train[:800]+train[45000:45200]'
    """
    task = _get_task(task)
    size = train_size if train_size is not None else task.catalog_train_size
    needs_size = task.val_start_percent or task.test_start_percents
    if needs_size and size is None:
        raise ArgumentError(f"VTAB task {task.name} needs the size of its train split.")
    start = task.val_start_percent * size // 100 if task.val_start_percent else 0
    val200 = f"{task.val_split}[{start}:{start + 200}]"
    test = task.test
    if task.test_start_percents:
        test = test.format(start=sum(p * size // 100 for p in task.test_start_percents))
    return {
        "train800": "train[:800]",
        "val200": val200,
        "train800val200": f"train[:800]+{val200}",
        "test": test,
    }


def load_vtab_split(task, split, image_size, batch_size=64, data_dir=None, shuffle=False,
                    seed=0, repeat=False):
    """A batched `tf.data.Dataset` of (images float32 [0, 255] (B, H, W, 3), labels int32).

    Args:
        task: a `VtabTask` or its name.
        split: "train800", "val200", "train800val200" or "test".
        image_size: int or (height, width); images are resized (bilinear).
        batch_size: images per batch. Defaults to 64.
        data_dir: where tfds data sets are prepared. Defaults to tfds' default.
        shuffle: shuffle the examples (seeded). Defaults to False.
        seed: shuffle seed. Defaults to 0.
        repeat: repeat forever (training). Defaults to False.

    Raises:
        FileNotFoundError: the data set is not prepared (the message says
            what to download and where to put it).
    """
    import tensorflow as tf

    task = _get_task(task)
    height, width = to_hw("image_size", image_size)
    dataset = _tfds_load(task, split, data_dir)
    label_fn = _label_fn(task)

    def to_pair(example):
        image = tf.cast(example["image"], tf.float32)
        if task.tfds_name == "dsprites":
            image = image * 255.0  # dsprites stores {0, 1}; task_adaptation scales to [0, 255]
        if image.shape[-1] == 1:
            image = tf.tile(image, [1, 1, 3])  # task_adaptation: three channels everywhere
        image = tf.image.resize(image, (height, width), method="bilinear")
        return image, tf.cast(label_fn(example), tf.int32)

    dataset = dataset.map(to_pair, num_parallel_calls=tf.data.AUTOTUNE)
    if shuffle or repeat:
        dataset = dataset.cache()
    if shuffle:
        dataset = dataset.shuffle(1000, seed=seed, reshuffle_each_iteration=True)
    if repeat:
        dataset = dataset.repeat()
    return dataset.batch(batch_size).prefetch(tf.data.AUTOTUNE)


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
    import keras

    task = _get_task(task)
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
    _tfds_load(task, "train800val200", data_dir)  # a missing data set fails before the model loads
    keras.utils.set_random_seed(seed)
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
    model.compile(
        optimizer=finetuning_optimizer(
            schedule, momentum=VTAB_SETTING["momentum"],
            global_clipnorm=VTAB_SETTING["global_clipnorm"],
            gradient_accumulation_steps=accumulation if accumulation > 1 else None,
        ),
        loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True),
        jit_compile=resolve_jit_compile("auto"),  # XLA on GPU/TPU, off on a CPU
    )
    model.fit(train, steps_per_epoch=steps * accumulation, epochs=1, verbose=verbose)
    test = load_vtab_split(task, "test", hw, eval_batch_size, data_dir)
    scores = evaluate(model, test, top_k=(1,))
    return {
        "task": task.name,
        "group": task.group,
        "top1": scores["top1"],
        "num_test_examples": scores["num_examples"],
        "splits": {"train": _split_of(task, "train800val200", data_dir),
                   "test": _split_of(task, "test", data_dir)},
        "seconds": round(time.perf_counter() - start, 1),
    }


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
        asked = [n for n in tasks if _get_task(n).group == group]
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
        _get_task(name)
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
        _write_text(path, json.dumps(result, indent=2) + "\n")
        results[name] = result
        log(f"{name}: top-1 {result['top1']:.4f} ({result['seconds']} s)")
    summary = {"setting": setting, "tasks": results, "skipped": skipped,
               **summarize_vtab(results, names)}
    _write_text(os.path.join(output_dir, "vtab.json"), json.dumps(summary, indent=2) + "\n")
    _write_text(os.path.join(output_dir, "vtab.md"), vtab_markdown(summary, names))
    return summary


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


def _get_task(task):
    if isinstance(task, VtabTask):
        return task
    if task not in VTAB_TASKS:
        raise ArgumentError(
            "Received an invalid value for argument `tasks`, expected names among "
            f"{', '.join(VTAB_TASKS)}. Received: {task!r}"
        )
    return VTAB_TASKS[task]


def _train_size(task, data_dir):
    """The prepared data set's train size where tfds knows it, else the catalog's."""
    import tensorflow_datasets as tfds

    split = "train" if task.test_start_percents else task.val_split
    try:
        return tfds.builder(task.tfds_name, data_dir=data_dir).info.splits[split].num_examples
    except Exception:  # not prepared, or mock data (no metadata): tfds' published size
        return task.catalog_train_size


def _split_of(task, split, data_dir):
    size = _train_size(task, data_dir) if (task.val_start_percent or task.test_start_percents) else None
    return vtab_splits(task, size)[split]


def _tfds_load(task, split, data_dir):
    import tensorflow_datasets as tfds

    from keras_vit.data.tfds_datasets import default_data_dir

    expression = _split_of(task, split, data_dir)
    try:
        return tfds.load(task.tfds_name, split=expression, data_dir=data_dir,
                         shuffle_files=False, download=False)
    except (AssertionError, tfds.core.registered.DatasetNotFoundError, OSError) as error:
        where = default_data_dir(data_dir)
        extra = f" ({task.how_to_get})" if task.how_to_get else ""
        raise DataNotFound(
            f"VTAB task {task.name} needs the tfds data set {task.tfds_name}, not "
            f"prepared in {where}: on a machine with internet run `python -c \"import "
            f"tensorflow_datasets as tfds; tfds.load('{task.tfds_name}')\"`{extra} and "
            f"copy ~/tensorflow_datasets/{task.tfds_name.split('/')[0]} to {where}, or "
            f"pass --data-dir where it lies."
        ) from error


def _label_fn(task):
    """task_adaptation's label of an example (clevr.py, kitti.py, dsprites.py)."""
    import tensorflow as tf

    key = task.label_key
    if task.tfds_name == "clevr" and key == "count_all":
        return lambda x: tf.size(x["objects"]["size"]) - 3
    if task.tfds_name == "clevr" and key == "closest_object_distance":
        def clevr_distance(x):
            dist = tf.reduce_min(x["objects"]["pixel_coords"][:, 2])
            thrs = tf.constant([0.0, 8.0, 8.5, 9.0, 9.5, 10.0, 100.0])
            return tf.reduce_max(tf.where((thrs - dist) < 0))
        return clevr_distance
    if task.tfds_name == "kitti" and key == "closest_vehicle_distance":
        def kitti_distance(x):
            vehicles = tf.where(x["objects"]["type"] < 3)  # Car, Van, Truck
            vehicle_z = tf.gather(params=x["objects"]["location"][:, 2], indices=vehicles)
            vehicle_z = tf.concat([tf.cast(vehicle_z, tf.float32),
                                   tf.constant([[1000.0]])], axis=0)
            dist = tf.reduce_min(vehicle_z)
            thrs = tf.constant([-100.0, 8.0, 20.0, 999.0])
            return tf.reduce_max(tf.where((thrs - dist) < 0))
        return kitti_distance
    if task.tfds_name == "dsprites":
        factor = _DSPRITES_ORIGINAL_CLASSES[key] / task.num_classes
        return lambda x: tf.math.floordiv(tf.cast(x[key], tf.float32), factor)
    return lambda x: x[key]
