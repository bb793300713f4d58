# Sourced by main.sh and test.sh: installs what is missing, then builds cutmix_ext in place. It
# installs into the environment of $PY: PYTHON if set, else the python3 on PATH (an activated
# venv's). Nothing is downloaded when everything is already there (as on a machine without
# network), and a second run installs nothing.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
PY=${PYTHON:-python3}

have() { "$PY" -c "import $1" >/dev/null 2>&1; }
# Present, whether or not it imports: an install that imports badly is reported by the tests'
# skips, not reinstalled on every run.
installed() { "$PY" -c "import importlib.util, sys; sys.exit(importlib.util.find_spec('$1') is None)"; }

if ! have torch; then
  echo "[setup] installing torch 2.14.1 and torchvision 0.29.1 (CUDA 13.0 build, ~5 GB)"
  "$PY" -m pip install --quiet "torch==2.14.1" "torchvision==0.29.1"
fi
# The version pip knows: 2.14.1 from PyPI, 2.13.0+cpu from PyTorch's CPU index.
torch_release=$("$PY" -c 'import importlib.metadata as m; print(m.version("torch"))')

# torchvision 0.(m+15).p is the release built with torch 2.m.p. It is pinned beside the installed
# torch so that pip cannot replace torch. PyPI's torchvision is built against PyPI's torch and
# fails to import beside a torch with a local tag ('+cpu': 'operator torchvision::nms does not
# exist'), so for those nothing is tried. A failed install (no network) is recorded and not
# retried for that torch.
no_tv=build/no-torchvision.txt
if ! installed torchvision; then
  tv=$("$PY" -c 'import re, sys; m, p = map(int, re.match(r"2\.(\d+)\.(\d+)", sys.argv[1]).groups()); print(f"0.{m + 15}.{p}")' "$torch_release")
  why=""
  if [[ $torch_release == *+* ]]; then
    why="torch $torch_release is a build of PyTorch's own index, and PyPI's torchvision fails beside it; the matching torchvision comes from that index: $PY -m pip install torchvision==$tv --index-url https://download.pytorch.org/whl/${torch_release#*+}"
  elif [ "$(head -n 1 "$no_tv" 2>/dev/null)" = "$torch_release" ]; then
    why="pip could not install torchvision==$tv for torch $torch_release before (delete $no_tv to retry)"
  else
    echo "[setup] installing torchvision $tv (built with torch $torch_release)"
    if ! "$PY" -m pip install --quiet "torchvision==$tv" "torch==$torch_release"; then
      mkdir -p build
      echo "$torch_release" >"$no_tv"
      why="pip could not install torchvision==$tv for torch $torch_release"
    fi
  fi
  [ -z "$why" ] || echo "[setup] no torchvision, so the torchvision and timm tests skip: $why"
fi

missing=()
for pkg in setuptools ninja numpy pytest hypothesis; do have "$pkg" || missing+=("$pkg"); done
if [ ${#missing[@]} -gt 0 ]; then
  echo "[setup] installing ${missing[*]}"
  "$PY" -m pip install --quiet "${missing[@]}"
fi
# timm, for the tests of the timm drop-ins against timm itself: it needs torchvision, and
# --no-deps keeps it from replacing torch.
if have torchvision && ! installed timm; then
  echo "[setup] installing timm (--no-deps)"
  "$PY" -m pip install --quiet --no-deps timm || echo "[setup] timm not installed: its tests will skip"
fi

echo "[setup] building cutmix_ext for $("$PY" -c 'import sys; print(sys.executable)') (log: build/build.log)"
mkdir -p build
build_start=$SECONDS
if ! "$PY" setup.py build_ext --inplace >build/build.log 2>&1; then
  tail -n 40 build/build.log
  echo "[setup] build FAILED" >&2
  exit 1
fi
grep '^\[cutmix_ext\]' build/build.log || true
echo "[setup] build: $((SECONDS - build_start)) s"
export PYTHONPATH="$PWD${PYTHONPATH:+:$PYTHONPATH}"  # the in-place build, for the scripts it runs
