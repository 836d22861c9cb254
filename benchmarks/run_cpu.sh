#!/usr/bin/env bash
# The CPU table of RESULTS.md: float32, CIFAR-sized training and ViT-B/16
# inference, keras_vit (TensorFlow and JAX backends) against keras-hub and timm.
# Extra arguments go through, e.g. --quick or --reps 5.
set -euo pipefail
cd "$(dirname "$0")/.."
exec keras-vit benchmark \
  --python keras_hub="${KERAS_HUB_PYTHON:-/root/venv-bench/bin/python}" \
  --python timm="${TIMM_PYTHON:-/root/venv-ref/bin/python}" \
  --output benchmarks/last-cpu.md --json benchmarks/last-cpu.json "$@"
