#!/usr/bin/env bash
# Makes the peers' virtual environments that `keras-vit benchmark` compares
# keras_vit against, where the benchmark finds them by default:
#   benchmarks/envs/keras-hub  keras-hub with the same Keras, TensorFlow and JAX
#                              as keras_vit's environment (the interpreter running
#                              this script), so only the model code differs
#   benchmarks/envs/zeromodels ZeroModels (another Keras 3 ViT) with those same pins
#   benchmarks/envs/timm       PyTorch (CPU build unless TORCH_INDEX is set) + timm
# Usage: benchmarks/make_peer_envs.sh [keras-hub] [zeromodels] [timm]   (default: all three)
# Needs the network (PyPI). keras_vit itself is not installed into them: the
# benchmark puts this checkout on their PYTHONPATH.
set -euo pipefail
HERE="$(cd "$(dirname "$0")" && pwd)"
PYTHON=${PYTHON:-python3}
TORCH_INDEX=${TORCH_INDEX:-https://download.pytorch.org/whl/cpu}
versions() {  # keras / tensorflow-cpu / jax pins of the current environment, where present
  "$PYTHON" - <<'PY'
import importlib.metadata as m
for name in ("keras", "tensorflow-cpu", "tensorflow", "jax", "jaxlib"):
    try:
        print(f"{name}=={m.version(name)}")
    except m.PackageNotFoundError:
        pass
PY
}
make_env() {
  local name=$1; shift
  echo "== benchmarks/envs/$name"
  "$PYTHON" -m venv "$HERE/envs/$name"
  "$HERE/envs/$name/bin/pip" install --upgrade pip >/dev/null
  "$HERE/envs/$name/bin/pip" install "$@"
}
targets=("${@:-keras-hub zeromodels timm}")
for target in ${targets[*]}; do
  case "$target" in
    keras-hub)
      make_env keras-hub $(versions) keras-hub
      # keras-hub must not have pulled another Keras than keras_vit's:
      "$HERE/envs/keras-hub/bin/python" -c "import keras, keras_hub; print('keras', keras.__version__, 'keras_hub', keras_hub.__version__)"
      ;;
    zeromodels)
      make_env zeromodels $(versions) zeromodels
      # nor may ZeroModels (the comparison is of graphs, not of Keras or TF versions):
      "$HERE/envs/zeromodels/bin/python" -c "import keras, zeromodels; print('keras', keras.__version__, 'zeromodels', zeromodels.__version__)"
      ;;
    timm)
      make_env timm --extra-index-url "$TORCH_INDEX" torch timm numpy
      "$HERE/envs/timm/bin/python" -c "import torch, timm; print('torch', torch.__version__, 'timm', timm.__version__)"
      ;;
    *) echo "unknown environment: $target (expected keras-hub, zeromodels or timm)" >&2; exit 2 ;;
  esac
done
echo "done: keras-vit benchmark now uses them (or pass --python FRAMEWORK=PATH)"
