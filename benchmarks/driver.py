"""Throughput, memory and MFU of keras_vit against its peers (keras-hub, ZeroModels, timm).

`run_benchmark` is behind `keras-vit benchmark` (a thin command that finds this
folder in a source checkout) and `python -m benchmarks.driver`. Every framework
runs in its own worker process (`workers.py`, under its own interpreter, so
timm can come from a PyTorch environment, keras-hub and ZeroModels from others; see
`make_peer_envs.sh`), built and warmed up once; the driver then interleaves the
workers rep by rep (keras_vit, keras-hub, timm, keras_vit, ...) so that drift
of the machine hits all of them alike, and reports medians and ratios
(`report.py`). A peer that is not installed is a row "skipped: how to enable".

Inference is also reported as a fraction of the machine's matrix-multiply
throughput, measured in the same run on GEMMs of the model's own shapes with
every library at hand (numpy, TF, JAX, torch); on a GPU that fraction of the
bf16 peak is the model FLOPs utilisation.
"""

import dataclasses
import datetime
import json
import os
import pathlib
import platform
import shlex
import statistics
import subprocess
import sys
import tempfile
import time

from benchmarks.configs import (
    CPU_CONFIGS,
    FRAMEWORKS,
    GPU_CONFIGS,
    Runner,
    default_runners,
    dry_run_configs,
    quick_configs,
)
from benchmarks.report import format_table

HERE = os.path.dirname(os.path.abspath(__file__))
CHECKOUT = os.path.dirname(HERE)
WORKER = os.path.join(HERE, "workers.py")
CHECKOUT_DRIVER = pathlib.Path(__file__).resolve()


class _Worker:
    """A worker process speaking one JSON object per line."""

    def __init__(self, runner, config, device, threads):
        self.runner = runner
        self.stderr = tempfile.TemporaryFile(mode="w+")
        spec = dict(
            dataclasses.asdict(config), framework=runner.framework,
            backend=runner.backend, jit_compile=runner.jit_compile, device=device,
            threads=threads,
        )
        env = dict(os.environ, KERAS_BACKEND=runner.backend, TF_CPP_MIN_LOG_LEVEL="2")
        if device == "cpu":
            env["CUDA_VISIBLE_DEVICES"] = ""
            env["JAX_PLATFORMS"] = "cpu"
        else:  # the workers share one GPU: JAX would take 75 % of it at start
            env.setdefault("XLA_PYTHON_CLIENT_PREALLOCATE", "false")
        # The checkout first, so its keras_vit is the one measured.
        env["PYTHONPATH"] = os.pathsep.join(
            p for p in (CHECKOUT, os.environ.get("PYTHONPATH")) if p
        )
        self.command = [runner.python or sys.executable, WORKER, json.dumps(spec)]
        self.process = subprocess.Popen(
            self.command, stdin=subprocess.PIPE, stdout=subprocess.PIPE,
            stderr=self.stderr, text=True, env=env,
        )

    def receive(self):
        line = self.process.stdout.readline()
        if not line:
            self.process.wait()
            return {"error": f"worker exited with status {self.process.returncode}: "
                             f"{self.stderr_tail(2000)}"}
        return json.loads(line)

    def stderr_tail(self, chars=3000):
        """The end of what the worker printed (its traceback when it failed)."""
        self.stderr.seek(0)
        return self.stderr.read()[-chars:]

    def ask(self, **command):
        self.process.stdin.write(json.dumps(command) + "\n")
        self.process.stdin.flush()
        return self.receive()

    def close(self):
        if self.process.poll() is None:
            try:
                self.process.stdin.write(json.dumps({"cmd": "exit"}) + "\n")
                self.process.stdin.flush()
                self.process.wait(timeout=60)
            except (OSError, subprocess.TimeoutExpired):
                self.process.kill()
                self.process.wait()
        self.stderr.close()


def dry_run_runners(runners):
    """The rows a CPU dry run can afford: torch.compile builds C++ kernels for
    minutes there, so timm's compiled row is left out and Keras' torch rows
    with jit_compile=True run eagerly (the same worker code, no compile)."""
    return [
        dataclasses.replace(r, jit_compile="False")
        if r.framework != "timm" and r.backend == "torch" and r.jit_compile == "True" else r
        for r in runners if r.jit_compile != "compile"
    ]


