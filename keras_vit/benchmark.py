"""Throughput, memory and MFU of keras_vit against its peers (keras-hub, timm).

`run_benchmark` is the library function behind `keras-vit benchmark` and
`benchmarks/bench.py`. Every framework runs in its own worker process (its own
interpreter, so timm can come from a PyTorch environment and keras-hub from
another), built and warmed up once; the driver then interleaves the workers
rep by rep (keras_vit, keras-hub, timm, keras_vit, ...) so that drift of the
machine hits all of them alike, and reports medians and ratios.

What is timed is what a user runs: `model.compile(AdamW, loss)` then
`model.fit(x, y, batch_size=...)`, and `model.predict(x)`; for timm the usual
PyTorch loop (`loss.backward(); optimizer.step()`) and `model(x)` under
`torch.inference_mode()`. Inference is also reported as a fraction of the
machine's matrix-multiply throughput, measured in the same run on GEMMs of
the model's own shapes with every library at hand (numpy, TF, JAX, torch);
on a GPU that fraction of the bf16 peak is the model FLOPs utilisation.

This file is also the worker script: `python benchmark.py --worker JSON`
needs nothing but the standard library at import time, so it runs under any
interpreter whether or not keras_vit is installed there.
"""

import dataclasses
import datetime
import json
import os
import platform
import resource
import shlex
import statistics
import subprocess
import sys
import tempfile
import time


