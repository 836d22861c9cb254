"""The run executor, shared by `train`, `finetune`, `pretrain` and each VTAB task.

`Run` prepares what every command does alike (the recipe with the caller's values over
its defaults, the checked output folder, the seed, the distribution, the data);
`Run.compile` is keras_vit's one training `model.compile`, where the XLA policy
(`resolve_jit_compile`) is asked once; `Run.fit` does the rest in the run folder
(`Run.fit_steps` fits a VTAB task, whose result file is its record): it refuses a folder that holds another run,
resumes the same run from its last completed epoch, extends it to a larger `epochs`,
fits, saves atomically, evaluates and writes `metrics.json`:

    DIR/model.keras      the trained model (written atomically at the end)
    DIR/metrics.json     the evaluation, seconds (the total) and segments (one per
                         process that trained), command, config
    DIR/history.csv      one row per epoch, `epoch` column first (1-based)
    DIR/logs/            TensorBoard
    DIR/checkpoint/      the last completed epoch's weights and optimizer state,
                         with the run's configuration

A rerun with the same configuration goes on from the last completed epoch (and says
so); a larger `epochs` extends it, its learning-rate schedule recomputed over the new
total as timm does (the line printed gives the rate before and after); any other
difference is refused with one line naming them, and nothing is overwritten unless
`overwrite=True` (`--overwrite`).
"""

import contextlib
import importlib.util
import json
import math
import os
import shutil
import sys
import time

import keras

from keras_vit import data as datasets  # looked up at call time (tests patch it)
from keras_vit.errors import ArgumentError, RunFolderError
from keras_vit.training import distribution, interrupt
from keras_vit.training.callbacks import ResumableCheckpoint, TrainingDiverged, read_state
from keras_vit.training.recipes import (
    IMPLIED_BEFORE_RECIPE,
    OPTIMIZERS,
    make_schedule,
    schedule_steps,
)
from keras_vit.training.reproducibility import capped_epochs, seed_everything
from keras_vit.training.schedules import warmup_decay
from keras_vit.utils import (
    atomic_path,
    atomic_write_text,
    auto_jit_compile,
    check_positive_int,
    has_accelerator,
)

# What a run may leave in its folder; `overwrite` deletes exactly these.
RUN_FILES = ("model.keras", "pretraining.keras", "metrics.json", "history.csv", "checkpoint",
             "logs")
# Execution details that do not change what is trained: a rerun may differ in them.
_NOT_COMPARED = ("jit_compile", "steps_per_execution", "steps_per_epoch", "parameters",
                 "epochs", "replicas", "processes", "devices", "model_parallel")
# Model fields that are facts of the data, not options: `background` (the training images'
# polarity, recorded for predict since 2026-12-07) follows the data set, which is compared
# by name; a run folder written before it existed must still resume.
_MODEL_NOT_COMPARED = ("background",)


def log(message, verbose):
    """One line on stderr when `verbose`."""
    if verbose:
        print(message, file=sys.stderr, flush=True)


def progress_verbosity(verbose):
    """Keras' progress bar on a terminal; one line per epoch when output is redirected."""
    if verbose == "auto":
        return 1 if sys.stdout.isatty() else 2
    return verbose


def tensorboard_installed():
    return importlib.util.find_spec("tensorboard") is not None


def save_model(model, path):
    """`model.save(path)`, atomically (a kill leaves the old file or the new one)."""
    with atomic_path(path) as tmp, distribution.writing_alone():
        model.save(tmp)


