"""One process, interleaved: keras_vit's graph variants against ZeroModels' ViT (issue 19).

What benchmarks/RESULTS.md (2026-12-07) says about why ZeroModels trained faster than
keras_vit on TensorFlow without XLA was measured with this. Every model is built,
compiled and traced in this one process (same TF thread pool), then timed rep by rep
with `train_on_batch` / `predict_on_batch` (no tf.data, so no teardown stall). The
variants swap `MultiHeadSelfAttention.call` while a model is traced: "before" is the
layer's TensorFlow path before 2026-12-07 (q, k, v indexed out of the fused tensor),
"ours" the current layer, "ours-split" ZeroModels' layout (split, three 4-D transposes),
"ours-unstack" the unstack without the no-op casts; "-xla" rows use jit_compile=True.
Needs an interpreter with ZeroModels and this checkout on PYTHONPATH:

    PYTHONPATH=. benchmarks/envs/zeromodels/bin/python benchmarks/graph_ab.py \
        train 5 2 ours-xla,before,ours,ours-split,zm     # or: infer 5 2 ...

(MODE train|infer, REPS, STEPS per rep, the variants; all of them by default.)
"""
import os
import sys
import time

import numpy as np
import tensorflow as tf

tf.config.threading.set_intra_op_parallelism_threads(2)
import keras  # noqa: E402
from keras import ops  # noqa: E402

import keras_vit  # noqa: E402
from keras_vit.layers import multi_head_self_attention as msa_mod  # noqa: E402

MODE = sys.argv[1]
REPS, STEPS = int(sys.argv[2]), int(sys.argv[3])
WANT = sys.argv[4].split(",") if len(sys.argv) > 4 else None
if MODE == "train":
    CFG = dict(image_size=32, patch_size=4, hidden_size=192, num_layers=6, num_heads=3,
               mlp_dim=768, num_classes=10)
    B = 128
else:
    CFG = dict(image_size=224, patch_size=16, hidden_size=768, num_layers=12, num_heads=12,
               mlp_dim=3072, num_classes=1000)
    B = 8

ORIG_CALL = msa_mod.MultiHeadSelfAttention.call


def split_call(self, inputs, training=None, return_attention_scores=False):
    """ZeroModels' layout: split the fused projection, one 4-D transpose each."""
    shape = ops.shape(inputs)
    batch, tokens, width = shape[0], shape[1], inputs.shape[-1]
    qkv = self.qkv(inputs)
    q, k, v = ops.split(qkv, 3, axis=-1)
    q = q * ops.cast(1.0 / np.sqrt(self.head_dim), q.dtype)
    heads = lambda t: ops.transpose(  # noqa: E731
        ops.reshape(t, (batch, tokens, self.num_heads, self.head_dim)), (0, 2, 1, 3))
    q, k, v = heads(q), heads(k), heads(v)
    logits = ops.matmul(q, ops.swapaxes(k, -1, -2))
    weights = ops.softmax(logits, axis=-1)
    out = ops.matmul(weights, v)
    out = ops.reshape(ops.swapaxes(out, 1, 2), (batch, tokens, width))
    return self.output_dense(out)


def unstack_call(self, inputs, training=None, return_attention_scores=False):
    """Ours, with the (3, B, heads, T, hd) tensor unstacked instead of indexed."""
    shape = ops.shape(inputs)
    batch, tokens, width = shape[0], shape[1], inputs.shape[-1]
    qkv = self.qkv(inputs)
    qkv = ops.reshape(qkv, (batch, tokens, 3, self.num_heads, self.head_dim))
    qkv = ops.transpose(qkv, (2, 0, 3, 1, 4))
    q, k, v = ops.unstack(qkv, 3, axis=0)
    q = q * ops.cast(1.0 / np.sqrt(self.head_dim), q.dtype)
    logits = ops.matmul(q, ops.swapaxes(k, -1, -2))
    weights = ops.softmax(logits, axis=-1)
    out = ops.matmul(weights, v)
    out = ops.reshape(ops.swapaxes(out, 1, 2), (batch, tokens, width))
    return self.output_dense(out)


