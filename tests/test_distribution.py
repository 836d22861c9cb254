"""Past one machine: the process group from the environment, its checks, two real JAX
processes on 127.0.0.1 against one, and the model-parallel layout on virtual CPUs."""

import csv
import json
import os
import signal
import socket
import subprocess
import sys
import textwrap
import time

import pytest

from keras_vit.errors import ArgumentError
from keras_vit.training import distribution
from keras_vit.training.runs import _distribution_scope

GROUP = {"KERAS_DISTRIBUTION_JOB_ADDRESSES": "10.0.0.1:1234",
         "KERAS_DISTRIBUTION_NUM_PROCESSES": "2", "KERAS_DISTRIBUTION_PROCESS_ID": "1"}


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


# --- The process group and the bad set-ups (no process started) ---------------------

def test_process_group_from_keras_and_jax_variables():
    assert distribution.process_group_from_env({}) is None
    group = distribution.process_group_from_env(
        {**GROUP, "KERAS_DISTRIBUTION_JOB_ADDRESSES": "10.0.0.1:1234,10.0.0.2:2345"})
    assert (group.coordinator, group.num_processes, group.process_id) == ("10.0.0.1:1234", 2, 1)
    jax_group = distribution.process_group_from_env(
        {"JAX_COORDINATOR_ADDRESS": "h0:5", "JAX_NUM_PROCESSES": "3", "JAX_PROCESS_ID": "2"})
    assert (jax_group.coordinator, jax_group.num_processes, jax_group.process_id) == ("h0:5", 3, 2)
    assert jax_group.variables == distribution.JAX_VARIABLES
    assert distribution.process_group_from_env(
        {**GROUP, "KERAS_DISTRIBUTION_NUM_PROCESSES": "1",
         "KERAS_DISTRIBUTION_PROCESS_ID": "0"}) is None  # one process: nothing to start


@pytest.mark.parametrize("change, message", [
    ({"KERAS_DISTRIBUTION_PROCESS_ID": "2"},
     "KERAS_DISTRIBUTION_PROCESS_ID, expected 0 .. 1"),
    ({"KERAS_DISTRIBUTION_NUM_PROCESSES": "two"},
     "KERAS_DISTRIBUTION_NUM_PROCESSES, expected an integer >= 1. Received: "),
    ({"KERAS_DISTRIBUTION_JOB_ADDRESSES": "a:1,b:2,c:3"},
     "3 addresses in KERAS_DISTRIBUTION_JOB_ADDRESSES but KERAS_DISTRIBUTION_NUM_PROCESSES=2"),
    ({"KERAS_DISTRIBUTION_PROCESS_ID": ""}, "but not KERAS_DISTRIBUTION_PROCESS_ID"),
    ({"KERAS_DISTRIBUTION_JOB_ADDRESSES": "10.0.0.1"}, "expected host:port of process 0"),
])
def test_a_wrong_process_group_is_one_line(change, message):
    with pytest.raises(ArgumentError, match=message.replace(".", r"\.")) as error:
        distribution.process_group_from_env({**GROUP, **change})
    assert "\n" not in str(error.value)


def test_the_environment_without_distribute_is_refused(monkeypatch):
    # Two processes that each train the whole run into one folder race on its files.
    monkeypatch.setattr(os, "environ", {**os.environ, **GROUP})
    with pytest.raises(ArgumentError, match="process 1 of a 2-process job .* pass --distribute"):
        _distribution_scope(False, verbose=False)


def test_multi_worker_on_tensorflow_is_refused_by_name():
    group = distribution.process_group_from_env(GROUP)
    with pytest.raises(ArgumentError, match="KERAS_BACKEND=jax .* MultiWorkerMirroredStrategy"):
        distribution.check_backend(group)  # the default run's backend is TensorFlow


