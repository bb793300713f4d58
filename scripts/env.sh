# Sourced by main.sh and test.sh: installs what is missing, then builds cutmix_ext in place.
# Nothing is downloaded when everything is already there (as on a machine without network).
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
PY=${PYTHON:-python3}

have() { "$PY" -c "import $1" >/dev/null 2>&1; }

if ! have torch; then
  echo "[setup] installing torch 2.14.1 and torchvision 0.29.1 (CUDA 13.0 build, ~5 GB)"
  "$PY" -m pip install --quiet "torch==2.14.1" "torchvision==0.29.1"
fi
if ! have torchvision && [ "$("$PY" -c 'import torch; print(torch.__version__.split("+")[0])')" = "2.14.1" ]; then
  "$PY" -m pip install --quiet --no-deps "torchvision==0.29.1"
fi
missing=()
for pkg in ninja numpy pytest hypothesis; do have "$pkg" || missing+=("$pkg"); done
if [ ${#missing[@]} -gt 0 ]; then
  echo "[setup] installing ${missing[*]}"
  "$PY" -m pip install --quiet "${missing[@]}"
fi
# timm, for the tests of the timm drop-ins against timm itself: --no-deps, so it cannot replace torch.
if ! have timm.data; then
  echo "[setup] installing timm (--no-deps)"
  "$PY" -m pip install --quiet --no-deps timm || echo "[setup] timm not installed: its tests will skip"
fi

echo "[setup] building cutmix_ext (log: build/build.log)"
mkdir -p build
if ! "$PY" setup.py build_ext --inplace >build/build.log 2>&1; then
  tail -n 40 build/build.log
  echo "[setup] build FAILED" >&2
  exit 1
fi
grep '^\[cutmix_ext\]' build/build.log || true
export PYTHONPATH="$PWD${PYTHONPATH:+:$PYTHONPATH}"  # the in-place build, for the scripts it runs
