#!/usr/bin/env bash
# The CPU table of RESULTS.md: float32, CIFAR-sized training and ViT-B/16
# inference, keras_vit (TensorFlow and JAX backends) against keras-hub, ZeroModels and timm.
# The peers come from benchmarks/make_peer_envs.sh (benchmarks/envs/), or from
# KERAS_HUB_PYTHON / ZEROMODELS_PYTHON / TIMM_PYTHON; a missing one is a "skipped" row.
# Extra arguments go through, e.g. --quick or --reps 5.
set -euo pipefail
cd "$(dirname "$0")/.."
pythons=()
[ -n "${KERAS_HUB_PYTHON:-}" ] && pythons+=(--python keras_hub="$KERAS_HUB_PYTHON")
[ -n "${ZEROMODELS_PYTHON:-}" ] && pythons+=(--python zeromodels="$ZEROMODELS_PYTHON")
[ -n "${TIMM_PYTHON:-}" ] && pythons+=(--python timm="$TIMM_PYTHON")
exec python -m benchmarks.driver "${pythons[@]}" \
  --output benchmarks/last-cpu.md --json benchmarks/last-cpu.json "$@"
