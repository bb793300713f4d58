#!/usr/bin/env bash
# Sanitizer tiers on the CPU (run by .ci/run; each takes a few minutes on 2 cores):
#   asan  the extension's C++ built with AddressSanitizer and UndefinedBehaviorSanitizer (CPU
#         kernels; build/sanitize-asan) running the core tests, the hypothesis fuzz of memory
#         layouts and the emulated CUDA kernels (tests/emulation, built with both as well)
#   tsan  the emulated CUDA kernels built with ThreadSanitizer: the threads of one block are real
#         threads there, so a missing or misplaced barrier is a reported data race (beside a
#         CPU-only build of the extension in build/sanitize-tsan, to compare with)
# Each tier builds what it needs: the script stands alone in a fresh clone.
# Usage: bash scripts/sanitize.sh [asan] [tsan]   (default both); PYTHON= picks the interpreter.
# Any report stops its test run with an error and this script fails.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
ROOT=$PWD
PY=${PYTHON:-python3}
tiers=${*:-asan tsan}
# The sanitizer runs check the CPU code paths only: what CI expects of the main build does not apply.
unset CUTMIX_EXPECT_CUDA FORCE_CUDA
export CUDA_HOME=${CUDA_HOME:-/usr/local/cuda}

preload() {  # the sanitizer's runtime, which must come first, then libstdc++: the runtime's
  # interceptor of C++ throws finds no real __cxa_throw in a Python that has not loaded it yet
  local lib out=""
  for name in "lib$1.so" libstdc++.so; do
    lib=$(${CXX:-g++} -print-file-name="$name")
    [ -f "$lib" ] || { echo "[sanitize] no $name next to ${CXX:-g++}" >&2; exit 1; }
    out+="$lib "
  done
  echo "$out"
}

run_tests() {  # run_tests <dir holding the cutmix_ext package> <pytest args...>
  local pkg=$1
  shift
  # From the package's folder, so that `import cutmix_ext` finds the sanitized build first;
  # --capture=sys leaves file descriptor 2 alone, so a report survives the abort it causes.
  (cd "$pkg" && "$PY" -m pytest -q -p no:cacheprovider -x --capture=sys "$@")
}

if [[ " $tiers " == *" asan "* ]]; then
  start=$SECONDS
  echo "[sanitize] asan: building the extension with -fsanitize=address,undefined (log: build/sanitize-asan/build.log)"
  out=build/sanitize-asan
  mkdir -p "$out"
  if ! CUTMIX_SANITIZE=address,undefined "$PY" setup.py build_ext --build-lib "$out/lib" \
      --build-temp "$out/tmp" >"$out/build.log" 2>&1; then
    tail -n 30 "$out/build.log"
    echo "[sanitize] asan: build FAILED" >&2
    exit 1
  fi
  cp cutmix_ext/*.py "$out/lib/cutmix_ext/"
  echo "[sanitize] asan: tests"
  # detect_leaks=0: Python itself keeps its allocations to the end. The interceptors of
  # LD_PRELOAD also see torch's and Python's heap, so an overrun of a tensor is caught. The
  # emulated tests of every tile edge and of the chunk each shape takes run the same code at
  # more sizes: they are left to the plain run.
  LD_PRELOAD=$(preload asan) \
    ASAN_OPTIONS=detect_leaks=0:abort_on_error=1:detect_stack_use_after_return=0 \
    UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1 CUTMIX_SANITIZE=address,undefined \
    run_tests "$out/lib" "$ROOT/tests/test_mix.py" "$ROOT/tests/test_errors.py" \
    "$ROOT/tests/test_general.py" "$ROOT/tests/test_layouts.py" "$ROOT/tests/test_autograd.py" \
    "$ROOT/tests/test_cuda_emulated.py" -k "not gradcheck and not every_tile_edge and not which_chunk"
  echo "[sanitize] asan: passed ($((SECONDS - start)) s)"
fi

if [[ " $tiers " == *" tsan "* ]]; then
  start=$SECONDS
  echo "[sanitize] tsan: the emulated CUDA kernels with -fsanitize=thread"
  # The main extension, which the emulated kernels are compared with, is built CPU-only into a
  # folder of this tier's own, so the tier needs no earlier build. It is not instrumented (its
  # OpenMP threads synchronise out of TSan's sight); the emulated kernels are, and only their
  # accesses are checked.
  out=build/sanitize-tsan
  mkdir -p "$out"
  echo "[sanitize] tsan: building the extension CPU-only (log: $out/build.log)"
  if ! FORCE_CUDA=0 "$PY" setup.py build_ext --build-lib "$out/lib" --build-temp "$out/tmp" \
      >"$out/build.log" 2>&1; then
    tail -n 30 "$out/build.log"
    echo "[sanitize] tsan: build FAILED" >&2
    exit 1
  fi
  cp cutmix_ext/*.py "$out/lib/cutmix_ext/"
  LD_PRELOAD=$(preload tsan) TSAN_OPTIONS=halt_on_error=1:abort_on_error=1:report_signal_unsafe=0 \
    CUTMIX_SANITIZE=thread run_tests "$out/lib" "$ROOT/tests/test_cuda_emulated.py" \
    -k "edge_boxes or mixup_against or bad_label or detection_kernel or detection_choose_kernel or device_sampling_applies or tracer or unwritten or (kernels_match and (uint8 or float32) and not cropped) or (general_kernel and (uint8 or float32 or int16) and contiguous)"
  echo "[sanitize] tsan: passed ($((SECONDS - start)) s)"
fi