@dataclasses.dataclass(frozen=True)
class BenchConfig:
    """One benchmarked configuration (the model and how it is run).

    Args:
        name: label in the table.
        mode: "train" (compile + fit) or "inference" (predict).
        image_size, patch_size, hidden_size, num_layers, num_heads, mlp_dim,
            num_classes: the ViT.
        batch_size: images per step.
        steps: steps (batches) per timed repetition.
        warmup_steps: untimed steps after building (tracing, compilation).
        dtype: "float32" or "bfloat16" (mixed precision: bf16 compute,
            float32 weights, softmax and LayerNorm).
    """

    name: str
    mode: str
    image_size: int
    patch_size: int
    hidden_size: int
    num_layers: int
    num_heads: int
    mlp_dim: int
    num_classes: int
    batch_size: int
    steps: int
    warmup_steps: int = 1
    dtype: str = "float32"

    def forward_flops(self):
        """Multiply-add FLOPs (2 per MAC) of one image's forward pass.

        Counts every matrix product: the patch embedding, per block q/k/v,
        the two attention products, the output projection and the MLP, and
        the head. Element-wise work (LayerNorm, GELU, softmax) is left out,
        as in the usual MFU accounting (PaLM, appendix B).
        """
        n = (self.image_size // self.patch_size) ** 2
        t, d, m = n + 1, self.hidden_size, self.mlp_dim
        patch = 2 * n * (self.patch_size**2 * 3) * d
        block = 2 * t * d * 3 * d + 2 * 2 * t * t * d + 2 * t * d * d + 2 * 2 * t * d * m
        return patch + self.num_layers * block + 2 * d * self.num_classes

    def step_flops(self):
        """FLOPs of one image in this mode: forward, or forward + backward (3x)."""
        return self.forward_flops() * (3 if self.mode == "train" else 1)


@dataclasses.dataclass(frozen=True)
class Runner:
    """One row of the table: a framework, its backend and how it compiles.

    Args:
        framework: "keras_vit", "keras_hub" or "timm".
        backend: Keras backend ("tensorflow", "jax", "torch"), or "torch" for timm.
        jit_compile: for Keras, the `jit_compile` passed to `compile` ("auto"
            is what a user gets); for timm, "compile" wraps the model in
            `torch.compile`, anything else runs eagerly.
        python: the interpreter that runs the worker. Defaults to this one.
    """

    framework: str
    backend: str = "tensorflow"
    jit_compile: str = "auto"
    python: str = None

    @property
    def label(self):
        if self.framework == "timm":
            return "timm (torch.compile)" if self.jit_compile == "compile" else "timm (eager)"
        jit = "" if self.jit_compile == "auto" else f", jit_compile={self.jit_compile}"
        return f"{self.framework} ({self.backend}{jit})"


FRAMEWORKS = ("keras_vit", "keras_hub", "timm")

CPU_CONFIGS = (
    # CIFAR-sized training: 32x32, patch 4, width 192, depth 6, heads 3, MLP 768.
    BenchConfig("CIFAR-sized training", "train", 32, 4, 192, 6, 3, 768, 10,
                batch_size=128, steps=3, warmup_steps=2),
    # ViT-B/16 at 224, predict.
    BenchConfig("ViT-B/16 inference @224", "inference", 224, 16, 768, 12, 12, 3072, 1000,
                batch_size=8, steps=2, warmup_steps=1),
)
GPU_CONFIGS = (
    BenchConfig("ViT-B/16 training @224, bf16", "train", 224, 16, 768, 12, 12, 3072, 1000,
                batch_size=256, steps=10, warmup_steps=3, dtype="bfloat16"),
    BenchConfig("ViT-B/16 inference @224, bf16", "inference", 224, 16, 768, 12, 12, 3072,
                1000, batch_size=512, steps=10, warmup_steps=2, dtype="bfloat16"),
)


def default_runners(device="cpu", pythons=None):
    """The rows benchmarked by default on a "cpu" or a "gpu"."""
    pythons = pythons or {}
    py = pythons.get
    if device == "gpu":
        return [
            Runner("keras_vit", "jax", python=py("keras_vit")),
            Runner("keras_hub", "jax", python=py("keras_hub")),
            Runner("timm", "torch", "eager", python=py("timm")),
            Runner("timm", "torch", "compile", python=py("timm")),
        ]
    return [
        Runner("keras_vit", "tensorflow", python=py("keras_vit")),
        Runner("keras_vit", "jax", python=py("keras_vit")),
        Runner("keras_hub", "tensorflow", python=py("keras_hub")),
        Runner("keras_hub", "tensorflow", "True", python=py("keras_hub")),
        Runner("timm", "torch", "eager", python=py("timm")),
    ]


def quick_configs(configs):
    """Fewer steps per repetition, for `--quick`."""
    return tuple(
        dataclasses.replace(c, steps=max(1, c.steps // 2), warmup_steps=1) for c in configs
    )


def dry_run_configs(configs):
    """The same code paths at a toy size, to check a mode on a machine that lacks it."""
    return tuple(
        dataclasses.replace(
            c, image_size=32, patch_size=8, hidden_size=32, num_layers=2, num_heads=2,
            mlp_dim=64, num_classes=10, batch_size=4, steps=1, warmup_steps=1,
        )
        for c in configs
    )


# ---------------------------------------------------------------------------
# Driver


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
        # The package's parent first, so a source checkout's keras_vit is used.
        package_root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
        env["PYTHONPATH"] = os.pathsep.join(
            p for p in (package_root, os.environ.get("PYTHONPATH")) if p
        )
        self.command = [runner.python or sys.executable, os.path.abspath(__file__),
                        "--worker", json.dumps(spec)]
        self.process = subprocess.Popen(
            self.command, stdin=subprocess.PIPE, stdout=subprocess.PIPE,
            stderr=self.stderr, text=True, env=env,
        )

    def receive(self):
        line = self.process.stdout.readline()
        if not line:
            self.process.wait()
            self.stderr.seek(0)
            tail = self.stderr.read()[-2000:]
            return {"error": f"worker exited with status {self.process.returncode}: {tail}"}
        return json.loads(line)

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


def run_benchmark(configs=None, runners=None, device="cpu", reps=3, threads=None,
                  measure_matmul=True, log=print):
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

    Returns:
        {"configs": [{"config": dict, "rows": [row, ...], "matmul": {...}}],
         "machine": {...}, "date": ..., "reps": reps}; a row has "label",
        "images_per_s" (median), "all" (each rep), "peak_rss_mib", "versions",
        "flops_per_s", "fraction_of_peak", or "error" when it could not run.
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
               "configs": []}
    for config in configs:
        log(f"== {config.name}: batch {config.batch_size}, {config.steps} steps/rep, {reps} reps")
        load = _load_average()
        # Workers import, build and warm up side by side (most of that is
        # single-threaded tracing); timing starts once all are ready.
        rows, workers = [], []
        for runner in runners:
            try:
                workers.append(_Worker(runner, config, device, threads))
            except OSError as error:  # e.g. no interpreter at runner.python
                workers.append(f"cannot start {runner.python}: {error}")
        try:
            for i, (runner, worker) in enumerate(zip(runners, workers)):
                ready = {"error": worker} if isinstance(worker, str) else worker.receive()
                row = {"label": runner.label, "runner": dataclasses.asdict(runner), "all": [],
                       "matmul": {}}
                if "error" in ready:
                    row["error"] = ready["error"].strip().splitlines()[-1][:300]
                    log(f"   {runner.label}: skipped ({row['error']})")
                    if not isinstance(worker, str):
                        worker.close()
                    workers[i] = None
                else:
                    row.update(versions=ready["versions"], setup_s=ready["setup_s"],
                               jit=ready.get("jit"))
                    log(f"   {runner.label}: ready in {ready['setup_s']:.1f} s")
                rows.append(row)
            for rep in range(reps):
                for row, worker in zip(rows, workers):
                    if worker is None:
                        continue
                    answer = worker.ask(cmd="measure")
                    if "error" in answer:
                        row["error"] = answer["error"].strip().splitlines()[-1][:300]
                        worker.close()
                        workers[workers.index(worker)] = None
                        continue
                    row["all"].append(answer["images_per_s"])
                    row["peak_rss_mib"] = answer["peak_rss_mib"]
                    row["peak_device_mib"] = answer.get("peak_device_mib")
                    if measure_matmul and config.mode == "inference":
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
    return results


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


def format_table(results, command=None):
    """The results as markdown: a header on the machine, then one table per config."""
    m = results["machine"]
    lines = [
        f"- Date: {results['date']}",
        f"- Machine: {m['cpu']} ({m['simd']}), {m['cpus']} CPUs, {m['memory_gib']} GiB RAM, "
        f"{m['os']}, Python {m['python']}; device {results['device']}, "
        f"{results['threads']} threads per framework",
        f"- Repetitions: {results['reps']} (interleaved; median shown, min-max beside it)",
    ]
    if command:
        lines.append(f"- Command: `{command}`")
    versions = {}
    for c in results["configs"]:
        for row in c["rows"]:
            versions.update(row.get("versions") or {})
    if versions:
        lines.append("- Versions: " + ", ".join(f"{k} {v}" for k, v in sorted(versions.items())))
    for c in results["configs"]:
        cfg = c["config"]
        lines += ["", f"### {cfg['name']}", "",
                  f"{cfg['image_size']}x{cfg['image_size']}, patch {cfg['patch_size']}, width "
                  f"{cfg['hidden_size']}, depth {cfg['num_layers']}, heads {cfg['num_heads']}, "
                  f"MLP {cfg['mlp_dim']}, {cfg['num_classes']} classes, batch "
                  f"{cfg['batch_size']}, {cfg['dtype']}, {cfg['steps']} steps per rep; "
                  f"{BenchConfig(**cfg).forward_flops() / 1e9:.3g} GFLOPs per image forward."]
        if c.get("load"):
            lines.append(f"Load average (1 min) at the start and end: {c['load'][0]} and "
                         f"{c['load'][1]} on {m['cpus']} CPUs.")
        if c["matmul"]:
            lines.append("Matrix-multiply throughput on the model's GEMM shapes: " + ", ".join(
                f"{lib} {v / 1e9:.1f}" for lib, v in sorted(c["matmul"].items()))
                + f" GFLOP/s; peak = {c['peak_flops_per_s'] / 1e9:.1f} GFLOP/s.")
        peers = [r for r in c["rows"] if r.get("images_per_s")
                 and r["runner"]["framework"] != "keras_vit"]
        best_peer = max(peers, key=lambda r: r["images_per_s"]) if peers else None
        ours = [r for r in c["rows"] if r.get("images_per_s")
                and r["runner"]["framework"] == "keras_vit"]
        head = "| framework | images/s (median) | min-max | vs fastest peer | peak RSS MiB |"
        rule = "|---|---:|---:|---:|---:|"
        device_memory = any(r.get("peak_device_mib") for r in c["rows"])
        if device_memory:
            head += " peak GPU MiB |"
            rule += "---:|"
        if c["matmul"]:
            head += " GFLOP/s | % of matmul peak |"
            rule += "---:|---:|"
        lines += ["", head, rule]
        for row in c["rows"]:
            if not row.get("images_per_s"):
                lines.append(f"| {row['label']} | not run: {row.get('error', 'no result')} |")
                continue
            ratio = (f"{row['images_per_s'] / best_peer['images_per_s']:.2f}x"
                     if best_peer else "-")
            line = (f"| {row['label']} | {row['images_per_s']:.2f} | "
                    f"{min(row['all']):.2f}-{max(row['all']):.2f} | {ratio} | "
                    f"{row['peak_rss_mib']:.0f} |")
            if device_memory:
                line += f" {row.get('peak_device_mib') or 0:.0f} |"
            if c["matmul"]:
                line += (f" {row['flops_per_s'] / 1e9:.1f} | "
                         f"{100 * row['fraction_of_peak']:.0f} % |")
            lines.append(line)
        if best_peer and ours:
            best = max(ours, key=lambda r: r["images_per_s"])
            lines += ["", f"Fastest keras_vit: {best['label']} at "
                      f"{best['images_per_s'] / best_peer['images_per_s']:.2f}x the fastest "
                      f"peer, {best_peer['label']}."]
    return "\n".join(lines) + "\n"


# ---------------------------------------------------------------------------
# Workers (run in their own process; only the standard library at import time)


def _peak_rss_mib():
    """This process's peak resident memory (VmHWM; unlike ru_maxrss on Linux,
    it starts afresh at exec, so the driver's memory is not counted)."""
    try:
        with open("/proc/self/status") as f:
            for line in f:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1]) / 1024
    except OSError:
        pass
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def _gemm_shapes(spec):
    """(M, K, N) of the model's matrix products for one batch."""
    n = (spec["image_size"] // spec["patch_size"]) ** 2
    m = spec["batch_size"] * (n + 1)
    d, h = spec["hidden_size"], spec["mlp_dim"]
    if spec["device"] == "gpu":
        return [(8192, 8192, 8192)]
    return [(m, d, 3 * d), (m, d, d), (m, d, h), (m, h, d)]


def _time_gemms(spec, matmul, make, sync=lambda x: x, repeats=3):
    """Best-of-`repeats` FLOP/s of running the model's GEMMs once each."""
    shapes = _gemm_shapes(spec)
    pairs = [(make((m, k)), make((k, n))) for m, k, n in shapes]
    flops = sum(2 * m * k * n for m, k, n in shapes)
    for a, b in pairs:  # warm up
        sync(matmul(a, b))
    best = float("inf")
    for _ in range(repeats):
        start = time.perf_counter()
        for a, b in pairs:
            sync(matmul(a, b))
        best = min(best, time.perf_counter() - start)
    return flops / best


class _KerasWorker:
    """keras_vit or keras-hub, through `compile`/`fit` and `predict`."""

    def __init__(self, spec):
        import numpy as np

        self.spec = spec
        if spec["backend"] == "tensorflow":
            import tensorflow as tf

            tf.config.threading.set_intra_op_parallelism_threads(spec["threads"])
        elif spec["backend"] == "torch":
            import torch

            torch.set_num_threads(spec["threads"])
        import keras

        self.keras = keras
        if spec["dtype"] == "bfloat16":
            keras.config.set_dtype_policy("mixed_bfloat16")
        self.versions = {"keras": keras.__version__, **self._backend_version()}
        self.model = self._build()
        rng = np.random.default_rng(0)
        b, s = spec["batch_size"], spec["image_size"]
        n = b * spec["steps"]
        self.x = rng.uniform(0, 255, (n, s, s, 3)).astype("float32")
        self.y = rng.integers(0, spec["num_classes"], (n,)).astype("int32")
        if spec["mode"] == "train":
            jit = spec["jit_compile"]
            jit = {"True": True, "False": False}.get(jit, jit)
            self.model.compile(
                optimizer=keras.optimizers.AdamW(learning_rate=1e-4),
                loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True),
                jit_compile=jit,
            )
            self.jit = self.model.jit_compile
            warm = min(n, b * spec["warmup_steps"])
            self.model.fit(self.x[:warm], self.y[:warm], batch_size=b, epochs=1,
                           verbose=0, shuffle=False)
        else:
            jit = spec["jit_compile"]
            if jit != "auto":
                self.model.compile(jit_compile={"True": True, "False": False}.get(jit, jit))
            self.model.predict(self.x[: b * spec["warmup_steps"]], batch_size=b, verbose=0)
            self.jit = getattr(self.model, "jit_compile", None)

    def _backend_version(self):
        backend = self.spec["backend"]
        module = __import__(backend)
        return {backend: module.__version__}

    def _build(self):
        s = self.spec
        if s["framework"] == "keras_vit":
            import keras_vit

            self.versions["keras_vit"] = getattr(keras_vit, "__version__", "source")
            return keras_vit.ViT(
                image_size=s["image_size"], patch_size=s["patch_size"],
                hidden_size=s["hidden_size"], num_layers=s["num_layers"],
                num_heads=s["num_heads"], mlp_dim=s["mlp_dim"],
                num_classes=s["num_classes"],
            )
        import keras_hub

        self.versions["keras_hub"] = keras_hub.__version__
        backbone = keras_hub.models.ViTBackbone(
            image_shape=(s["image_size"], s["image_size"], 3), patch_size=s["patch_size"],
            num_layers=s["num_layers"], num_heads=s["num_heads"],
            hidden_dim=s["hidden_size"], mlp_dim=s["mlp_dim"],
        )
        return keras_hub.models.ViTImageClassifier(
            backbone=backbone, num_classes=s["num_classes"], preprocessor=None
        )

    def measure(self):
        """Images/s from the first step's start to the last step's end.

        Keras callbacks mark the steps, so what a `fit`/`predict` call does
        around them is left out as it is for timm's loop: converting the numpy
        arrays, and tf.data's iterator teardown, which with TensorFlow 2.21
        blocks until its autotuning thread wakes, up to ~10 s after the
        iterator was made (a fixed cost per epoch, not per step).
        """
        b = self.spec["batch_size"]
        clock = _step_clock(self.keras)
        if self.spec["mode"] == "train":
            self.model.fit(self.x, self.y, batch_size=b, epochs=1, verbose=0, shuffle=False,
                           callbacks=[clock])
        else:
            self.model.predict(self.x, batch_size=b, verbose=0, callbacks=[clock])
        return len(self.x) / (clock.last - clock.first)

    def peak_device_mib(self):
        """Peak accelerator memory (JAX on a GPU), else None."""
        if self.spec["device"] != "gpu" or self.spec["backend"] != "jax":
            return None
        import jax

        stats = jax.devices()[0].memory_stats() or {}
        peak = stats.get("peak_bytes_in_use")
        return peak / 2**20 if peak else None

    def matmul(self):
        import numpy as np

        spec, results = self.spec, {}
        rng = np.random.default_rng(0)
        if spec["device"] == "cpu":
            results["numpy"] = _time_gemms(
                spec, np.matmul, lambda s: rng.standard_normal(s, dtype="float32"))
        backend = spec["backend"]
        if backend == "tensorflow":
            import tensorflow as tf

            results["tensorflow"] = _time_gemms(
                spec, tf.linalg.matmul, lambda s: tf.random.normal(s),
                sync=lambda x: x.numpy())
        elif backend == "jax":
            import jax
            import jax.numpy as jnp

            dtype = jnp.bfloat16 if spec["dtype"] == "bfloat16" else jnp.float32
            key = jax.random.PRNGKey(0)
            results["jax"] = _time_gemms(
                spec, jax.jit(jnp.matmul), lambda s: jax.random.normal(key, s, dtype),
                sync=lambda x: x.block_until_ready())
        return results


