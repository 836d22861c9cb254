#!/usr/bin/env bash
# The peers' environments used for benchmarks/RESULTS.md (CPU machine).
#   keras-hub: its own venv, with the same Keras and TensorFlow as keras_vit's
#   timm:      /root/venv-ref (torch 2.14.1 CPU build, timm 1.0.31), made elsewhere
set -euo pipefail
VENV=${VENV:-/root/venv-bench}
python3 -m venv "$VENV"
"$VENV/bin/pip" install keras==3.15.1 tensorflow-cpu==2.21.0 keras-hub jax
"$VENV/bin/pip" install --no-deps -e "$(dirname "$0")/.."
# keras-hub must not have pulled another Keras:
"$VENV/bin/python" -c "import keras, keras_hub; assert keras.__version__ == '3.15.1', keras.__version__; print('keras', keras.__version__, 'keras_hub', keras_hub.__version__)"