def run_benchmark(configs=None, runners=None, device="cpu", reps=3, threads=None,
                  measure_matmul=True, log=print, on_config=None, time_limit_s=None):
    """Runs the benchmark; returns a dict with one result per (config, runner).

    Args:
        configs: `BenchConfig`s. Defaults to `CPU_CONFIGS` or `GPU_CONFIGS`.
        runners: `Runner`s (the table's rows). Defaults to `default_runners`.
        device: "cpu" or "gpu".
        reps: timed repetitions per row; the table reports their median.
        threads: intra-op threads for every framework. Defaults to the
            number of CPUs.
        measure_matmul: also time each library's matrix products (for the
            fraction of peak) in the inference configurations.
        log: progress printer (None for silence).
        on_config: called with the results so far after each configuration
            (the driver writes its table then, so a run cut short keeps them).
        time_limit_s: no configuration starts after this many seconds; the
            ones left are listed under "not_run" (None: no limit).

    Returns:
        {"configs": [{"config": dict, "rows": [row, ...], "matmul": {...}}],
         "machine": {...}, "date": ..., "reps": reps}; a row has "label",
        "images_per_s" (median), "all" (each rep), "peak_rss_mib", "versions",
        "flops_per_s", "fraction_of_peak", "parameters" (trainable, as the worker
        counted them), or "error" when it could not run.
    """
    if device not in ("cpu", "gpu"):
        raise ValueError(f"Received an invalid value for argument `device`, expected "
                         f"'cpu' or 'gpu'. Received: device={device!r}")
    if not isinstance(reps, int) or reps < 1:
        raise ValueError(f"Received an invalid value for argument `reps`, expected a "
                         f"positive integer. Received: reps={reps!r}")
    configs = configs or (GPU_CONFIGS if device == "gpu" else CPU_CONFIGS)
    runners = runners or default_runners(device)
    threads = threads or os.cpu_count()
    log = log or (lambda *a, **k: None)
    results = {"machine": machine_info(), "device": device, "reps": reps,
               "threads": threads, "date": datetime.datetime.now().isoformat(" ", "seconds"),
               "configs": [], "not_run": []}
    started = time.monotonic()
    for config in configs:
        if time_limit_s is not None and time.monotonic() - started > time_limit_s:
            results["not_run"].append(config.name)
            log(f"== {config.name}: not run, past the {time_limit_s:.0f} s time limit")
            continue
        log(f"== {config.name}: batch {config.batch_size}, {config.steps} steps/rep, {reps} reps")
        load = _load_average()
        # Workers import, build and warm up side by side (most of that is
        # single-threaded tracing); timing starts once all are ready.
        rows, workers = [], []
        chosen = [r for r in runners
                  if config.frameworks is None or r.framework in config.frameworks]
        for runner in chosen:
            try:
                workers.append(_Worker(runner, config, device, threads))
            except OSError:  # no interpreter at runner.python
                workers.append({"skipped": f"no interpreter at {runner.python}"})
        try:
            for i, (runner, worker) in enumerate(zip(chosen, workers)):
                ready = worker if isinstance(worker, dict) else worker.receive()
                row = {"label": runner.label, "runner": dataclasses.asdict(runner), "all": [],
                       "matmul": {}}
                if "skipped" in ready:
                    row["skipped"] = (ready["skipped"] if ready.get("unsupported")
                                      else f"{ready['skipped']}; {how_to_enable(runner)}")
                    log(f"   {runner.label}: skipped: {row['skipped']}")
                elif "error" in ready:
                    row["error"] = ready["error"].strip().splitlines()[-1][:300]
                    log(f"   {runner.label}: failed ({row['error']})")
                    if isinstance(worker, _Worker):
                        log(worker.stderr_tail())
                if "skipped" in ready or "error" in ready:
                    if isinstance(worker, _Worker):
                        worker.close()
                    workers[i] = None
                else:
                    row.update(versions=ready["versions"], setup_s=ready["setup_s"],
                               jit=ready.get("jit"), parameters=ready.get("parameters"))
                    log(f"   {runner.label}: ready in {ready['setup_s']:.1f} s")
                rows.append(row)
            for rep in range(reps):
                for row, worker in zip(rows, workers):
                    if worker is None:
                        continue
                    answer = worker.ask(cmd="measure")
                    if "error" in answer:
                        row["error"] = answer["error"].strip().splitlines()[-1][:300]
                        log(f"   {row['label']}: failed ({row['error']})\n"
                            f"{worker.stderr_tail()}")
                        worker.close()
                        workers[workers.index(worker)] = None
                        continue
                    row["all"].append(answer["images_per_s"])
                    row["peak_rss_mib"] = answer["peak_rss_mib"]
                    row["peak_device_mib"] = answer.get("peak_device_mib")
                    # On a GPU every table gets the bf16 peak (MFU of training too).
                    if measure_matmul and (config.mode == "inference" or device == "gpu"):
                        for lib, value in worker.ask(cmd="matmul").items():
                            row["matmul"].setdefault(lib, []).append(value)
                log(f"   rep {rep + 1}/{reps}: " + ", ".join(
                    f"{r['label']} {r['all'][-1]:.2f}" for r in rows if r["all"]))
        finally:
            for worker in workers:
                if isinstance(worker, _Worker):
                    worker.close()
        matmul = {}
        for row in rows:
            for lib, values in row.pop("matmul").items():
                matmul[lib] = max(matmul.get(lib, 0.0), statistics.median(values))
        peak = max(matmul.values()) if matmul else None
        for row in rows:
            if row["all"]:
                row["images_per_s"] = statistics.median(row["all"])
                row["flops_per_s"] = row["images_per_s"] * config.step_flops()
                row["fraction_of_peak"] = row["flops_per_s"] / peak if peak else None
        results["configs"].append({"config": dataclasses.asdict(config), "rows": rows,
                                   "matmul": matmul, "peak_flops_per_s": peak,
                                   "load": (load, _load_average())})
        if on_config is not None:
            on_config(results)
    return results