class _TimmWorker:
    """timm's VisionTransformer in the usual PyTorch loop."""

    def __init__(self, spec):
        import numpy as np
        import timm
        import torch

        self.spec, self.torch = spec, torch
        torch.set_num_threads(spec["threads"])
        self.versions = {"torch": torch.__version__, "timm": timm.__version__}
        self.device = "cuda" if spec["device"] == "gpu" else "cpu"
        model = timm.models.vision_transformer.VisionTransformer(
            img_size=spec["image_size"], patch_size=spec["patch_size"],
            embed_dim=spec["hidden_size"], depth=spec["num_layers"],
            num_heads=spec["num_heads"], mlp_ratio=spec["mlp_dim"] / spec["hidden_size"],
            num_classes=spec["num_classes"],
        ).to(self.device)
        self.model = model
        self.jit = spec["jit_compile"] == "compile"
        self.forward = torch.compile(model) if self.jit else model
        rng = np.random.default_rng(0)
        b, s = spec["batch_size"], spec["image_size"]
        self.batches = [
            (torch.from_numpy(rng.uniform(-1, 1, (b, 3, s, s)).astype("float32")).to(self.device),
             torch.from_numpy(rng.integers(0, spec["num_classes"], (b,))).to(self.device))
            for _ in range(spec["steps"])
        ]
        self.autocast = (
            torch.autocast(self.device, dtype=torch.bfloat16)
            if spec["dtype"] == "bfloat16" else None
        )
        if spec["mode"] == "train":
            model.train()
            self.optimizer = torch.optim.AdamW(model.parameters(), lr=1e-4)
        else:
            model.eval()
        for _ in range(spec["warmup_steps"]):
            self._run(self.batches[:1])

    def _context(self):
        import contextlib

        return self.autocast if self.autocast is not None else contextlib.nullcontext()

    def _run(self, batches):
        torch = self.torch
        if self.spec["mode"] == "train":
            for x, y in batches:
                with self._context():
                    loss = torch.nn.functional.cross_entropy(self.forward(x), y)
                self.optimizer.zero_grad(set_to_none=True)
                loss.backward()
                self.optimizer.step()
        else:
            with torch.inference_mode(), self._context():
                for x, _ in batches:
                    self.forward(x)
        if self.device == "cuda":
            torch.cuda.synchronize()

    def measure(self):
        start = time.perf_counter()
        self._run(self.batches)
        return len(self.batches) * self.spec["batch_size"] / (time.perf_counter() - start)

    def peak_device_mib(self):
        if self.device != "cuda":
            return None
        return self.torch.cuda.max_memory_allocated() / 2**20

    def matmul(self):
        torch = self.torch
        dtype = torch.bfloat16 if self.spec["dtype"] == "bfloat16" else torch.float32
        sync = (lambda x: torch.cuda.synchronize()) if self.device == "cuda" else (lambda x: x)
        return {"torch": _time_gemms(
            self.spec, torch.matmul,
            lambda s: torch.randn(s, dtype=dtype, device=self.device), sync=sync)}


