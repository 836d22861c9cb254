#!/usr/bin/env bash
# The GPU table: ViT-B/16 training (batch 256) and inference at 224 in bf16,
# keras_vit and keras-hub on KERAS_BACKEND=jax (no TensorFlow on the GPU
# machine), keras_vit on Keras' torch backend with jit_compile=True (torch.compile
# in Keras' trainer), timm eager and with torch.compile, MFU against a measured bf16
# matmul peak (8192^3 GEMMs in torch and JAX), peak GPU memory of each row, and
# ViT-L/16 training with and without rematerialisation. Needs jax[cuda], torch,
# timm (and keras-hub for its row) in $PYTHON (default python3), or pass --python.
# On a CPU-only machine, `run_gpu.sh --dry-run` runs the same code at toy size.
# One call stays under 10 minutes: no configuration starts after 420 s (the
# tables so far are written after each; pass --time-limit to change it).
set -euo pipefail
cd "$(dirname "$0")/.."
export KERAS_BACKEND=jax
exec "${PYTHON:-python3}" -m benchmarks.driver --device gpu \
  --output benchmarks/last-gpu.md --json benchmarks/last-gpu.json \
  --time-limit 420 "$@"