def how_to_enable(runner):
    """What a user does to get a skipped row: make the peers' environments or name one."""
    if runner.framework == "keras_vit":
        return (f"install {runner.backend} beside keras_vit (pip install "
                f"\".[{'jax' if runner.backend == 'jax' else 'tf'}]\"), or pass "
                "--python keras_vit=PATH")
    return (f"to enable: benchmarks/make_peer_envs.sh (makes {ENVS}/), or pass "
            f"--python {runner.framework}=PATH to an interpreter that has it")


# Where benchmarks/make_peer_envs.sh puts the peers' virtual environments.
ENVS = os.path.join("benchmarks", "envs")
PEER_ENVS = {"keras_hub": "keras-hub", "zeromodels": "zeromodels", "timm": "timm"}


def default_pythons():
    """The peers' interpreters made by make_peer_envs.sh, where they exist."""
    pythons = {}
    for framework, name in PEER_ENVS.items():
        python = os.path.join(CHECKOUT, ENVS, name, "bin", "python")
        if os.path.exists(python):
            pythons[framework] = python
    return pythons


def _load_average():
    """The 1-minute load average: other work on the machine skews every row."""
    try:
        return round(os.getloadavg()[0], 1)
    except OSError:
        return None


def machine_info():
    """CPU model, cores, memory and OS of this machine."""
    cpu = platform.processor() or platform.machine()
    memory = None
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    cpu = line.split(":", 1)[1].strip()
                    break
        with open("/proc/meminfo") as f:
            memory = int(f.readline().split()[1]) / 2**20
    except OSError:
        pass
    flags = ""
    try:
        with open("/proc/cpuinfo") as f:
            text = f.read()
        simd = [s for s in ("avx512f", "avx2", "fma") if f" {s}" in text]
        flags = "+".join(simd)
    except OSError:
        pass
    return {"cpu": cpu, "simd": flags, "cpus": os.cpu_count(),
            "memory_gib": round(memory, 1) if memory else None,
            "os": platform.platform(), "python": platform.python_version()}



def parse_pythons(values):
    """["timm=/path/python", ...] -> {"timm": "/path/python"}."""
    pythons = {}
    for value in values or ():
        name, sep, path = value.partition("=")
        if not sep or name not in FRAMEWORKS:
            raise ValueError(
                "Received an invalid value for argument `--python`, expected "
                f"FRAMEWORK=PATH with FRAMEWORK one of {', '.join(FRAMEWORKS)}. "
                f"Received: {value!r}")
        if not os.path.exists(path):
            raise FileNotFoundError(f"--python {name}: no interpreter at {path}")
        pythons[name] = path
    return pythons


def parse_runners(values, pythons):
    """["keras_vit:jax", "timm:compile", "keras_hub:tensorflow:True"] -> `Runner`s."""
    runners = []
    for value in values:
        parts = value.split(":")
        if parts[0] not in FRAMEWORKS or len(parts) > 3:
            raise ValueError(
                "Received an invalid value for argument `--runner`, expected "
                f"FRAMEWORK[:BACKEND[:JIT]] with FRAMEWORK one of {', '.join(FRAMEWORKS)}"
                f" (timm: timm[:eager|:compile]). Received: {value!r}")
        if parts[0] == "timm":
            runners.append(Runner("timm", "torch", parts[1] if len(parts) > 1 else "eager",
                                  python=pythons.get("timm")))
        else:
            runners.append(Runner(parts[0], *parts[1:], python=pythons.get(parts[0])))
    return runners