def before_call(self, inputs, training=None, return_attention_scores=False):
    """The layer's TensorFlow path before 2026-12-07: q, k, v indexed out of qkv."""
    shape = ops.shape(inputs)
    batch, tokens, width = shape[0], shape[1], inputs.shape[-1]
    qkv = self.qkv(inputs)
    qkv = ops.reshape(qkv, (batch, tokens, 3, self.num_heads, self.head_dim))
    qkv = ops.transpose(qkv, (2, 0, 3, 1, 4))
    q, k, v = qkv[0], qkv[1], qkv[2]
    q = q * ops.cast(1.0 / np.sqrt(self.head_dim), q.dtype)
    logits = ops.matmul(q, ops.swapaxes(k, -1, -2))
    logits = ops.cast(logits, "float32")
    weights = ops.cast(ops.softmax(logits, axis=-1), v.dtype)
    out = ops.matmul(self.dropout(weights, training=training), v)
    out = ops.swapaxes(out, 1, 2)
    out = ops.reshape(out, (batch, tokens, width))
    return self.output_dense(out)


def build_ours(call, jit, **extra):
    msa_mod.MultiHeadSelfAttention.call = call
    keras.utils.set_random_seed(0)
    model = keras_vit.ViT(**CFG, **extra)
    return model, jit


def build_zm(jit):
    from zeromodels.models.vit import ViTImageClassify
    keras.utils.set_random_seed(0)
    model = ViTImageClassify(
        patch_size=CFG["patch_size"], embed_dim=CFG["hidden_size"], depth=CFG["num_layers"],
        num_heads=CFG["num_heads"], mlp_ratio=CFG["mlp_dim"] / CFG["hidden_size"],
        image_size=CFG["image_size"], num_classes=CFG["num_classes"])
    return model, jit


VARIANTS = {
    "ours-xla": lambda: build_ours(ORIG_CALL, True),
    "before": lambda: build_ours(before_call, False),
    "before-xla": lambda: build_ours(before_call, True),
    "ours": lambda: build_ours(ORIG_CALL, False),
    "ours-split": lambda: build_ours(split_call, False),
    "ours-unstack": lambda: build_ours(unstack_call, False),
    "zm": lambda: build_zm(False),
    "zm-xla": lambda: build_zm(True),
}
rng = np.random.default_rng(0)
x = rng.uniform(0, 255, (B, CFG["image_size"], CFG["image_size"], 3)).astype("float32")
y = rng.integers(0, CFG["num_classes"], (B,)).astype("int32")
runs = {}
for name, make in VARIANTS.items():
    if WANT and name not in WANT:
        continue
    model, jit = make()
    if MODE == "train":
        model.compile(optimizer=keras.optimizers.AdamW(1e-4),
                      loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True),
                      jit_compile=jit)
        step = lambda m=model: m.train_on_batch(x, y)  # noqa: E731
    else:
        model.compile(jit_compile=jit)
        step = lambda m=model: m.predict_on_batch(x)  # noqa: E731
    step(); step()  # trace, compile, warm
    msa_mod.MultiHeadSelfAttention.call = ORIG_CALL
    runs[name] = (model, step, [])
    print(f"{name}: ready (jit {model.jit_compile})", flush=True)

print("load", os.getloadavg()[0], flush=True)
for rep in range(REPS):
    for name, (model, step, times) in runs.items():
        t = time.perf_counter()
        for _ in range(STEPS):
            step()
        times.append(B * STEPS / (time.perf_counter() - t))
    print(f"rep {rep}: " + ", ".join(f"{n} {r[2][-1]:.1f}" for n, r in runs.items()), flush=True)
print("load", os.getloadavg()[0])
for name, (_, _, times) in runs.items():
    print(f"{name:14s} median {np.median(times):7.2f} min {min(times):7.2f} max {max(times):7.2f} img/s")
