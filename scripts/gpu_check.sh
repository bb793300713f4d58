#!/usr/bin/env bash
# The GPU check: one command on a machine with a GPU and no network, within about 8 minutes,
# the build included. Stages, in order (expected minutes on one H200 with 16 cores; the build
# was timed here at 35-52 s per CUDA file for two architectures on 2 cores, the rest are
# estimates until a run records them):
#   build      the extension for TORCH_CUDA_ARCH_LIST (default 9.0), then the occupancy report
#              and python -m cutmix_ext.check                                         ~1.5
#   tests      the CUDA tests that matter, pytest -n 4: CUDA = CPU bit for bit, the big shapes,
#              bad input, autograd, CUDA graphs                                        ~2
#   memcheck   compute-sanitizer memcheck on the in-place, out-of-place, device-sampling and
#              detection kernels, a few small cases each                               ~1
#   synccheck  the in-place kernels (barriers)                                         ~0.5
#   racecheck  the kernels whose blocks share a drawn table in shared memory           ~0.5
#   bench      python -m benchmarks.run --device cuda --quick: bandwidth, launches per call,
#              extra memory, against torchvision and timm                              ~1.5
#   detection  python -m benchmarks.detection --device cuda: boxes with the images     ~0.5
# Usage: bash scripts/gpu_check.sh [stage ...]   (default: all; build always runs first)
# Nothing is installed: a missing tool stops the check in its first lines. compute-sanitizer
# refuses some machines' GPUs; it is tried on a tiny program first and its stages are skipped,
# saying so, if it refuses. Each stage runs under `timeout`, within GPU_CHECK_BUDGET seconds in
# all (default 480); what a stage printed goes to $OUT/gpu-check/<stage>.log and the summary to
# $OUT/gpu-check.md as it goes ($OUT, else benchmarks/results), so a killed run still returns
# what it did. PYTHON= picks the interpreter. Exit status 1 when any stage failed or was skipped.
set -uo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
PY=${PYTHON:-python3}
BUDGET=${GPU_CHECK_BUDGET:-480}
stages=${*:-tests memcheck synccheck racecheck bench detection}
out=${OUT:-benchmarks/results}
mkdir -p "$out/gpu-check"
summary="$out/gpu-check.md"
: >"$summary"
exec > >(tee -a "$summary") 2>&1
status=0
export PYTHONPATH="$PWD${PYTHONPATH:+:$PYTHONPATH}" FORCE_CUDA=1 CUTMIX_EXPECT_CUDA=1
export TORCH_CUDA_ARCH_LIST=${TORCH_CUDA_ARCH_LIST:-9.0} MAX_JOBS=${MAX_JOBS:-$(nproc)}

fail() {
  echo "gpu_check: $*"
  exit 1
}

# stage <name> <seconds at most> <command ...>: the command's output to its log, the tail here.
stage() {
  local name=$1 cap=$2 left limit t0 rc
  shift 2
  left=$((BUDGET - SECONDS))
  if ((left < 30)); then
    echo "### $name: SKIPPED, ${SECONDS} s of the ${BUDGET} s budget are spent"
    status=1
    return 1
  fi
  limit=$((cap < left ? cap : left))
  echo "### $name (at most $limit s)"
  echo '```'
  t0=$SECONDS
  # A shell function (exported below) runs in a child bash: timeout runs programs only.
  timeout --kill-after=15 "$limit" bash -c '"$@"' stage "$@" >"$out/gpu-check/$name.log" 2>&1
  rc=$?
  tail -n 25 "$out/gpu-check/$name.log"
  echo '```'
  if ((rc == 0)); then
    echo "$name: passed in $((SECONDS - t0)) s ($SECONDS s so far)"
  else
    [ "$rc" -eq 124 ] && why="TIMED OUT after $limit s" || why="FAILED (exit $rc)"
    echo "$name: $why in $((SECONDS - t0)) s ($SECONDS s so far); full log: gpu-check/$name.log"
    status=1
  fi
  return "$rc"
}

echo "# cutmix_ext GPU check, $(date -u '+%F %H:%M UTC'): build $stages"
echo '```'
command -v nvidia-smi >/dev/null || fail "nvidia-smi not found: no GPU driver here"
nvidia-smi --query-gpu=name,driver_version,memory.total,clocks.max.sm --format=csv,noheader ||
  fail "nvidia-smi sees no GPU"
command -v nvcc >/dev/null || fail "nvcc not found: the CUDA kernels cannot be built"
nvcc --version | tail -n 1
"$PY" - <<'EOF' || fail "a Python package the check needs is missing (nothing is installed here; carry it as a wheel)"
import importlib, sys
need = ["torch", "numpy", "pytest", "xdist", "hypothesis", "ninja", "torchvision", "timm"]
missing = [m for m in need if importlib.util.find_spec(m) is None]
if missing:
    sys.exit(f"missing: {' '.join(missing)}")