def test_an_unreachable_coordinator_is_named_after_a_bounded_wait():
    port = free_port()  # nobody listens there
    start = time.monotonic()
    with pytest.raises(ArgumentError, match=f"coordinator 127.0.0.1:{port} .* within 1 s"):
        distribution.wait_for_coordinator(f"127.0.0.1:{port}", timeout=1)
    assert time.monotonic() - start < 10


def test_a_global_batch_the_devices_cannot_split_is_refused():
    distribution.check_global_batch(64, 4)
    with pytest.raises(ArgumentError, match=r"divide by 4 \(e\.g\. 60 or 64\)\. Received: "
                       "batch_size=62"):
        distribution.check_global_batch(62, 4)


# --- Two real processes on 127.0.0.1 -------------------------------------------------

WORKER = textwrap.dedent("""
    import json, sys
    from keras_vit.training import train
    m = train("digits", model=dict(patch_size=4, hidden_size=16, num_layers=1, num_heads=2,
              mlp_dim=32), image_size=8, augment="none", label_smoothing=0.0,
              output_dir=sys.argv[1], epochs=int(sys.argv[2]), batch_size=64,
              distribute=True, jit_compile=False, tensorboard=False, verbose=2)
    print(json.dumps({k: m["config"].get(k) for k in ("processes", "devices", "replicas")}))
""")


def jax_env(**extra):
    return dict(os.environ, KERAS_BACKEND="jax", TF_CPP_MIN_LOG_LEVEL="3",
                PYTHONUNBUFFERED="1", **extra)


# The same job as `keras_vit.pretraining.pretrain` (masked patch prediction, no labels).
PRETRAIN_WORKER = textwrap.dedent("""
    import json, sys
    from keras_vit.pretraining import pretrain
    m = pretrain("digits", model_fields=dict(patch_size=4, hidden_size=16, num_layers=1,
                 num_heads=2, mlp_dim=32), image_size=8, augment="none",
                 output_dir=sys.argv[1], epochs=int(sys.argv[2]), batch_size=64,
                 distribute=True, jit_compile=False, tensorboard=False, verbose=2)
    print(json.dumps({k: m["config"].get(k) for k in ("processes", "devices", "replicas")}))
""")


def start_job(folder, epochs, processes=2, port=None, log_dir=None, worker=WORKER):
    """Starts `processes` workers of one job on 127.0.0.1 (Popen objects)."""
    port = port or free_port()
    log_dir = log_dir or folder.parent
    started = []
    for rank in range(processes):
        env = jax_env(KERAS_DISTRIBUTION_JOB_ADDRESSES=f"127.0.0.1:{port}",
                      KERAS_DISTRIBUTION_NUM_PROCESSES=str(processes),
                      KERAS_DISTRIBUTION_PROCESS_ID=str(rank),
                      KERAS_VIT_COORDINATOR_TIMEOUT="60")
        log = open(log_dir / f"{folder.name}-{rank}-{len(started)}.log", "a")
        started.append(subprocess.Popen(
            [sys.executable, "-c", worker, str(folder), str(epochs)], env=env,
            stdout=log, stderr=subprocess.STDOUT))
    return started


def reap(processes, timeout):
    """Waits for every process up to `timeout` s in all, kills what is left; the codes."""
    deadline = time.monotonic() + timeout
    try:
        for p in processes:
            p.wait(timeout=max(deadline - time.monotonic(), 0.1))
    except subprocess.TimeoutExpired:
        pass
    finally:
        for p in processes:
            if p.poll() is None:
                p.kill()
            p.wait()
    return [p.returncode for p in processes]


def history(folder):
    with open(folder / "history.csv", newline="") as f:
        return list(csv.DictReader(f))


