"""Ctrl-C during training: stop at the next step in one line, nothing lost; twice: at once.

Python runs a signal handler only between bytecodes of the main thread, so a handler that
sets a flag is not run while the main thread is inside one long C++ call: the first epoch's
XLA compilation (60-110 s for a B/16 on a CPU). CPython's own C handler does run at once and
writes the signal's number to the wakeup file descriptor (`signal.set_wakeup_fd`); a watcher
thread reading it prints the first Ctrl-C's notice at once and, on the second, ends the
process at once (TensorFlow and XLA release the GIL while they compile and run). The first
Ctrl-C stops training at the next step boundary the callback sees (right after a compile
that was under way): the last completed epoch is the run folder's committed state
(`ResumableCheckpoint` writes each epoch atomically), so nothing already saved is lost and
the same command resumes from it.
"""

import contextlib
import os
import signal
import sys
import threading

import keras

from keras_vit.errors import KerasViTError

# The exit status of a process ended by SIGINT, as shells report it (128 + 2).
INTERRUPTED_STATUS = 130  # also keras_vit.cli's (which imports nothing heavy for --help)


class TrainingInterrupted(KerasViTError):
    """Ctrl-C stopped training; the run folder holds the last completed epoch."""


class _Watch:
    """Counts SIGINTs as they arrive, from a thread that reads the wakeup descriptor."""

    def __init__(self):
        self.count = 0
        self.read_fd, self.write_fd = os.pipe()
        os.set_blocking(self.write_fd, False)
        self.thread = threading.Thread(target=self._watch, name="keras-vit-ctrl-c", daemon=True)

    def _watch(self):
        while True:
            try:
                received = os.read(self.read_fd, 64)
            except OSError:
                return
            if not received:  # the pipe was closed: training is over
                return
            for number in received:
                if number == signal.SIGINT:
                    self._on_sigint()

    def _on_sigint(self):
        self.count += 1
        if self.count == 1:
            sys.stderr.write("\nCtrl-C: stopping at the next step; the last completed epoch "
                             "is kept (Ctrl-C again to stop at once).\n")
            sys.stderr.flush()
            return
        sys.stderr.write("Ctrl-C again: stopped at once; the run folder holds the last "
                         "completed epoch; run the same command to resume.\n")
        sys.stderr.flush()
        os._exit(INTERRUPTED_STATUS)  # not an exception: a C++ call may be running


@contextlib.contextmanager
def interruptible():
    """Within it, SIGINT is counted instead of raising KeyboardInterrupt; yields the watch
    (`watch.count`). Outside the main thread (no handler can be set) it changes nothing."""
    if threading.current_thread() is not threading.main_thread():
        yield None
        return
    watch = _Watch()
    previous = signal.signal(signal.SIGINT, lambda number, frame: None)  # counted by the watch
    previous_fd = signal.set_wakeup_fd(watch.write_fd, warn_on_full_buffer=False)
    watch.thread.start()
    try:
        yield watch
    finally:
        signal.set_wakeup_fd(previous_fd)
        signal.signal(signal.SIGINT, previous)
        os.close(watch.write_fd)  # ends the watcher's read
        watch.thread.join(timeout=5)
        os.close(watch.read_fd)


class StopOnInterrupt(keras.callbacks.Callback):
    """Raises `TrainingInterrupted` at the first step or epoch boundary after a Ctrl-C.

    A step boundary, not `stop_training`: Keras would then end the epoch early and the
    checkpoint would commit a partial epoch as complete. Put it after the checkpoint in
    the callback list, so an epoch that ended is committed before this one looks.

    Args:
        watch: `interruptible()`'s watch (None: never stops).
        completed: the epochs completed before this fit (a resumed run's). Defaults to 0.
    """

    def __init__(self, watch, completed=0):
        super().__init__()
        self.watch = watch
        self.completed = completed

    def _check(self):
        if self.watch is None or not self.watch.count:
            return
        if self.completed:
            raise TrainingInterrupted(
                f"interrupted after epoch {self.completed}; run the same command to resume")
        raise TrainingInterrupted("interrupted in epoch 1, before any epoch completed; run "
                                  "the same command to start again")

    def on_train_batch_end(self, batch, logs=None):
        self._check()

    def on_epoch_end(self, epoch, logs=None):
        self.completed = epoch + 1
        self._check()