import torch, torchvision, timm
if not torch.cuda.is_available() or torch.version.cuda is None:
    sys.exit(f"torch {torch.__version__} sees no CUDA device")
print(f"python {sys.version.split()[0]}, torch {torch.__version__} (CUDA {torch.version.cuda}), "
      f"torchvision {torchvision.__version__}, timm {timm.__version__}; "
      f"{torch.cuda.get_device_name()}, {torch.cuda.get_device_properties(0).multi_processor_count} SMs")
EOF
for tool in c++filt cuobjdump; do
  command -v "$tool" >/dev/null || echo "note: $tool not on PATH (the occupancy report looks for it elsewhere too)"
done
sanitizer=$(command -v compute-sanitizer || ls /usr/local/cuda/bin/compute-sanitizer 2>/dev/null || true)
echo '```'

# The sanitizer on a tiny program first: some machines' GPUs are refused.
if [ -n "$sanitizer" ] && timeout 90 "$sanitizer" --tool memcheck --error-exitcode 9 "$PY" -c \
    "import torch; x = torch.ones(8, device='cuda'); assert float((x * 2).sum()) == 16" \
    >"$out/gpu-check/sanitizer-probe.log" 2>&1; then
  echo "compute-sanitizer: works here ($sanitizer)"
else
  echo "compute-sanitizer: NOT USABLE here (missing, or it refused the device; see gpu-check/sanitizer-probe.log): its stages are skipped"
  sanitizer=""
fi

build() {
  echo "TORCH_CUDA_ARCH_LIST=$TORCH_CUDA_ARCH_LIST MAX_JOBS=$MAX_JOBS"
  "$PY" setup.py build_ext --inplace || return 1
  "$PY" -m pytest tests/test_occupancy.py tests/test_build.py -q -s -p no:cacheprovider -k "not check_command" || return 1
  "$PY" -m cutmix_ext.check
}
export PY sanitizer
export -f build
stage build 300 build || fail "the build failed: nothing else can run"

pytest_cuda() {  # pytest_cuda <args>: the tests below, quiet, stopping at nothing
  "$PY" -m pytest -q -ra -p no:cacheprovider "$@"
}
sanitize() {  # sanitize <tool> <pytest args>: one small case set under compute-sanitizer
  local tool=$1
  shift
  PYTORCH_NO_CUDA_MEMORY_CACHING=1 "$sanitizer" --tool "$tool" --error-exitcode 9 \
    "$PY" -m pytest -q -x -p no:cacheprovider "$@"
}
export -f pytest_cuda sanitize
for s in $stages; do
  case $s in
    tests)
      stage tests 300 pytest_cuda -n 4 tests/test_cuda_big.py tests/test_cuda_graphs.py \
        tests/test_mix.py tests/test_errors.py tests/test_autograd.py tests/test_general.py \
        tests/test_layouts.py tests/test_feature_mix.py tests/test_compile.py tests/test_detection.py \
        -k "cuda or CUDA or big or graph"
      ;;
    memcheck | synccheck | racecheck)
      if [ -z "$sanitizer" ]; then
        echo "### $s: SKIPPED, compute-sanitizer is not usable here"
        status=1
        continue
      fi
      case $s in
        memcheck)  # every in-place family (test_cuda_matches_cpu), out of place, device sampling, boxes
          stage memcheck 150 sanitize memcheck tests/test_mix.py tests/test_autograd.py tests/test_cuda_graphs.py \
            tests/test_detection.py -k "(test_cuda_matches_cpu and (float32 or uint8) and contiguous) or \
            (cuda and gradcheck and cutmix) or eager_device_sampling or cuda_op_equals_cpu_op" ;;
        synccheck)
          stage synccheck 120 sanitize synccheck tests/test_mix.py tests/test_detection.py \
            -k "(test_cuda_matches_cpu and bfloat16 and contiguous) or cuda_op_equals_cpu_op" ;;
        racecheck)  # shared memory: the drawn table all threads read, the chunks waiting for the barrier,
          # the detection kernel's keys and scan
          stage racecheck 120 sanitize racecheck tests/test_mix.py tests/test_cuda_graphs.py tests/test_detection.py \
            -k "eager_device_sampling or (test_cuda_matches_cpu and float32 and contiguous) or cuda_op_equals_cpu_op" ;;
      esac
      ;;
    bench)
      stage bench 200 "$PY" -m benchmarks.run --device cuda --quick --out "$out" ;;
    detection)
      stage detection 60 "$PY" -m benchmarks.detection --device cuda --out "$out" ;;
    *) echo "gpu_check: unknown stage '$s' (build tests memcheck synccheck racecheck bench detection)"; status=1 ;;
  esac
done
echo
echo "GPU check: $( ((status == 0)) && echo "every stage passed" || echo "SOME STAGES FAILED OR WERE SKIPPED") in $SECONDS s; logs in $out/gpu-check/"
exit $status