def _step_clock(keras):
    """A Keras callback that notes the first step's start and the last step's end."""

    class StepClock(keras.callbacks.Callback):
        first = last = None

        def _begin(self, batch, logs=None):
            if self.first is None:
                self.first = time.perf_counter()

        def _end(self, batch, logs=None):
            self.last = time.perf_counter()

        on_train_batch_begin = on_predict_batch_begin = _begin
        on_train_batch_end = on_predict_batch_end = _end

    return StepClock()


def _worker_main(spec):
    """Builds the model, says it is ready, then answers commands from stdin."""
    # Keep the protocol on the real stdout; everything else printed goes to stderr.
    protocol = os.fdopen(os.dup(1), "w", buffering=1)
    os.dup2(2, 1)

    def send(obj):
        protocol.write(json.dumps(obj) + "\n")

    start = time.perf_counter()
    try:
        worker = (_TimmWorker if spec["framework"] == "timm" else _KerasWorker)(spec)
    except Exception as error:  # reported as a skipped row
        import traceback

        traceback.print_exc()
        send({"error": f"{type(error).__name__}: {error}"})
        return 1
    send({"ready": True, "versions": worker.versions, "jit": str(worker.jit),
          "setup_s": time.perf_counter() - start, "peak_rss_mib": _peak_rss_mib()})
    for line in sys.stdin:
        command = json.loads(line)
        if command["cmd"] == "measure":
            send({"images_per_s": worker.measure(), "peak_rss_mib": _peak_rss_mib(),
                  "peak_device_mib": worker.peak_device_mib()})
        elif command["cmd"] == "matmul":
            send(worker.matmul())
        else:
            break
    return 0


