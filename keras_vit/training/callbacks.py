"""What Keras' callbacks lack for a run that survives SIGKILL and NaN.

`ResumableCheckpoint` keeps, in one folder, the weights and optimizer state
of the last completed epoch and the history of every completed epoch, each
written to a temporary file and renamed into place (an atomic step), in an
order that makes "every epoch exactly once in history.csv" hold whenever the
process dies. A NaN or infinite loss stops training before its state is saved.
Keras' `BackupAndRestore` overwrites its weights file in place and its
`CSVLogger` appends independently of it, so a kill between the two repeats or
loses a row; that is why this one exists.
"""

import csv
import json
import math
import os
import time

import keras

from keras_vit.errors import KerasViTError
from keras_vit.training import distribution
from keras_vit.utils import atomic_write_text

STATE_FILE = "state.json"


class TrainingDiverged(KerasViTError):
    """The loss became NaN or infinite; the last good state was kept."""


def read_state(checkpoint_dir):
    """The saved state {"epoch": completed epochs, "weights": file}, or None."""
    path = os.path.join(checkpoint_dir, STATE_FILE)
    if not os.path.exists(path):
        return None
    with open(path) as f:
        return json.load(f)


def read_history(path):
    """The rows of a history.csv as a list of dicts (empty if absent)."""
    if not os.path.exists(path):
        return []
    with open(path, newline="") as f:
        return list(csv.DictReader(f))


def write_history(path, rows):
    columns = []
    for row in rows:
        columns.extend(k for k in row if k not in columns)
    lines = []
    if columns:
        import io

        buffer = io.StringIO()
        writer = csv.DictWriter(buffer, fieldnames=columns, lineterminator="\n")
        writer.writeheader()
        writer.writerows(rows)
        lines = buffer.getvalue()
    atomic_write_text(path, lines or "")


class ResumableCheckpoint(keras.callbacks.Callback):
    """Saves each completed epoch atomically; stops on a non-finite loss.

    At the end of epoch e (1-based) it writes, in this order: the weights and
    optimizer state to `checkpoint_dir/epoch-e.weights.h5`; `history_path`
    with rows 1..e; `state.json` pointing at the new weights (the commit
    point); then deletes the previous weights file. `restore(model)` reads
    the committed state, loads it and cuts history.csv back to the committed
    epochs, so a kill anywhere leaves each epoch in the history exactly once.

    `state.json` also records the run's `config` (what a rerun is compared
    with) and its `segments`: one {"from_epoch", "to_epoch", "seconds"} per
    process that trained, the seconds counted from `start` to its last
    committed epoch.

    Args:
        checkpoint_dir: folder for the state (created).
        history_path: the CSV history, one row per epoch, `epoch` column first.
        config: a JSON-able dict recorded with each committed epoch. Defaults to None.
        start: `time.time()` when this process began the run. Defaults to now.
        write: bool, write the files (False in every process of a multi-process job
            but process 0: all restore from what it wrote). Defaults to True.
    """

    def __init__(self, checkpoint_dir, history_path, config=None, start=None, write=True):
        super().__init__()
        self.write = write
        self.checkpoint_dir = checkpoint_dir
        self.history_path = history_path
        self.config = config
        self.start = time.time() if start is None else start
        self.diverged = None  # (epoch, batch) of the first non-finite loss
        self.completed_epochs = 0
        self.resumed_from = 0
        self.segments = []  # earlier processes' segments, from state.json
        self._epoch_start = None
        if write:
            os.makedirs(checkpoint_dir, exist_ok=True)

    def segment(self, to_epoch):
        """This process's segment, from the epoch it resumed at to `to_epoch`."""
        return {"from_epoch": self.resumed_from, "to_epoch": int(to_epoch),
                "seconds": round(time.time() - self.start, 2)}

    def restore(self, model):
        """Loads the last committed state into `model`; returns its epoch count."""
        state = read_state(self.checkpoint_dir)
        rows = read_history(self.history_path)
        epoch = 0
        if state is not None:
            if model.optimizer is not None and not model.optimizer.built:
                model.optimizer.build(model.trainable_variables)
            model.load_weights(os.path.join(self.checkpoint_dir, state["weights"]))
            epoch = int(state["epoch"])
            self.segments = list(state.get("segments", []))
        self.resumed_from = epoch
        kept = [r for r in rows if int(r["epoch"]) <= epoch]
        if self.write and (len(kept) != len(rows)
                           or (rows and not os.path.exists(self.history_path))):
            write_history(self.history_path, kept)
        self.completed_epochs = epoch
        return epoch

    def on_epoch_begin(self, epoch, logs=None):
        self._epoch_start = time.time()

    def on_train_batch_end(self, batch, logs=None):
        loss = (logs or {}).get("loss")
        if loss is not None and not math.isfinite(float(loss)) and self.diverged is None:
            self.diverged = (self.completed_epochs + 1, batch + 1)
            self.model.stop_training = True

    def on_epoch_end(self, epoch, logs=None):
        logs = dict(logs or {})
        if self.diverged is not None or not all(
            math.isfinite(float(v)) for v in logs.values() if _is_number(v)
        ):
            if self.diverged is None:
                self.diverged = (epoch + 1, None)
            self.model.stop_training = True
            return  # the non-finite state is never saved
        number = epoch + 1
        if not self.write:
            self.completed_epochs = number
            return
        weights = f"epoch-{number}.weights.h5"
        with distribution.writing_alone():
            self.model.save_weights(os.path.join(self.checkpoint_dir, weights))
        row = {"epoch": number}
        row.update({k: float(v) for k, v in logs.items() if _is_number(v)})
        lr = _current_learning_rate(self.model)
        if lr is not None and "learning_rate" not in row:
            row["learning_rate"] = lr
        row["seconds"] = round(time.time() - (self._epoch_start or time.time()), 3)
        rows = [r for r in read_history(self.history_path) if int(r["epoch"]) < number]
        write_history(self.history_path, rows + [row])
        previous = read_state(self.checkpoint_dir)
        atomic_write_text(
            os.path.join(self.checkpoint_dir, STATE_FILE),
            json.dumps({"epoch": number, "weights": weights, "config": self.config,
                        "segments": self.segments + [self.segment(number)]}, default=str),
        )
        self.completed_epochs = number
        if previous is not None and previous["weights"] != weights:
            old = os.path.join(self.checkpoint_dir, previous["weights"])
            if os.path.exists(old):
                os.remove(old)


def _is_number(value):
    try:
        float(value)
        return True
    except (TypeError, ValueError):
        return False


def _current_learning_rate(model):
    optimizer = getattr(model, "optimizer", None)
    if optimizer is None:
        return None
    try:
        return float(keras.ops.convert_to_numpy(optimizer.learning_rate))
    except Exception:  # a schedule the optimizer cannot evaluate eagerly
        return None