@pytest.mark.slow  # two 2-process jobs: 238 s for both on a loaded 2-core AMD EPYC
def test_two_processes_train_the_one_process_run(tmp_path):
    one = subprocess.Popen([sys.executable, "-c", WORKER, str(tmp_path / "one"), "2"],
                           env=jax_env(), stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                           text=True)
    job = start_job(tmp_path / "two", epochs=2)
    codes = reap(job + [one], timeout=400)
    logs = {p.name: p.read_text()[-3000:] for p in tmp_path.glob("*.log")}
    assert codes == [0, 0, 0], (codes, logs, one.stdout.read()[-3000:])
    ref, two = history(tmp_path / "one"), history(tmp_path / "two")
    assert [r["epoch"] for r in two] == ["1", "2"]  # each epoch once: one writer
    for a, b in zip(ref, two, strict=True):  # global batch i is the one-process batch i
        assert float(b["loss"]) == pytest.approx(float(a["loss"]), rel=1e-5, abs=1e-6)
        assert float(b["accuracy"]) == pytest.approx(float(a["accuracy"]), abs=1e-6)
    assert sorted(os.listdir(tmp_path / "two")) == ["checkpoint", "history.csv",
                                                    "metrics.json", "model.keras"]
    metrics = json.loads((tmp_path / "two" / "metrics.json").read_text())
    assert (metrics["config"]["processes"], metrics["config"]["devices"]) == (2, 2)
    assert len(metrics["segments"]) == 1
    reference = json.loads((tmp_path / "one" / "metrics.json").read_text())
    assert metrics["test_accuracy"] == pytest.approx(reference["test_accuracy"], abs=1e-9)
    assert "2 processes, 2 devices" in logs["two-0-0.log"]
    assert "Distributing" not in logs["two-1-1.log"]  # process 0 alone logs
    assert "Epoch 1/2" not in logs["two-1-1.log"]


@pytest.mark.slow  # a 2-process job beside a 1-process one: 92 s, 2-core AMD EPYC, load 1.5-4
def test_two_processes_pretrain_the_one_process_run(tmp_path):
    one = subprocess.Popen([sys.executable, "-c", PRETRAIN_WORKER, str(tmp_path / "one"), "2"],
                           env=jax_env(), stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                           text=True)
    job = start_job(tmp_path / "two", epochs=2, worker=PRETRAIN_WORKER)
    codes = reap(job + [one], timeout=400)
    logs = {p.name: p.read_text()[-3000:] for p in tmp_path.glob("*.log")}
    assert codes == [0, 0, 0], (codes, logs, one.stdout.read()[-3000:])
    ref, two = history(tmp_path / "one"), history(tmp_path / "two")
    assert [r["epoch"] for r in two] == ["1", "2"]  # each epoch once: one writer
    for a, b in zip(ref, two, strict=True):  # the same corruption of the same global batch
        assert float(b["loss"]) == pytest.approx(float(a["loss"]), rel=1e-5, abs=1e-6)
        assert float(b["patch_accuracy"]) == pytest.approx(float(a["patch_accuracy"]),
                                                           abs=1e-6)
    assert sorted(os.listdir(tmp_path / "two")) == ["checkpoint", "history.csv",
                                                    "metrics.json", "model.keras",
                                                    "pretraining.keras"]
    metrics = json.loads((tmp_path / "two" / "metrics.json").read_text())
    assert (metrics["config"]["processes"], metrics["config"]["devices"]) == (2, 2)
    assert len(metrics["segments"]) == 1
    reference = json.loads((tmp_path / "one" / "metrics.json").read_text())
    assert metrics["test_loss"] == pytest.approx(reference["test_loss"], rel=1e-5)
    assert "2 processes, 2 devices" in logs["two-0-0.log"]
    assert "Distributing" not in logs["two-1-1.log"]  # process 0 alone logs
    assert "Epoch 1/2" not in logs["two-1-1.log"]


