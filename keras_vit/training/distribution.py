"""Training past one machine: JAX's distributed runtime and the model-parallel layout.

Nothing here moves data or reduces gradients itself; JAX and Keras do:

- **Many processes** (one per host): the process group comes from the environment,
  `KERAS_DISTRIBUTION_JOB_ADDRESSES` / `_NUM_PROCESSES` / `_PROCESS_ID` (what
  `keras.distribution.initialize` reads) or JAX's own `JAX_COORDINATOR_ADDRESS` /
  `JAX_NUM_PROCESSES` / `JAX_PROCESS_ID`, and `start_process_group` starts JAX's
  distributed runtime with it (`jax.distributed.initialize`; gloo collectives on CPUs).
  `keras.distribution.DataParallel` then splits each global batch over every device of
  every process: its `distribute_dataset` rebatches the tf.data pipeline to the
  per-process batch and shards it by process, so global batch i is the one-process
  batch i (no example seen twice, none skipped) and the loss and metrics are computed
  on the global batch. Process 0 alone writes the run folder (`is_writer`); every
  process restores from it, so the folder must be on a file system all hosts share.
- **Model parallelism** (one host, H/14 and larger): `vit_layout_map` shards the q/k/v,
  attention-output and MLP kernels over a "model" mesh axis (Megatron's column/row
  split) and the batch over "batch"; `model_parallel_distribution(n)` is the
  `keras.distribution.ModelParallel` over all devices with n of them per model.

TensorFlow's `MultiWorkerMirroredStrategy` is refused by name (`check_backend`): under
Keras 3 it does not train this model (keras-team/keras#20585), and JAX does.
"""

import contextlib
import dataclasses
import os
import socket
import time

import keras

from keras_vit.errors import ArgumentError

KERAS_VARIABLES = ("KERAS_DISTRIBUTION_JOB_ADDRESSES", "KERAS_DISTRIBUTION_NUM_PROCESSES",
                   "KERAS_DISTRIBUTION_PROCESS_ID")
JAX_VARIABLES = ("JAX_COORDINATOR_ADDRESS", "JAX_NUM_PROCESSES", "JAX_PROCESS_ID")
# Seconds a process waits for the coordinator (and the coordinator for the others).
TIMEOUT_VARIABLE = "KERAS_VIT_COORDINATOR_TIMEOUT"
DEFAULT_TIMEOUT = 300

# The ViT's sharded kernels, by variable path (models/ names the layers): column-split
# into the "model" axis, then row-split out of it, so each block needs one all-reduce
# after attention and one after the MLP. Everything else is replicated.
VIT_LAYOUT = {
    r".*attention/qkv/kernel": (None, "model"),
    r".*attention/qkv/bias": ("model",),
    r".*attention/output/kernel": ("model", None),
    r".*mlp/dense_1/kernel": (None, "model"),
    r".*mlp/dense_1/bias": ("model",),
    r".*mlp/dense_2/kernel": ("model", None),
}


@dataclasses.dataclass(frozen=True)
class ProcessGroup:
    """One process's place in a multi-process job, as the environment gives it.

    Args:
        coordinator: "host:port" of process 0's coordination service.
        num_processes: int, processes in the job (one per host).
        process_id: int, this process, 0 .. num_processes - 1 (0 coordinates and writes).
        variables: the names of the environment variables it came from (for messages).
    """

    coordinator: str
    num_processes: int
    process_id: int
    variables: tuple = KERAS_VARIABLES


def _integer(environ, name, low=0):
    text = environ[name].strip()
    try:
        value = int(text)
    except ValueError:
        value = None
    if value is None or value < low:
        raise ArgumentError(
            f"Received an invalid value for the environment variable {name}, expected an "
            f"integer >= {low}. Received: {name}={text!r}")
    return value


def process_group_from_env(environ=None):
    """The `ProcessGroup` the environment describes, or None when it describes none.

    `KERAS_DISTRIBUTION_*` win over `JAX_*`; either set must be complete, with a
    process id below the process count and, where every job address is listed, as many
    addresses as processes. A group of one process is None (nothing to start).
    """
    environ = os.environ if environ is None else environ
    for names in (KERAS_VARIABLES, JAX_VARIABLES):
        present = [n for n in names if environ.get(n, "").strip()]
        if not present:
            continue
        missing = [n for n in names if n not in present]
        if missing:
            raise ArgumentError(
                f"The environment sets {', '.join(present)} but not {', '.join(missing)}: "
                "a multi-process job needs all three on every host (see the README, "
                "'Past one machine').")
        addresses = [a.strip() for a in environ[names[0]].split(",") if a.strip()]
        count = _integer(environ, names[1], low=1)
        process = _integer(environ, names[2])
        if len(addresses) > 1 and len(addresses) != count:
            raise ArgumentError(
                f"Received {len(addresses)} addresses in {names[0]} but {names[1]}={count}: "
                "list every process's address or only the coordinator's. Received: "
                f"{names[0]}={environ[names[0]]!r}")
        if process >= count:
            raise ArgumentError(
                f"Received an invalid value for the environment variable {names[2]}, "
                f"expected 0 .. {count - 1} ({names[1]}={count}). Received: "
                f"{names[2]}={process}")
        if ":" not in addresses[0]:
            raise ArgumentError(
                f"Received an invalid value for the environment variable {names[0]}, "
                f"expected host:port of process 0. Received: {names[0]}={addresses[0]!r}")
        if count == 1:
            return None
        return ProcessGroup(addresses[0], count, process, names)
    return None


