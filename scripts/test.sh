#!/usr/bin/env bash
# Sets up what is missing, builds, and runs the test suite (CUDA tests run when a GPU is present),
# in the environment of PYTHON, else of the python3 on PATH. Arguments go to pytest.
source "$(dirname "${BASH_SOURCE[0]}")/env.sh"
exec "$PY" -m pytest tests -q -ra "$@"