# ---------------------------------------------------------------------------
# Command line (`keras-vit benchmark` and `python -m keras_vit.benchmark`)


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
    pythons = parse_pythons(args.python)
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
        # torch.compile on the CPU builds C++ kernels for minutes: left out.
        runners = [r for r in runners if r.jit_compile != "compile"]
    device = "cpu" if args.dry_run else args.device
    results = run_benchmark(configs, runners, device=device, reps=args.reps,
                            threads=args.threads)
    if args.dry_run:
        results["device"] = f"{args.device} (dry run on the CPU, toy size)"
    table = format_table(results, command=command_line(args))
    print(table)
    if args.output:
        with open(args.output, "w") as f:
            f.write(table)
    if args.json:
        with open(args.json, "w") as f:
            json.dump(results, f, indent=1)
    return 0


def command_line(args):
    """The `keras-vit benchmark ...` command that repeats this run."""
    words = ["keras-vit", "benchmark"]
    for action in ("device", "reps", "only", "threads"):
        value = getattr(args, action)
        if value is not None and not (action, value) in (("device", "cpu"), ("reps", 3)):
            words += [f"--{action}", str(value)]
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
                        help="a row, e.g. keras_vit:jax, keras_hub:tensorflow:True, "
                             "timm:compile (repeatable; default: the standard rows)")
    parser.add_argument("--python", action="append", metavar="FRAMEWORK=PATH",
                        help="interpreter for a framework's worker, e.g. "
                             "timm=/root/venv-ref/bin/python (repeatable)")
    parser.add_argument("--threads", type=int, help="threads per framework (default: all CPUs)")
    parser.add_argument("--dry-run", action="store_true",
                        help="run the mode's code paths at toy size on the CPU")
    parser.add_argument("--allow-cpu-compile", action="store_true",
                        help="with --dry-run, keep torch.compile (needs a C++ compiler)")
    parser.add_argument("--output", help="write the markdown table here")
    parser.add_argument("--json", help="write the raw results here")


if __name__ == "__main__":
    # Run as a script, this file's folder (keras_vit/) must not shadow packages.
    if sys.path and os.path.abspath(sys.path[0]) == os.path.dirname(os.path.abspath(__file__)):
        sys.path.pop(0)
    if len(sys.argv) == 3 and sys.argv[1] == "--worker":
        sys.exit(_worker_main(json.loads(sys.argv[2])))
    import argparse

    _parser = argparse.ArgumentParser(prog="python -m keras_vit.benchmark")
    add_arguments(_parser)
    _args = _parser.parse_args()
    sys.exit(main(_args))
