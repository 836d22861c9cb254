"""Helpers for tests that drive the CLI in real processes."""

import os
import signal
import subprocess
import time

from keras_vit.training.callbacks import read_history


def kill_after_epochs(command, history, epochs=2, timeout=240, **popen):
    """Starts `command`, kills it with SIGKILL once `history` (its history.csv) holds
    `epochs` rows, and returns how many rows it holds then (the epochs it finished)."""
    process = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                               **popen)
    deadline = time.time() + timeout
    try:
        while time.time() < deadline and process.poll() is None:
            if len(read_history(history)) >= epochs:
                break
            time.sleep(0.05)
        assert process.poll() is None, "the run ended before it could be killed"
        os.kill(process.pid, signal.SIGKILL)
    finally:
        process.wait()
    return len(read_history(history))
