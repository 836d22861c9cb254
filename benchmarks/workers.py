"""The benchmark's worker: one framework, in its own process and interpreter.

Run by the driver as `python benchmarks/workers.py JSON`. It needs nothing but
the standard library at import time, so it runs under any interpreter (a
PyTorch environment for timm, others for keras-hub and ZeroModels) whether or
not keras_vit is installed there; the driver puts the checkout on PYTHONPATH. It prints one
JSON object per line: "ready" (or "error", or "skipped" with how to enable a
peer that is not installed), then one answer per command read from stdin.

What is timed is what a user runs: `model.compile(AdamW, loss)` then
`model.fit(x, y, batch_size=...)`, and `model.predict(x)`; for timm the usual
PyTorch loop (`loss.backward(); optimizer.step()`) and `model(x)` under
`torch.inference_mode()`.
"""

import json
import math
import os
import resource
import sys
import time

# What a worker may lack: a missing one makes a "skipped" row, not a failure.
PEERS = ("keras_hub", "zeromodels", "timm", "torch", "jax", "tensorflow", "keras", "keras_vit")


class Unsupported(Exception):
    """What a framework cannot do in this configuration: a "skipped" row."""


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
    """keras_vit, keras-hub or ZeroModels, through `compile`/`fit` and `predict`."""

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
            self._fit(self.x[:warm], self.y[:warm], batch_size=b, epochs=1,
                           verbose=0, shuffle=False)
        else:
            jit = spec["jit_compile"]
            if jit != "auto":
                self.model.compile(jit_compile={"True": True, "False": False}.get(jit, jit))
            self._predict(self.x[: b * spec["warmup_steps"]], batch_size=b, verbose=0)
            self.jit = getattr(self.model, "jit_compile", None)

    def _fit(self, *args, **kwargs):
        # keras-hub's Task.fit, with preprocessor=None, only wraps numpy arrays in a
        # tf.data or grain pipeline (neither is on the GPU machine): Keras' own fit
        # runs the same model and step.
        return self.keras.Model.fit(self.model, *args, **kwargs)

    def _predict(self, *args, **kwargs):
        return self.keras.Model.predict(self.model, *args, **kwargs)

    def _backend_version(self):
        backend = self.spec["backend"]
        module = __import__(backend)
        return {backend: module.__version__}

    def _build(self):
        s = self.spec
        if s["framework"] == "keras_vit":
            import keras_vit
            from keras_vit.training import finetune_kit

            self.versions["keras_vit"] = getattr(keras_vit, "__version__", "source")
            with finetune_kit.remat_scope(s.get("remat", False)):
                return keras_vit.ViT(
                    image_size=s["image_size"], patch_size=s["patch_size"],
                    hidden_size=s["hidden_size"], num_layers=s["num_layers"],
                    num_heads=s["num_heads"], mlp_dim=s["mlp_dim"],
                    num_classes=s["num_classes"],
                )
        if s["framework"] == "zeromodels":
            return self._build_zeromodels()
        if s.get("remat"):
            raise Unsupported("keras-hub's ViT has no rematerialisation")
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

    def _build_zeromodels(self):
        """ZeroModels' ViT classifier (a functional Keras model: Conv2D patch
        embedding, class token, ViT blocks, class-token head), at random init."""
        s = self.spec
        if s.get("remat"):
            raise Unsupported("ZeroModels' ViT has no rematerialisation")
        import zeromodels
        from zeromodels.models.vit import ViTImageClassify

        self.versions["zeromodels"] = zeromodels.__version__
        return ViTImageClassify(
            patch_size=s["patch_size"], embed_dim=s["hidden_size"], depth=s["num_layers"],
            num_heads=s["num_heads"], mlp_ratio=s["mlp_dim"] / s["hidden_size"],
            image_size=s["image_size"], num_classes=s["num_classes"],
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
            self._fit(self.x, self.y, batch_size=b, epochs=1, verbose=0, shuffle=False,
                           callbacks=[clock])
        else:
            self._predict(self.x, batch_size=b, verbose=0, callbacks=[clock])
        return len(self.x) / (clock.last - clock.first)

    def parameters(self):
        """Trainable parameters: every row must be the configuration's model."""
        return sum(math.prod(w.shape) for w in self.model.trainable_weights)

    def peak_device_mib(self):
        """Peak accelerator memory (JAX or torch on a GPU), else None."""
        if self.spec["device"] != "gpu" or self.spec["backend"] not in ("jax", "torch"):
            return None
        if self.spec["backend"] == "torch":
            import torch

            return torch.cuda.max_memory_allocated() / 2**20
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
        if spec.get("remat"):
            model.set_grad_checkpointing(True)
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

    def parameters(self):
        return sum(p.numel() for p in self.model.parameters() if p.requires_grad)

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
    except Exception as error:  # a failed row, or a skipped one for a missing peer
        import traceback

        missing = getattr(error, "name", None) if isinstance(error, ModuleNotFoundError) else None
        if missing and missing.split(".")[0] in PEERS:
            send({"skipped": f"{missing} is not installed for {sys.executable}"})
            return 1
        if isinstance(error, Unsupported):
            send({"skipped": str(error), "unsupported": True})
            return 1

        traceback.print_exc()
        send({"error": f"{type(error).__name__}: {error}"})
        return 1
    send({"ready": True, "versions": worker.versions, "jit": str(worker.jit),
          "parameters": worker.parameters(),
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



if __name__ == "__main__":
    # This folder (benchmarks/) must not shadow packages of the worker's interpreter.
    if sys.path and os.path.abspath(sys.path[0]) == os.path.dirname(os.path.abspath(__file__)):
        sys.path.pop(0)
    sys.exit(_worker_main(json.loads(sys.argv[1])))
