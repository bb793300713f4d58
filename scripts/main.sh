#!/usr/bin/env bash
# Sets up what is missing, builds, mixes a batch, draws docs/mixing.png, trains a small model with
# feature-level CutMix and prints a short benchmark against torchvision and plain torch.
source "$(dirname "${BASH_SOURCE[0]}")/env.sh"
"$PY" examples/demo.py
if ! "$PY" -c "import matplotlib, skimage" >/dev/null 2>&1; then
  echo "[setup] installing matplotlib and scikit-image (for the picture)"
  "$PY" -m pip install --quiet matplotlib scikit-image
fi
"$PY" examples/figure.py
"$PY" examples/train_feature_mix.py --steps 150
"$PY" benchmarks/bench.py --quick "$@"