def check_recipe(recipe):
    """Refuses a non-positive `epochs`, `batch_size` or `learning_rate`, an unknown
    `optimizer`, a `momentum` outside [0, 1), a non-positive `global_clipnorm` or
    `gradient_accumulation_steps` (None: off) by name."""
    for name in ("epochs", "batch_size"):
        recipe[name] = check_positive_int(name, recipe[name])
    if recipe.get("gradient_accumulation_steps") is not None:
        recipe["gradient_accumulation_steps"] = check_positive_int(
            "gradient_accumulation_steps", recipe["gradient_accumulation_steps"])
    checks = (("learning_rate", lambda v: v > 0, "a positive number"),
              ("momentum", lambda v: 0 <= v < 1, "a number in [0, 1)"),
              ("global_clipnorm", lambda v: v > 0, "a positive number or None"))
    for name, fits, expected in checks:
        value = recipe.get(name)
        if value is None and name != "learning_rate":
            continue
        if isinstance(value, bool) or not isinstance(value, (int, float)) or not fits(value):
            raise ArgumentError(
                f"Received an invalid value for argument `{name}`, expected {expected}. "
                f"Received: {name}={value!r}")
    if "optimizer" in recipe and recipe["optimizer"] not in OPTIMIZERS:
        raise ArgumentError(
            f"Received an invalid value for argument `optimizer`, expected one of "
            f"{', '.join(OPTIMIZERS)}. Received: optimizer={recipe['optimizer']!r}")