@pytest.mark.slow
def test_killing_a_worker_and_rerunning_resumes_from_the_last_epoch(tmp_path):
    folder = tmp_path / "run"
    port = free_port()
    job = start_job(folder, epochs=4, port=port)
    try:
        deadline = time.monotonic() + 300
        while time.monotonic() < deadline and not (folder / "history.csv").exists():
            time.sleep(0.05)
        while time.monotonic() < deadline and len(history(folder)) < 2:
            time.sleep(0.05)
        os.kill(job[1].pid, signal.SIGKILL)  # one worker dies mid-run
    finally:
        reap(job, timeout=150)  # its peer stops (or is killed) too
    done = len(history(folder))
    assert 2 <= done < 4
    codes = reap(start_job(folder, epochs=4), timeout=400)  # the same command again
    assert codes == [0, 0], [p.read_text()[-2000:] for p in tmp_path.glob("*.log")]
    assert [r["epoch"] for r in history(folder)] == ["1", "2", "3", "4"]
    metrics = json.loads((folder / "metrics.json").read_text())
    assert metrics["resumed_from_epoch"] == done


# --- Model parallelism on virtual CPU devices ----------------------------------------

SHARDED = textwrap.dedent("""
    import json
    import keras, numpy as np
    import keras_vit
    from keras_vit.training import model_parallel_distribution

    config = keras_vit.ViTConfig(image_size=(8, 12), patch_size=4, hidden_size=16,
                                 num_layers=2, num_heads=2, mlp_dim=32, num_classes=5,
                                 num_channels=1)
    rng = np.random.default_rng(0)
    x = rng.uniform(0, 255, (8, 8, 12, 1)).astype("float32")
    y = keras.ops.one_hot(rng.integers(0, 5, 8), 5)

    def compiled(model):
        model.compile(optimizer=keras.optimizers.SGD(0.5), jit_compile=True,
                      loss=keras.losses.CategoricalCrossentropy(from_logits=True))
        return model

    plain = compiled(keras_vit.ViT(config))
    for w in plain.weights:  # a non-zero head, so the step moves every weight
        w.assign(rng.normal(0, 0.2, w.shape).astype("float32"))
    weights = [keras.ops.convert_to_numpy(w) for w in plain.weights]
    want_logits = keras.ops.convert_to_numpy(plain(x))
    plain.train_on_batch(x, y)
    want = [keras.ops.convert_to_numpy(w) for w in plain.weights]

    keras.distribution.set_distribution(model_parallel_distribution(2))
    sharded = compiled(keras_vit.ViT(config))
    sharded.set_weights(weights)
    spec = {w.path: list(w.value.sharding.spec) for w in sharded.weights}
    got_logits = keras.ops.convert_to_numpy(sharded.predict(x, batch_size=8, verbose=0))
    sharded.train_on_batch(x, y)
    got = [keras.ops.convert_to_numpy(w) for w in sharded.weights]
    print(json.dumps({
        "logits": float(np.abs(got_logits - want_logits).max()),
        "scale": float(np.abs(want_logits).max()),
        "weights": max(float(np.abs(a - b).max()) for a, b in zip(got, want)),
        "moved": min(float(np.abs(a - b).max()) for a, b in zip(want, weights)),
        "spec": spec}))
""")


def test_model_parallel_equals_the_unsharded_model_on_virtual_cpus():
    pytest.importorskip("jax")
    env = jax_env(XLA_FLAGS="--xla_force_host_platform_device_count=4")
    out = subprocess.run([sys.executable, "-c", SHARDED], env=env, capture_output=True,
                         text=True, timeout=300)
    assert out.returncode == 0, out.stderr[-3000:]
    result = json.loads(out.stdout.strip().splitlines()[-1])
    spec = result["spec"]
    assert spec["transformer_block_1/attention/qkv/kernel"] == [None, "model"]
    assert spec["transformer_block_0/attention/output/kernel"] == ["model", None]
    assert spec["transformer_block_0/mlp/dense_1/kernel"] == [None, "model"]
    assert spec["transformer_block_1/mlp/dense_2/kernel"] == ["model", None]
    assert spec["head/kernel"] == [None, None]  # the rest is replicated
    assert result["logits"] <= 1e-5 * result["scale"]
    assert result["moved"] > 1e-4  # the step changed every weight
    assert result["weights"] <= 1e-5
