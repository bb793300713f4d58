#!/usr/bin/env bash
# Sets up what is missing, builds, mixes a batch, draws the pictures of docs/ anew into build/main/,
# trains a small model with feature-level CutMix and runs the short form of the benchmark (CPU,
# and CUDA when there is a GPU) against torchvision, timm, kornia and plain torch, and the
# detection benchmark (against ultralytics too); their tables and charts go to build/benchmarks.
#
# The long steps draw a progress bar on stderr, and whatever else a step writes to stderr shows as
# it comes; their results (a line each, the benchmark's headline table) follow in a summary. A step
# that fails prints its output and stops the script with its exit status.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
mkdir -p build/main

# The build's progress from the [done/total] lines ninja writes to build/build.log, until killed:
# a bar on stderr, a line each quarter (never redrawn in place: env.sh's lines come in between).
build_bar() {
  set +e
  local start=$SECONDS shown=-1 n m
  poll() {
    IFS=/ read -r n m < <(grep -o '^\[[0-9]*/[0-9]*\]' build/build.log 2>/dev/null | tail -n 1 | tr -d '[]')
    if [ -n "$m" ] && [ "$m" -gt 0 ] && [ $((4 * n / m)) -ne "$shown" ]; then
      shown=$((4 * n / m))
      printf '[%-30s] %d/%d %4d s  building cutmix_ext\n' "$(printf '%*s' $((30 * n / m)) '' | tr ' ' '#')" \
        "$n" "$m" $((SECONDS - start)) >&2
    fi
  }
  trap 'poll; exit 0' TERM  # the last lines come as the build ends
  while sleep 1; do poll; done
}

rm -f build/build.log  # a previous run's would show as this one's progress
build_bar &
watcher=$!
trap 'kill "$watcher" 2>/dev/null || true' EXIT
source scripts/env.sh
kill "$watcher" && wait "$watcher" || true

# step NAME COMMAND...: runs the command with its stdout in build/main/NAME.log, for the summary;
# on failure prints it with the exit status, which the script then exits with.
results=()
step() {
  local name=$1 rc=0
  shift
  "$@" >"build/main/$name.log" || rc=$?
  if [ "$rc" -ne 0 ]; then
    echo "[main] $name FAILED (exit status $rc): $*; its output (build/main/$name.log):" >&2
    cat "build/main/$name.log" >&2
    exit "$rc"
  fi
  results+=("build/main/$name.log")
}

step demo "$PY" examples/demo.py --brief
if ! "$PY" -c "import matplotlib, skimage" >/dev/null 2>&1; then
  echo "[setup] installing matplotlib and scikit-image (for the picture and the charts)"
  "$PY" -m pip install --quiet matplotlib scikit-image
fi
# kornia, to compare with: --no-deps, so that it cannot replace torch (its rows say so if absent)
if ! "$PY" -c "import kornia" >/dev/null 2>&1; then
  echo "[setup] installing kornia (--no-deps)"
  "$PY" -m pip install --quiet --no-deps kornia kornia-rs || echo "[setup] kornia not installed: its rows will say so"
fi
# ultralytics, for the detection benchmark's rows of its CutMix and MixUp: --no-deps too (its
# requirements name torch and torchvision), with the few packages its augment module imports.
# Looked for rather than imported: beside a torch without torchvision only the benchmark's import
# of it works (it tells ultralytics which torchvision goes with that torch).
if ! "$PY" -c "import cv2, yaml, PIL, importlib.util as u, sys; sys.exit(not u.find_spec('ultralytics'))" >/dev/null 2>&1; then
  echo "[setup] installing ultralytics 8.4.190 (--no-deps) with opencv-python-headless, pyyaml and pillow"
  "$PY" -m pip install --quiet --no-deps ultralytics==8.4.190 opencv-python-headless pyyaml pillow ||
    echo "[setup] ultralytics not installed: its rows in the detection benchmark will say so"
fi
step figure "$PY" examples/figure.py --out build/main/mixing.png
step detection-figure "$PY" examples/detection_figure.py --out build/main/detection.png
step training "$PY" examples/train_feature_mix.py --steps 150 --brief
step benchmark-cpu "$PY" -m benchmarks.run --device cpu --quick --brief --out build/benchmarks "$@"
step benchmark-detection "$PY" -m benchmarks.detection --rounds 3 --min-time 0.5 --brief --out build/benchmarks
if "$PY" -c "import sys, torch; sys.exit(not torch.cuda.is_available())"; then
  step benchmark-cuda "$PY" -m benchmarks.run --device cuda --quick --brief --out build/benchmarks "$@"
  step benchmark-detection-cuda "$PY" -m benchmarks.detection --device cuda --brief --out build/benchmarks
fi

echo
cat "${results[@]}"
echo
echo "[main] done in $SECONDS s"
