"""The exact GELU's forms, forward and backward, one (8320, 768) float32 tensor (issue 19).

What benchmarks/RESULTS.md (2026-12-08) says about TensorFlow's erfc form under XLA was
measured with this: the median of 5 reps of 10 calls, 2 threads, per framework present
(TensorFlow with and without XLA, JAX's jit, torch). Run with any interpreter:

    python benchmarks/gelu_forms.py
"""
import importlib.util
import math
import time

import numpy as np

SQRT_HALF = 1 / math.sqrt(2.0)
X = np.random.default_rng(0).standard_normal((128 * 65, 768)).astype("float32")


def median_ms(call, reps=5, calls=10):
    call(), call()
    times = []
    for _ in range(reps):
        start = time.perf_counter()
        for _ in range(calls):
            call()
        times.append((time.perf_counter() - start) / calls)
    return 1e3 * float(np.median(times))


def tensorflow_rows():
    import tensorflow as tf

    tf.config.threading.set_intra_op_parallelism_threads(2)
    x = tf.constant(X)
    forms = {"erfc (tf.nn.gelu)": lambda x: tf.nn.gelu(x, approximate=False),
             "erf": lambda x: 0.5 * x * (1.0 + tf.math.erf(x * SQRT_HALF)),
             "tanh": lambda x: tf.nn.gelu(x, approximate=True), "identity": lambda x: x * 1.0}
    for jit in (True, False):
        for name, form in forms.items():
            @tf.function(jit_compile=jit)
            def step(x, form=form):
                with tf.GradientTape() as tape:
                    tape.watch(x)
                    y = form(x)
                    total = tf.reduce_sum(y * 1.0001)
                return y, tape.gradient(total, x)  # both, as in training

            yield f"tensorflow {'XLA' if jit else 'no XLA'}", name, median_ms(
                lambda: step(x)[1].numpy())


def jax_rows():
    import jax

    x = jax.numpy.asarray(X)
    forms = {"erfc (jax.nn.gelu)": lambda x: jax.nn.gelu(x, approximate=False),
             "erf": lambda x: 0.5 * x * (1.0 + jax.lax.erf(x * SQRT_HALF)),
             "tanh": lambda x: jax.nn.gelu(x, approximate=True), "identity": lambda x: x * 1.0}
    for name, form in forms.items():
        def forward_and_backward(x, form=form):  # both, as in training
            y, backward = jax.vjp(form, x)
            return y, backward(jax.numpy.full_like(y, 1.0001))[0]

        step = jax.jit(forward_and_backward)
        yield "jax jit", name, median_ms(lambda: jax.block_until_ready(step(x)))


def torch_rows():
    import torch

    torch.set_num_threads(2)
    x = torch.tensor(X, requires_grad=True)
    forms = {"erf (F.gelu)": torch.nn.functional.gelu,
             "tanh": lambda x: torch.nn.functional.gelu(x, approximate="tanh"),
             "identity": lambda x: x * 1.0}
    for name, form in forms.items():
        def step(form=form):
            x.grad = None
            (form(x) * 1.0001).sum().backward()  # the forward output is kept for it

        yield "torch eager", name, median_ms(step)


if __name__ == "__main__":
    for module, rows in (("tensorflow", tensorflow_rows), ("jax", jax_rows),
                         ("torch", torch_rows)):
        if importlib.util.find_spec(module) is None:
            print(f"{module}: not installed, skipped")
            continue
        for framework, form, ms in rows():
            print(f"{framework:18s} {form:20s} {ms:7.2f} ms", flush=True)