def main(args):
    """Runs the benchmark from parsed `keras-vit benchmark` arguments; returns 0."""
    pythons = {**default_pythons(), **parse_pythons(args.python)}
    configs = GPU_CONFIGS if args.device == "gpu" else CPU_CONFIGS
    if args.only:
        wanted = {"train": "train", "inference": "inference"}[args.only]
        configs = tuple(c for c in configs if c.mode == wanted)
    if args.quick:
        configs = quick_configs(configs)
    if args.dry_run:
        configs = dry_run_configs(configs)
    runners = (parse_runners(args.runner, pythons) if args.runner
               else default_runners(args.device, pythons))
    if args.dry_run and not args.allow_cpu_compile:
        runners = dry_run_runners(runners)
    device = "cpu" if args.dry_run else args.device

    def write(results):
        if args.dry_run:
            results["device"] = f"{args.device} (dry run on the CPU, toy size)"
        table = format_table(results, command=command_line(args))
        if args.output:
            with open(args.output, "w") as f:
                f.write(table)
        if args.json:
            with open(args.json, "w") as f:
                json.dump(results, f, indent=1)
        return table

    results = run_benchmark(configs, runners, device=device, reps=args.reps,
                            threads=args.threads, on_config=write,
                            time_limit_s=getattr(args, "time_limit", None))
    print(write(results))
    return 0


def command_line(args):
    """The `keras-vit benchmark ...` command that repeats this run."""
    words = ["keras-vit", "benchmark"]
    for action in ("device", "reps", "only", "threads", "time_limit"):
        value = getattr(args, action, None)
        if value is not None and not (action, value) in (("device", "cpu"), ("reps", 3)):
            words += [f"--{action.replace('_', '-')}", f"{value:g}" if action == "time_limit"
                      else str(value)]
    for flag in ("quick", "dry_run", "allow_cpu_compile"):
        if getattr(args, flag):
            words.append("--" + flag.replace("_", "-"))
    for runner in args.runner or ():
        words += ["--runner", runner]
    for python in args.python or ():
        words += ["--python", python]
    for flag in ("output", "json"):
        if getattr(args, flag):
            words += [f"--{flag}", getattr(args, flag)]
    return " ".join(shlex.quote(w) for w in words)


def add_arguments(parser):
    """The `keras-vit benchmark` options."""
    parser.add_argument("--device", choices=("cpu", "gpu"), default="cpu",
                        help="cpu: float32; gpu: bf16 with KERAS_BACKEND=jax and MFU")
    parser.add_argument("--reps", type=int, default=3, help="timed repetitions (median)")
    parser.add_argument("--quick", action="store_true", help="fewer steps per repetition")
    parser.add_argument("--only", choices=("train", "inference"), help="one configuration")
    parser.add_argument("--runner", action="append", metavar="FRAMEWORK[:BACKEND[:JIT]]",
                        help="a row, e.g. keras_vit:jax, keras_hub:tensorflow:True, zeromodels, "
                             "timm:compile (repeatable; default: the standard rows)")
    parser.add_argument("--python", action="append", metavar="FRAMEWORK=PATH",
                        help="interpreter for a framework's worker, e.g. "
                             "timm=benchmarks/envs/timm/bin/python (repeatable; default: "
                             "the environments of make_peer_envs.sh where they exist, "
                             "else this interpreter)")
    parser.add_argument("--threads", type=int, help="threads per framework (default: all CPUs)")
    parser.add_argument("--dry-run", action="store_true",
                        help="run the mode's code paths at toy size on the CPU")
    parser.add_argument("--allow-cpu-compile", action="store_true",
                        help="with --dry-run, keep torch.compile (needs a C++ compiler)")
    parser.add_argument("--time-limit", type=float, metavar="SECONDS",
                        help="start no configuration after this many seconds (the "
                             "ones left are listed as not run); default: no limit")
    parser.add_argument("--output", help="write the markdown table here")
    parser.add_argument("--json", help="write the raw results here")


if __name__ == "__main__":
    import argparse

    _parser = argparse.ArgumentParser(prog="python -m benchmarks.driver")
    add_arguments(_parser)
    sys.exit(main(_parser.parse_args()))
