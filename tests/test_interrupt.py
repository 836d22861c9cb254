"""Ctrl-C during `keras-vit train` (issue 23, item 2), as SIGINT sent to a fresh process.

One line, "interrupted after epoch N; run the same command to resume", exit status 130,
the committed epochs kept and resumed from; a second Ctrl-C stops at once, even while the
first epoch compiles (XLA).
"""

import csv
import json
import os
import signal
import subprocess
import sys
import time

from tests.test_user_paths import ROOT, TINY, USER_ENV

TF_LOG = ("WARNING: All log messages before absl", "I0000 ", "W0000 ", "E0000 ")


def _start(*args):
    return subprocess.Popen(
        [sys.executable, "-m", "keras_vit", "train", "--data", "digits", *args],
        cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
        env=dict(USER_ENV, PYTHONUNBUFFERED="1"))


def _wait_for(process, text, timeout=240):
    """Reads stdout until a line starts with `text`; returns the lines read."""
    lines, start = [], time.monotonic()
    while time.monotonic() - start < timeout:
        line = process.stdout.readline()
        if not line:
            break
        lines.append(line)
        if line.startswith(text):
            return lines
    process.kill()
    raise AssertionError(f"no {text!r} in {''.join(lines)[-2000:]}")


def _our_lines(stderr):
    return [l for l in stderr.splitlines() if l.strip() and not l.startswith(TF_LOG)]


def test_ctrl_c_stops_in_one_line_keeps_the_epochs_and_resumes(tmp_path):
    run = tmp_path / "run"
    args = ["--output-dir", str(run), *TINY]
    args = ["--epochs", "500", *args]
    process = _start(*args)
    _wait_for(process, "Epoch 3/")  # epochs 1 and 2 committed
    process.send_signal(signal.SIGINT)
    out, err = process.communicate(timeout=120)
    assert process.returncode == 130, err[-3000:]
    assert "Traceback" not in err and "KeyboardInterrupt" not in err, err[-3000:]
    last = _our_lines(err)[-1]
    assert last.startswith("keras-vit train: interrupted after epoch "), err[-3000:]
    assert last.endswith("; run the same command to resume"), last
    done = int(last.split("after epoch ")[1].split(";")[0])
    state = json.loads((run / "checkpoint" / "state.json").read_text())
    with open(run / "history.csv", newline="") as f:
        rows = list(csv.DictReader(f))
    assert done >= 2 and state["epoch"] == done and len(rows) == done, (state, rows)
    assert not (run / "model.keras").exists()  # no model claims 500 epochs

    again = _start(*args)  # the same command, interrupted again one epoch later
    read = _wait_for(again, f"Epoch {done + 2}/")
    again.send_signal(signal.SIGINT)
    out, err = again.communicate(timeout=120)
    assert again.returncode == 130, err[-3000:]
    assert f"Resuming from epoch {done} of 500" in err + "".join(read), err[-3000:]
    assert f"Epoch {done + 1}/500" in "".join(read) and "Epoch 1/500" not in "".join(read)
    with open(run / "history.csv", newline="") as f:
        epochs = [int(r["epoch"]) for r in csv.DictReader(f)]
    assert epochs == list(range(1, len(epochs) + 1)) and len(epochs) > done, epochs


def test_a_second_ctrl_c_during_the_first_compile_stops_at_once(tmp_path):
    args = ["--epochs", "500", "--output-dir", str(tmp_path / "run"),
            *[a for a in TINY if a not in ("--jit-compile", "off")], "--jit-compile", "on"]
    process = _start(*args)
    _wait_for(process, "Epoch 1/")  # the first step's XLA compile follows
    process.send_signal(signal.SIGINT)
    time.sleep(0.5)
    process.send_signal(signal.SIGINT)
    sent = time.monotonic()
    out, err = process.communicate(timeout=120)
    assert time.monotonic() - sent < 5, err[-3000:]
    assert process.returncode == 130, err[-3000:]
    assert "Traceback" not in err, err[-3000:]
    lines = [l for l in _our_lines(err) if not l.startswith("Recipe (")]  # the run's recipe
    assert lines[0].startswith("Ctrl-C: stopping at the next step"), lines
    assert lines[-1].startswith("Ctrl-C again: stopped at once;"), lines
    assert not os.path.exists(tmp_path / "run" / "model.keras")