def steps_per_epoch(info, dataset, batch_size, drop_remainder=False):
    """Batches in an epoch: from the data set's size, else its cardinality, else counted."""
    if info.num_examples:
        if drop_remainder:
            return max(info.num_examples // batch_size, 1)
        return math.ceil(info.num_examples / batch_size)
    cardinality = int(dataset.cardinality())
    if cardinality > 0:
        return cardinality
    return sum(1 for _ in dataset)


def cpu_steps_per_execution(steps, most=16):
    """Batches per compiled call on a CPU: a divisor of `steps` up to `most` (so the
    progress bar ends on the epoch's last step), or `most` when none is near it."""
    best = max(d for d in range(1, min(most, steps) + 1) if steps % d == 0)
    return best if best >= most // 2 else min(most, steps)


def default_output_dir(data, command="train"):
    """runs/<data> for `train`, runs/<command>-<data> for `finetune` and `pretrain`."""
    name = os.path.basename(str(data).rstrip("/"))
    return os.path.join("runs", name if command == "train" else f"{command}-{name}")


def resolve_jit_compile(jit_compile, model=None, distribute=False, xla_on_cpu=True):
    """The run's XLA choice, asked once, by `Run.compile`; nobody overrides it.

    `"auto"` (or None) is keras_vit's one XLA policy, `keras_vit.utils.auto_jit_compile`
    (which reads `model`), with the two facts only a run knows: off on a CPU when
    distributing (TensorFlow does not compile across virtual CPU replicas), and off on
    a CPU for an objective measured slower there with XLA (`xla_on_cpu=False`, masked
    patch prediction: compiling its sort and gathers cost more than it saved).
    "on"/"off" (and True/False, "true"/"false") as given, except that distributing
    without an accelerator is never compiled.
    """
    if jit_compile == "auto" or jit_compile is None:
        if not has_accelerator() and (distribute or not xla_on_cpu):
            return False
        return auto_jit_compile(model)
    if isinstance(jit_compile, str):
        if jit_compile.lower() in ("on", "true", "1", "yes"):
            jit_compile = True
        elif jit_compile.lower() in ("off", "false", "0", "no"):
            jit_compile = False
        else:
            raise ArgumentError(
                "Received an invalid value for argument `jit_compile`, expected "
                f"'auto', True or False. Received: jit_compile={jit_compile!r}"
            )
    return bool(jit_compile) and not (distribute and not has_accelerator())


# --- The run folder: never clobbered ---------------------------------------------------

def check_output_dir(output_dir):
    """Refuses an `output_dir` that is a file or lies under one (one line, no traceback)."""
    path = os.path.abspath(os.fspath(output_dir))
    while path and not os.path.exists(path):
        path = os.path.dirname(path)
    if path and not os.path.isdir(path):
        where = "is" if path == os.path.abspath(output_dir) else f"lies under {path}, which is"
        raise RunFolderError(
            f"Received an invalid value for argument `output_dir`: {output_dir} {where} a "
            "file, not a folder. Pass a folder (--output-dir NEW).")


def recorded_config(output_dir):
    """The configuration a run folder was made with (its checkpoint state, else its
    metrics.json), or None."""
    state = read_state(os.path.join(output_dir, "checkpoint"))
    if state and state.get("config"):
        return state["config"]
    path = os.path.join(output_dir, "metrics.json")
    if os.path.isfile(path):
        with open(path) as f:
            return json.load(f).get("config")
    return None


def config_differences(old, new, implied=None):
    """["epochs 60 -> 5", "num_layers 4 -> 1", ...]: what differs between two run
    configurations, model fields by name; execution details are not compared. A field
    in `implied` that `old` does not hold is compared as that value (what a run folder
    written before the field existed implied: `IMPLIED_BEFORE_RECIPE`)."""
    old = {**(implied or {}), **old}
    old, new = (json.loads(json.dumps(c, default=str)) for c in (old, new))
    differences = []
    for key in sorted(set(old) | set(new)):
        if key in _NOT_COMPARED:
            continue
        a, b = old.get(key), new.get(key)
        if key == "model_config" and isinstance(a, dict) and isinstance(b, dict):
            differences += [f"{k} {a.get(k)!r} -> {b.get(k)!r}" for k in sorted(set(a) | set(b))
                            if a.get(k) != b.get(k) and k not in _MODEL_NOT_COMPARED]
        elif a != b:
            differences.append(f"{key} {a!r} -> {b!r}")
    if new.get("epochs", 0) < old.get("epochs", 0):
        differences.insert(0, f"epochs {old['epochs']} -> {new['epochs']}")
    return differences


def learning_rate_at(config, step):
    """The learning rate at optimizer step `step` of a run with this configuration
    (`make_schedule`'s warmup and decay over its epochs x steps_per_epoch). After
    epoch e the rate is `learning_rate_at(config, e * steps_per_epoch)`: what
    history.csv's `learning_rate` column holds for epoch e."""
    total, warmup = schedule_steps(config["epochs"], config["steps_per_epoch"],
                                   config["warmup_epochs"])
    return warmup_decay(step, config["learning_rate"], total, warmup, config["decay"])


def extension_note(output_dir, old, new):
    """The line that says what extending a run to a larger `epochs` does to its schedule.

    As timm does when a run is resumed with more epochs, the warmup + decay schedule is
    recomputed over the new total (not continued, not restarted): the rate, at its end
    value after the old last epoch, rises again to where the longer schedule is at that
    point, and decays to its end over the new epochs.
    """
    line = f"Extending the run in {output_dir} from {old['epochs']} to {new['epochs']} epochs"
    if not all(k in old and k in new for k in ("learning_rate", "warmup_epochs", "decay",
                                               "steps_per_epoch")):
        return line + "."
    done, steps = old["epochs"], new["steps_per_epoch"]
    before = learning_rate_at(old, done * old["steps_per_epoch"])
    start = learning_rate_at(new, done * steps)
    end = learning_rate_at(new, (done + 1) * steps)
    return (f"{line}: the learning-rate schedule (warmup, then {new['decay']} decay) is "
            f"recomputed over {new['epochs']} epochs, as timm does, so the learning rate "
            f"goes from {before:.6g} (end of epoch {done}, the old schedule's) back up to "
            f"{start:.6g} at the start of epoch {done + 1} ({end:.6g} at its end).")


def prepare_run_folder(output_dir, config, overwrite, verbose, implied=None):
    """Checks that `output_dir` is new, holds this very run (resume, or extend to a
    larger `epochs`), or may be cleared (`overwrite`); refuses anything else. `implied`:
    as `config_differences` takes it."""
    check_output_dir(output_dir)
    present = [n for n in RUN_FILES if os.path.exists(os.path.join(output_dir, n))]
    if not present:
        return
    if overwrite:
        for name in present:
            path = os.path.join(output_dir, name)
            shutil.rmtree(path) if os.path.isdir(path) else os.remove(path)
        log(f"Starting over in {output_dir}: removed {', '.join(present)} (overwrite).",
            verbose)
        return
    old = recorded_config(output_dir)
    ways_out = "pass --output-dir NEW for a new run, or --overwrite to start this one over"
    state = read_state(os.path.join(output_dir, "checkpoint"))
    if state and not state.get("config"):
        raise RunFolderError(
            f"{os.path.join(output_dir, 'checkpoint')} holds training state with no record "
            f"of the options it was made with, so it is not resumed; {ways_out}")
    if old is None:
        if {"model.keras", "pretraining.keras", "metrics.json"} & set(present):
            raise RunFolderError(
                f"{output_dir} holds {', '.join(present)} but no record of how they were "
                f"made, so they are not resumed or replaced; {ways_out}")
        return  # a run stopped before its first epoch: nothing to keep
    differences = config_differences(old, config, implied)
    if differences:
        raise RunFolderError(
            f"{output_dir} holds a run made with other options ({'; '.join(differences)}); "
            f"{ways_out}")
    finished = sorted({"model.keras", "pretraining.keras", "metrics.json"} & set(present))
    if not state and finished:  # checkpoint/ deleted (to free disk, say)
        raise RunFolderError(
            f"{output_dir} holds {', '.join(finished)} but no checkpoint/ to resume or "
            f"extend the run from, so it is not trained over; {ways_out}")
    if config["epochs"] > old.get("epochs", config["epochs"]):
        log(extension_note(output_dir, old, config), verbose)


# --- Preparation shared by every command -------------------------------------------------

def _check_accumulation(gradient_accumulation_steps, distribute):
    """Refuses what TensorFlow cannot do: accumulate gradients under MirroredStrategy."""
    if distribute and gradient_accumulation_steps not in (None, 1):
        if keras.backend.backend() == "tensorflow":
            # Keras' optimizers apply accumulated updates inside a cond, which
            # MirroredStrategy cannot synchronise (a merge_call RuntimeError).
            raise ArgumentError(
                "Received an invalid value for argument `gradient_accumulation_steps`: "
                "Keras cannot accumulate gradients under tf.distribute.MirroredStrategy; "
                "use a larger per-replica batch or drop `distribute`. Received: "
                f"gradient_accumulation_steps={gradient_accumulation_steps}, distribute=True"
            )


def _distribution_scope(distribute, verbose, model_parallel=None):
    """A context factory for building the model: MirroredStrategy (TF), DataParallel or,
    with `model_parallel`, ModelParallel (JAX; `keras_vit.training.distribution`), and
    the number of data-parallel replicas. A multi-process job in the environment starts
    JAX's distributed runtime first; without `distribute` it is refused (each process
    would train the whole run into the same folder)."""
    group = distribution.process_group_from_env()
    if group is not None and not distribute:
        raise ArgumentError(
            f"The environment describes process {group.process_id} of a "
            f"{group.num_processes}-process job ({', '.join(group.variables)}), but "
            "`distribute` is off: pass --distribute (distribute=True) on every process, "
            "or unset those variables for a one-process run.")
    if model_parallel not in (None, 1) and not distribute:
        raise ArgumentError(
            "Received an invalid value for argument `model_parallel`: it splits the "
            "model over devices of a distributed run; pass --distribute with it. "
            f"Received: model_parallel={model_parallel}, distribute=False")
    if not distribute:
        return contextlib.nullcontext, 1
    backend = keras.backend.backend()
    if group is not None:
        distribution.check_backend(group)
        distribution.start_process_group(group)
    if backend == "tensorflow" and model_parallel in (None, 1):
        import tensorflow as tf  # TF-only path, imported when distributing on TF

        devices = tf.config.list_logical_devices("GPU") or tf.config.list_logical_devices("CPU")
        strategy = tf.distribute.MirroredStrategy([d.name for d in devices])
        log(f"Distributing over {strategy.num_replicas_in_sync} replicas "
            f"(MirroredStrategy: {', '.join(d.name for d in devices)}).", verbose)
        return strategy.scope, strategy.num_replicas_in_sync
    if backend == "jax":
        devices = keras.distribution.list_devices()
        processes = distribution.process_count()
        if model_parallel in (None, 1):
            keras.distribution.set_distribution(keras.distribution.DataParallel(devices=devices))
            replicas, how = len(devices), "keras.distribution.DataParallel"
        else:
            if processes > 1:
                raise ArgumentError(
                    "Received an invalid value for argument `model_parallel`: model "
                    "parallelism runs within one process (its devices); across processes "
                    f"use data parallelism alone. Received: model_parallel={model_parallel} "
                    f"with {processes} processes")
            keras.distribution.set_distribution(
                distribution.model_parallel_distribution(model_parallel, devices))
            replicas = len(devices) // model_parallel
            how = (f"keras.distribution.ModelParallel, {model_parallel} devices per model, "
                   f"{replicas} data-parallel replicas")
        log(f"Distributing over {processes} process{'es' if processes > 1 else ''}, "
            f"{len(devices)} devices ({how}).", verbose and distribution.is_writer())
        return contextlib.nullcontext, replicas
    if backend == "tensorflow":
        raise ArgumentError(
            "Received an invalid value for argument `model_parallel`: model parallelism "
            "runs on keras.distribution.ModelParallel, on the jax backend; set "
            f"KERAS_BACKEND=jax. Received: model_parallel={model_parallel} with backend "
            "'tensorflow'")
    raise ArgumentError(
        "Received an invalid value for argument `distribute`: data-parallel "
        "training is supported on the tensorflow and jax backends. "
        f"Received: distribute=True with backend {backend!r}"
    )


def recipe_line(name, recipe, given=(), planned=()):
    """The line a run prints at its start: the preset (or "your own"), every field's
    value as the run takes it, and which of them were given (flags, keyword arguments,
    `--recipe-set`) and which the fine-tuning plan chose."""
    def shown(field):
        mark = " (given)" if field in given else " (plan)" if field in planned else ""
        return f"{field}={recipe[field]!r}{mark}"

    which = f"preset {name!r}" if name else "your own"
    return f"Recipe ({which}): {', '.join(shown(f) for f in recipe)}."


def _policy(mixed_precision):
    if not mixed_precision:
        return None
    return "mixed_float16" if has_accelerator() else "mixed_bfloat16"


class Run:
    """A run: what `train`, `finetune`, `pretrain` and a VTAB task prepare alike, then
    `compile` (the XLA policy asked once) and `fit` in the run folder (`fit_steps`
    without one).

    Args:
        defaults: the recipe (a dict such as `DIGITS_RECIPE`).
        given: the caller's recipe values; None keeps the default.
        data: the data set name or image folder.
        command: "train", "finetune", "pretrain" or "vtab" (names the default folder).
        output_dir: the run folder, or None for `default_output_dir(data, command)`.
        seed, distribute, mixed_precision, verbose: as `keras_vit.training.train`
            takes them.
        jit_compile, gradient_accumulation_steps: the recipe's fields of those names
            where not None (kept as arguments for callers written before they were
            fields; `given` wins).
        name: the preset's name ("digits"), or None for a recipe of the caller's.
        planned: the fields `defaults` took from the fine-tuning plan (`finetune_plan`).
        recipe_set: fields over `given` (`--recipe-set`), a None among them included.
            The line `fit` prints at the start names the preset, every field's value,
            and which were given and which planned.
    """

    def __init__(self, defaults, given, data, command, output_dir, seed, jit_compile=None,
                 distribute=False, gradient_accumulation_steps=None, mixed_precision=False,
                 verbose="auto", model_parallel=None, name=None, planned=(), recipe_set=None):
        self.start = time.time()
        self.command = command
        given = {k: v for k, v in given.items() if v is not None}
        for key, value in (("jit_compile", jit_compile),
                           ("gradient_accumulation_steps", gradient_accumulation_steps)):
            if value is not None:
                given.setdefault(key, value)
        given.update(recipe_set or {})  # explicit: None too (global_clipnorm=None: no clip)
        self.recipe = {**defaults, **given}
        self.recipe["epochs"] = capped_epochs(self.recipe["epochs"])  # KERAS_VIT_MAX_EPOCHS
        check_recipe(self.recipe)
        self.output_dir = os.fspath(output_dir or default_output_dir(data, command))
        check_output_dir(self.output_dir)
        self.data, self.seed = data, seed
        self.distribute = bool(distribute)
        self.accumulation = self.recipe.get("gradient_accumulation_steps")
        self.dtype = _policy(mixed_precision)
        self.jit_compile = self.recipe.get("jit_compile", "auto")
        seed_everything(seed, deterministic=False)
        _check_accumulation(self.accumulation, distribute)
        self.scope, self.replicas = _distribution_scope(distribute, verbose not in (0, False),
                                                        model_parallel)
        # Process 0 alone logs and writes the run folder (distribution.is_writer).
        self.writer = distribution.is_writer()
        self.verbose = verbose if self.writer else 0
        self.record = dict(data=str(data), seed=seed, mixed_precision=bool(mixed_precision),
                           distribute=self.distribute, replicas=self.replicas,
                           gradient_accumulation_steps=self.accumulation)
        # printed by `fit` once every check has passed (a refusal stays one line)
        self.recipe_line = recipe_line(name, self.recipe, given, planned)
        if self.distribute and keras.backend.backend() == "jax":
            distribution.check_global_batch(self.recipe["batch_size"], self.replicas)
            self.record.update(processes=distribution.process_count(),
                               devices=len(keras.distribution.list_devices()),
                               model_parallel=model_parallel or 1)

    def load(self, image_size, num_channels=None, data_dir=None, manual_dir=None):
        """The train and test splits (replicas split every batch evenly: a last, partial
        batch is dropped when distributing) and the steps of an epoch; the test split's
        size is `self.test_examples` (None where unknown)."""
        common = dict(image_size=image_size, batch_size=self.recipe["batch_size"],
                      seed=self.seed, data_dir=data_dir, manual_dir=manual_dir,
                      num_channels=num_channels)
        train_ds, info = datasets.load_dataset(
            self.data, "train", augment=self.recipe["augment"],
            drop_remainder=self.distribute, **common)
        test_ds, test_info = datasets.load_dataset(self.data, "test", augment=None, **common)
        self.test_examples = test_info.num_examples  # None where unknown
        self.steps = steps_per_epoch(info, train_ds, self.recipe["batch_size"],
                                     self.distribute)
        return train_ds, test_ds, info

    def schedule(self):
        r = self.recipe
        return make_schedule(r["learning_rate"], r["epochs"], self.steps, r["warmup_epochs"],
                             r["decay"])

    def steps_per_execution(self, given=None):
        """`given`, else 1 on an accelerator or when distributing, else up to 16 on a CPU."""
        if given is not None:
            return given
        return 1 if has_accelerator() or self.distribute else cpu_steps_per_execution(self.steps)

    def compile(self, model, optimizer, loss=None, metrics=None, steps_per_execution=None,
                xla_on_cpu=True):
        """`model.compile`, the one for training in keras_vit: the XLA policy
        (`resolve_jit_compile`) asked once, with what the run knows (the model, whether
        it distributes), and `steps_per_execution(steps_per_execution)`. Call it under
        `scope()`; `config` records what it chose.

        Returns:
            (jit_compile, steps_per_execution), as compiled.
        """
        steps_per_execution = self.steps_per_execution(steps_per_execution)
        jit_compile = resolve_jit_compile(self.jit_compile, model, self.distribute, xla_on_cpu)
        model.compile(optimizer=optimizer, loss=loss, metrics=metrics, jit_compile=jit_compile,
                      steps_per_execution=steps_per_execution)
        self.compiled = dict(jit_compile=jit_compile, steps_per_execution=steps_per_execution)
        return jit_compile, steps_per_execution

    def config(self, model, **extra):
        """The run's configuration as recorded (metrics.json, checkpoint) and compared on
        a rerun: the recipe, the record, what `compile` chose, the model and `extra`."""
        config = {**self.recipe, **self.record, **extra, **self.compiled,
                  "steps_per_epoch": self.steps, "model_config": model.config.to_dict(),
                  "parameters": int(model.count_params())}
        return json.loads(json.dumps(config, default=str))

    def fit_steps(self, model, train_ds, steps):
        """Fits the compiled `model` for `steps` batches of `train_ds` as one epoch, with
        no run folder: a VTAB task, whose result file is its record (`keras_vit.vtab`)."""
        model.fit(train_ds, steps_per_epoch=steps, epochs=1,
                  verbose=progress_verbosity(self.verbose), shuffle=False)  # tf.data shuffles

    def fit(self, model, train_ds, config, *, saves, evaluate, tensorboard=True,
            overwrite=False, command=None, extra=None, what="training"):
        """Fits the compiled `model` in the run folder and writes what the run made.

        Args:
            model: the compiled Keras model to fit (its weights and optimizer state are
                what the checkpoint holds).
            train_ds: the training data as `model.fit` takes it.
            config: `Run.config(...)`, compared with the folder's recorded run.
            saves: {file name in the folder: model to save there}, written atomically
                after training (and, after a NaN, from the last good epoch).
            evaluate: a function returning the evaluation's metrics dict.
            tensorboard, overwrite, command: as `train` takes them.
            extra: more entries for metrics.json. Defaults to None.
            what: the word for the run in messages ("training", "pre-training").

        Returns:
            The metrics dict also written to metrics.json (for a run whose epochs were
            all done before, the one it holds).
        """
        output_dir, epochs = self.output_dir, self.recipe["epochs"]
        verbose = self.verbose not in (0, False)
        if self.writer:
            prepare_run_folder(output_dir, config, overwrite, verbose,
                               IMPLIED_BEFORE_RECIPE.get(self.command))
            os.makedirs(output_dir, exist_ok=True)
        log(self.recipe_line, verbose)
        distribution.barrier("run folder prepared")  # then every process restores from it
        checkpoint = ResumableCheckpoint(
            os.path.join(output_dir, "checkpoint"), os.path.join(output_dir, "history.csv"),
            config=config, start=self.start, write=self.writer,
        )
        done = checkpoint.restore(model)
        if done:
            log(f"Resuming from epoch {done} of {epochs} "
                f"(state in {os.path.join(output_dir, 'checkpoint')}).", verbose)
        callbacks = [checkpoint]
        if tensorboard and not tensorboard_installed():
            log("TensorBoard logs skipped: `pip install tensorboard` to have them.", verbose)
            tensorboard = False
        if tensorboard and self.writer:
            callbacks.append(keras.callbacks.TensorBoard(
                os.path.join(output_dir, "logs"), write_graph=False, update_freq="epoch"
            ))
        paths = {os.path.join(output_dir, name): saved for name, saved in saves.items()}
        metrics_path = os.path.join(output_dir, "metrics.json")
        if done >= epochs and all(map(os.path.isfile, [*paths, metrics_path])):
            distribution.barrier("run already done")  # all read before any returns
            log(f"All {epochs} epochs of the run in {output_dir} were already done; its files "
                "are left as they are.", verbose)
            with open(metrics_path) as f:
                return json.load(f)
        if done < epochs:
            with interrupt.interruptible() as watch:  # Ctrl-C: one line, at the next step
                model.fit(train_ds, epochs=epochs, initial_epoch=done,
                          callbacks=[*callbacks, interrupt.StopOnInterrupt(watch, done)],
                          verbose=progress_verbosity(self.verbose),
                          shuffle=False)  # tf.data shuffles
        else:
            log(f"All {epochs} epochs were already done; evaluating the saved state.", verbose)
        if checkpoint.diverged is not None:
            epoch, batch = checkpoint.diverged
            good = checkpoint.restore(model)  # the last committed (finite) state
            where = f"epoch {epoch}" + (f", batch {batch}" if batch else "")
            if good and self.writer:
                for path, saved in paths.items():
                    save_model(saved, path)
                kept = f"the last good model (epoch {good}) is in {next(iter(paths))}"
            else:
                kept = "no epoch had completed, so no model was saved"
            raise TrainingDiverged(
                f"the loss became NaN or infinite at {where}; {what} stopped and "
                f"{kept}. Lower the learning rate or check the data."
            )
        if self.writer:
            for path, saved in paths.items():
                save_model(saved, path)
        metrics = evaluate()  # by every process: it may run collectives
        segments = checkpoint.segments + ([checkpoint.segment(epochs)] if done < epochs else [])
        metrics.update(extra or {})
        metrics.update(
            seconds=round(sum(s["seconds"] for s in segments), 2),
            segments=segments,
            epochs=int(epochs),
            resumed_from_epoch=int(done),
            backend=keras.backend.backend(),
            command=command,
            config=config,
        )
        if self.writer:
            atomic_write_text(metrics_path, json.dumps(metrics, indent=2, default=str) + "\n")
        distribution.barrier("run written")  # no process returns before the files exist
        return metrics
