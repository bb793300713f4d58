#!/usr/bin/env bash
# Sets up what is missing, builds, mixes a batch and prints a short benchmark against torchvision.
source "$(dirname "${BASH_SOURCE[0]}")/env.sh"
"$PY" examples/demo.py
"$PY" benchmarks/bench.py --quick "$@"