def check_backend(group):
    """Refuses a multi-process job on a backend that cannot run one with Keras 3."""
    backend = keras.backend.backend()
    if backend == "jax":
        return
    if backend == "tensorflow":
        raise ArgumentError(
            f"{group.variables[1]}={group.num_processes} asks for a multi-process job, "
            "which keras-vit runs on JAX's distributed runtime: set KERAS_BACKEND=jax on "
            "every host. TensorFlow's MultiWorkerMirroredStrategy is not used: under "
            "Keras 3 it does not train Keras models (keras-team/keras#20585).")
    raise ArgumentError(
        f"{group.variables[1]}={group.num_processes} asks for a multi-process job, which "
        f"keras-vit runs on JAX's distributed runtime; the {backend} backend has none "
        "here. Set KERAS_BACKEND=jax on every host.")


def wait_for_coordinator(address, timeout):
    """Waits up to `timeout` seconds for `address` (host:port) to accept a connection;
    a process other than 0 checks this first, because JAX aborts the process (no
    Python exception) when it cannot reach the coordinator."""
    host, _, port = address.rpartition(":")
    deadline = time.monotonic() + timeout
    while True:
        try:
            with socket.create_connection((host, int(port)), timeout=1):
                return
        except OSError:
            if time.monotonic() >= deadline:
                raise ArgumentError(
                    f"The coordinator {address} (process 0) did not answer within "
                    f"{timeout:g} s: start process 0 first, or check the address and that "
                    f"its port is open (set {TIMEOUT_VARIABLE} to wait longer).") from None
            time.sleep(0.25)


def start_process_group(group, timeout=None):
    """Starts JAX's distributed runtime for `group` (once per process) and checks that
    it formed the job the environment describes; returns `jax.process_count()`."""
    import jax  # the JAX backend's own runtime; only a multi-process job needs it

    check_backend(group)
    if jax.distributed.is_initialized():
        return jax.process_count()
    if timeout is None:
        timeout = float(os.environ.get(TIMEOUT_VARIABLE, DEFAULT_TIMEOUT))
    if group.process_id != 0:
        wait_for_coordinator(group.coordinator, timeout)
    jax.distributed.initialize(
        coordinator_address=group.coordinator, num_processes=group.num_processes,
        process_id=group.process_id, initialization_timeout=max(int(timeout), 1))
    if jax.process_count() != group.num_processes:  # the runtime is the arbiter
        raise ArgumentError(
            f"{group.variables[1]}={group.num_processes} but JAX formed a job of "
            f"{jax.process_count()} processes at {group.coordinator}")
    return jax.process_count()


def process_count():
    """Processes in the job: 1 unless JAX's distributed runtime was started."""
    if keras.backend.backend() != "jax":
        return 1
    import jax

    return jax.process_count()


def is_writer():
    """True in the process that writes logs and the run folder: process 0 (the only
    process of a one-process run)."""
    if keras.backend.backend() != "jax":
        return True
    import jax

    return jax.process_index() == 0


def barrier(name):
    """Waits until every process reaches `name` (nothing to wait for in one process)."""
    if process_count() > 1:
        from jax.experimental import multihost_utils

        multihost_utils.sync_global_devices(name)


@contextlib.contextmanager
def writing_alone():
    """For what process 0 does alone (saving): no distribution while it runs.

    Under a distribution every variable Keras creates is placed on all processes'
    devices, which is a collective; Keras' saving creates one (a reference optimizer),
    so a save by process 0 alone would wait for the others. The model's own replicated
    variables are read locally either way.
    """
    current = keras.distribution.distribution()
    keras.distribution.set_distribution(None)
    try:
        yield
    finally:
        keras.distribution.set_distribution(current)


def check_global_batch(batch_size, data_parallel):
    """Refuses a global batch that `data_parallel` replicas cannot split evenly."""
    if batch_size % data_parallel:
        ways = sorted({data_parallel * max(1, batch_size // data_parallel),
                       data_parallel * (batch_size // data_parallel + 1)})
        raise ArgumentError(
            f"Received an invalid value for argument `batch_size`: the global batch is "
            f"split evenly over {data_parallel} data-parallel replicas, so it must divide "
            f"by {data_parallel} (e.g. {' or '.join(map(str, ways))}). Received: "
            f"batch_size={batch_size}")


def vit_layout_map(device_mesh):
    """A `keras.distribution.LayoutMap` over `device_mesh` (axes "batch", "model") that
    shards each block's q/k/v, output and MLP kernels over "model" (`VIT_LAYOUT`)."""
    layout_map = keras.distribution.LayoutMap(device_mesh)
    for path, axes in VIT_LAYOUT.items():
        layout_map[path] = axes
    return layout_map


def model_parallel_distribution(model_parallel, devices=None):
    """`keras.distribution.ModelParallel` over `devices` (default: all) as a
    (batch, model) mesh with `model_parallel` devices per model, laid out by
    `vit_layout_map`; the batch is split over the other axis.

    Example:

    >>> keras.distribution.set_distribution(model_parallel_distribution(2))
    >>> model = keras_vit.ViTHuge14()  # kernels created sharded over 2 devices
    """
    devices = list(devices or keras.distribution.list_devices())
    if (isinstance(model_parallel, bool) or not isinstance(model_parallel, int)
            or model_parallel < 1 or len(devices) % model_parallel):
        raise ArgumentError(
            "Received an invalid value for argument `model_parallel`, expected a positive "
            f"divisor of the {len(devices)} devices. Received: model_parallel="
            f"{model_parallel!r}")
    mesh = keras.distribution.DeviceMesh(
        (len(devices) // model_parallel, model_parallel), ["batch", "model"], devices)
    return keras.distribution.ModelParallel(layout_map=vit_layout_map(mesh),
                                            batch_dim_name="batch")
