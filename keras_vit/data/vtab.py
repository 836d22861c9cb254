"""VTAB-1k's tasks as data sources: the 19 tasks of the paper's Figure 2 and Table 2.

The tasks, their tensorflow-datasets names, label definitions and splits are
those of the benchmark's own code, google-research/task_adaptation
(`task_adaptation/data/*.py`, commit d7630d3, and the task list of
`scripts/run_all_tasks.sh`): each task trains on "train800val200" (the first
800 examples of its training split plus 200 examples from where its
validation part starts) and is scored on its "test" split. The slices are
fixed positions in tfds' deterministic order, so every run sees the same
1,000 examples; only the order in which training visits them is seeded.

`load_dataset("vtab/<task>", split)` reads a task as any data set;
`load_vtab_split` is the VTAB run's own reader (cached, shuffled, repeated).
The fine-tuning that VTAB scores is a run (`keras_vit.vtab`), its summary
`keras_vit.evaluation.vtab`.
"""

import dataclasses
from typing import Optional, Tuple

from keras_vit.data.tfds_datasets import read_tfds
from keras_vit.errors import ArgumentError
from keras_vit.utils import to_hw

VTAB_GROUPS = ("natural", "specialized", "structured")
VTAB_PREFIX = "vtab/"  # load_dataset("vtab/cifar100", "train800val200")
VTAB_SPLITS = ("train800", "val200", "train800val200", "test")


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
    task = vtab_task(task)
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


def vtab_task(task):
    """The `VtabTask` of `task` (a `VtabTask` or a name in `VTAB_TASKS`)."""
    if isinstance(task, VtabTask):
        return task
    if task not in VTAB_TASKS:
        raise ArgumentError(
            "Received an invalid value for argument `tasks`, expected names among "
            f"{', '.join(VTAB_TASKS)}. Received: {task!r}"
        )
    return VTAB_TASKS[task]


def vtab_examples(task, split, image_size, data_dir=None):
    """Unbatched (image float32 [0, 255] (H, W, 3), label int32) examples of a task's
    split, resized (bilinear) to `image_size`, as task_adaptation reads them.

    Raises:
        DataNotFound: the data set is not prepared (what to download, where to put it).
    """
    import tensorflow as tf

    task = vtab_task(task)
    if split not in VTAB_SPLITS:
        raise ArgumentError(
            f"Received an invalid value for argument `split`, expected one of "
            f"{', '.join(repr(s) for s in VTAB_SPLITS)} for a VTAB task. Received: "
            f"split={split!r}")
    height, width = to_hw("image_size", image_size)
    dataset = read_tfds(VTAB_PREFIX + task.name, task.tfds_name, _split_of(task, split, data_dir),
                        task.how_to_get, data_dir=data_dir, as_supervised=False)
    label_fn = _label_fn(task)

    def to_pair(example):
        image = tf.cast(example["image"], tf.float32)
        if task.tfds_name == "dsprites":
            image = image * 255.0  # dsprites stores {0, 1}; task_adaptation scales to [0, 255]
        if image.shape[-1] == 1:
            image = tf.tile(image, [1, 1, 3])  # task_adaptation: three channels everywhere
        image = tf.image.resize(image, (height, width), method="bilinear")
        return image, tf.cast(label_fn(example), tf.int32)

    return dataset.map(to_pair, num_parallel_calls=tf.data.AUTOTUNE)


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
        DataNotFound: the data set is not prepared (the message says what to
            download and where to put it).
    """
    import tensorflow as tf

    dataset = vtab_examples(task, split, image_size, data_dir)
    if shuffle or repeat:
        dataset = dataset.cache()
    if shuffle:
        dataset = dataset.shuffle(1000, seed=seed, reshuffle_each_iteration=True)
    if repeat:
        dataset = dataset.repeat()
    return dataset.batch(batch_size).prefetch(tf.data.AUTOTUNE)


def vtab_split_of(task, split, data_dir=None):
    """The tfds split expression of `split` of a task as prepared in `data_dir` (its
    train size where tfds records it, else the catalog's)."""
    return _split_of(vtab_task(task), split, data_dir)


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
