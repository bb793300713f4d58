#!/usr/bin/env bash
# Sets up what is missing, builds, mixes a batch, draws docs/mixing.png, trains a small model with
# feature-level CutMix and runs the short form of the benchmark (CPU, and CUDA when there is a GPU)
# against torchvision, timm, kornia and plain torch; its tables and charts go to build/benchmarks.
source "$(dirname "${BASH_SOURCE[0]}")/env.sh"
"$PY" examples/demo.py
if ! "$PY" -c "import matplotlib, skimage" >/dev/null 2>&1; then
  echo "[setup] installing matplotlib and scikit-image (for the picture and the charts)"
  "$PY" -m pip install --quiet matplotlib scikit-image
fi
# kornia, to compare with: --no-deps, so that it cannot replace torch (its rows say so if absent)
if ! "$PY" -c "import kornia" >/dev/null 2>&1; then
  echo "[setup] installing kornia (--no-deps)"
  "$PY" -m pip install --quiet --no-deps kornia kornia-rs || echo "[setup] kornia not installed: its rows will say so"
fi
"$PY" examples/figure.py
"$PY" examples/train_feature_mix.py --steps 150
"$PY" -m benchmarks.run --device cpu --quick --out build/benchmarks "$@"
if "$PY" -c "import sys, torch; sys.exit(not torch.cuda.is_available())"; then
  "$PY" -m benchmarks.run --device cuda --quick --out build/benchmarks "$@"
fi
