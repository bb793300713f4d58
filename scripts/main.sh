#!/usr/bin/env bash
# Sets up what is missing, builds, mixes a batch, trains a small model with feature-level CutMix
# and prints a short benchmark against torchvision and plain torch.
source "$(dirname "${BASH_SOURCE[0]}")/env.sh"
"$PY" examples/demo.py
"$PY" examples/train_feature_mix.py --steps 150
"$PY" benchmarks/bench.py --quick "$@"
