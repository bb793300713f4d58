#!/usr/bin/env bash
# The GPU check: one command on a machine with a GPU and no network, within 8 minutes, the build
# included. Stages, in this order, each with its slot in seconds and what it took on an H200 with
# 16 cores (2026-12-04, benchmarks/results/gpu-check-2026-12-04.md). The slots add up to
# deadlines: a stage may use what the stages before it left unused, never a later stage's time.
#   preflight  30   the GPU, the tools, the Python packages; compute-sanitizer tried on a tiny
#                   program (26 s)
#   build      75   the extension for TORCH_CUDA_ARCH_LIST (the environment's, else 9.0); nothing
#                   else runs without it (36 s)
#   check      30   the occupancy report (registers, spills, blocks per SM) and python -m
#                   cutmix_ext.check (20 s)
#   tests      120  every CUDA test (pytest -k cuda, -n 6 where xdist is there): CUDA = CPU bit for
#                   bit, the big shapes, bad input, autograd, CUDA graphs, compile, detection (82 s)
#   bench      35   python -m benchmarks.run --device cuda --quick: against torchvision and timm,
#                   the floors (20 s)
#   paths      20   python -m benchmarks.paths --device cuda: the kernels' own paths as ratios (rows
#                   off 16-byte boundaries, per-sample tables, batch sizes, device sampling)
#   detection  20   python -m benchmarks.detection --device cuda: boxes with the images (12 s)
#   memcheck   85   compute-sanitizer memcheck: every in-place family, the boxes, device sampling,
#                   out of place (no gradcheck)
#   synccheck  30   the in-place kernels and the boxes' kernel (barriers)
#   racecheck  35   shared memory: the drawn table, the chunks, the boxes' scan
# The numbers that matter most come first; the sanitizers, the slowest, last. A failed stage is
# recorded and the next one still runs; only a failed build stops the check. A sanitizer that
# refuses the device (as under gVisor) is "skipped (refused: ...)", not a failure.
#
# Usage: bash scripts/gpu_check.sh [--dry-run] [stage ...]   (default: every stage)
#   --dry-run  on any machine with a CUDA build of torch and nvcc, no GPU needed: the build (for
#              TORCH_CUDA_ARCH_LIST, default 9.0), the occupancy report, every GPU test collected by
#              id, each sanitizer's command line and selection, the benchmark's case list, then the
#              plan: each stage's slot and the files the run returns. CI runs it against torch 2.11.
# What comes back (at most 8 files, in $OUT, else build/gpu-check): gpu-check.md (this summary),
# gpu-check-logs.tar.gz (each stage's whole log, re-packed after every stage, so a run stopped
# from outside still returns what it did), the benchmark's cuda-<date>-quick.md and .png,
# cuda-<date>-paths.md and detection-cuda-<date>.md. PYTHON= picks the interpreter; GPU_CHECK_BUDGET (default 480) caps
# the whole. Exit status 1 when a stage failed or found no time.
set -uo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
PY=${PYTHON:-python3}
BUDGET=${GPU_CHECK_BUDGET:-480}
ALL="build check tests bench paths detection memcheck synccheck racecheck"
declare -A SLOT=([preflight]=30 [build]=75 [check]=30 [tests]=120 [bench]=35 [paths]=20 [detection]=20
                 [memcheck]=85 [synccheck]=30 [racecheck]=35)
dry=0
stages=()
for a in "$@"; do
  case $a in
    --dry-run) dry=1 ;;
    build | check | tests | bench | paths | detection | memcheck | synccheck | racecheck) stages+=("$a") ;;
    *) echo "gpu_check: unknown argument '$a' (--dry-run, or stages: $ALL)" >&2; exit 2 ;;
  esac
done
((${#stages[@]})) || read -ra stages <<<"$ALL"
[[ " ${stages[*]} " == *" build "* ]] || stages=(build "${stages[@]}")  # everything needs the build

out=${OUT:-build/gpu-check}
logs=build/gpu-check-logs
mkdir -p "$out" "$logs"
rm -f "$logs"/*.log
summary="$out/gpu-check.md"
exec > >(tee "$summary") 2>&1
tee_pid=$!
finish() {  # the summary file complete before the script's exit status is seen
  exec >&- 2>&-
  wait "$tee_pid"
}
trap finish EXIT
export PYTHONPATH="$PWD${PYTHONPATH:+:$PYTHONPATH}" FORCE_CUDA=1 CUTMIX_EXPECT_CUDA=1
export TORCH_CUDA_ARCH_LIST=${TORCH_CUDA_ARCH_LIST:-9.0} MAX_JOBS=${MAX_JOBS:-$(nproc)}
today=$(date -u +%F)
results=()  # "stage: what happened", for the closing summary
failed=0
deadline=0

pack() { tar -czf "$out/gpu-check-logs.tar.gz" -C "$logs" . 2>/dev/null; }
record() {  # record <stage> <passed|FAILED ...|skipped ...>
  results+=("$1: $2")
  [[ $2 == passed* || $2 == skipped\ \(refused* ]] || failed=1
}

# stage <name> <command ...>: runs the command under its deadline, its output to its log, the
# log's tail here.
stage() {
  local name=$1 limit t0 rc
  shift
  deadline=$((deadline + SLOT[$name]))
  limit=$(((deadline < BUDGET ? deadline : BUDGET) - SECONDS))
  ((dry)) && limit=1800  # the slots are the GPU machine's; a dry run checks what works, anywhere
  if ((limit < 5)); then
    echo "### $name: SKIPPED, no time left (${SECONDS} s spent of its deadline $deadline s)"
    record "$name" "SKIPPED (no time left)"
    return 1
  fi
  echo "### $name (at most $limit s)"
  echo '```'
  t0=$SECONDS
  # A shell function (exported below) runs in a child bash: timeout runs programs only.
  timeout --kill-after=10 "$limit" bash -c '"$@"' stage "$@" >"$logs/$name.log" 2>&1
  rc=$?
  tail -n 25 "$logs/$name.log"
  echo '```'
  if ((rc == 0)); then
    record "$name" "passed in $((SECONDS - t0)) s"
  elif ((rc == 124 || rc == 137)); then
    record "$name" "FAILED: timed out after $limit s (see gpu-check-logs.tar.gz: $name.log)"
  else
    record "$name" "FAILED (exit $rc) in $((SECONDS - t0)) s (see gpu-check-logs.tar.gz: $name.log)"
  fi
  echo "${results[-1]} ($SECONDS s so far)"
  pack
  return "$rc"
}

# What each stage runs: one definition, for the run and for the dry run.
TESTS=(tests --ignore=tests/test_cuda_emulated.py -k cuda)  # the emulation skips beside a GPU
# The sanitizers slow every launch (memcheck passed 5 tests in 234 s on an H200): a few tests
# each, by id, the most telling first, one output line per test so a stopped run shows how far it
# got. test_cuda_matches_cpu walks every in-place kernel family (rows inline, a table in memory,
# the large tile, a shared box).
MEMCHECK=("tests/test_mix.py::test_cuda_matches_cpu[contiguous-torch.float32-cutmix]"
          "tests/test_detection.py::test_cuda_op_equals_cpu_op[cutmix]"
          "tests/test_cuda_graphs.py::test_eager_device_sampling_matches_its_params[mixup]"
          "tests/test_autograd.py::test_out_of_place_equals_in_place[torch.float32-cuda]")
SYNCCHECK=("tests/test_mix.py::test_cuda_matches_cpu[contiguous-torch.bfloat16-mixup]"
           "tests/test_detection.py::test_cuda_op_equals_cpu_op[mixup]")
RACECHECK=("tests/test_cuda_graphs.py::test_eager_device_sampling_matches_its_params[cutmix]"
           "tests/test_mix.py::test_cuda_matches_cpu[channels_last-torch.uint8-cutmix]"
           "tests/test_detection.py::test_cuda_op_equals_cpu_op[cutmix]")
BENCH=(-m benchmarks.run --device cuda --quick --out "$out")
PATHS=(-m benchmarks.paths --device cuda --out "$out")
DETECTION=(-m benchmarks.detection --device cuda --min-time 0.5 --out "$out")

pytest_args=(-q -ra -p no:cacheprovider)
"$PY" -c "import xdist" 2>/dev/null && xdist=(-n 6) || xdist=()
"$PY" -c "import pytest_timeout" 2>/dev/null && per_test=(--timeout 100) || per_test=()

run_build() {
  echo "TORCH_CUDA_ARCH_LIST=$TORCH_CUDA_ARCH_LIST MAX_JOBS=$MAX_JOBS"
  "$PY" setup.py build_ext --inplace
}
run_check() {
  "$PY" -m pytest tests/test_occupancy.py -q -s -p no:cacheprovider
  local occupancy=$?
  "$PY" -m cutmix_ext.check
  local check=$?
  ((occupancy == 0 && check == 0))
}
run_pytest() {  # two threads a worker: the CPU side of the comparisons is small, the workers many
  OMP_NUM_THREADS=${OMP_NUM_THREADS:-2} "$PY" -m pytest "$@"
}
run_sanitizer() {  # run_sanitizer <tool> <pytest args>: without the caching allocator, so that
  # an overrun of one tensor is not hidden inside another's block
  local tool=$1
  shift
  PYTORCH_NO_CUDA_MEMORY_CACHING=1 "$sanitizer" --tool "$tool" --error-exitcode 9 \
    "$PY" -m pytest -v -x -p no:cacheprovider "$@"
}
collect() {  # collect <pytest args>: the ids, and a failure when nothing or something broken is collected
  local ids
  ids=$("$PY" -m pytest --collect-only -q -p no:cacheprovider "$@") || { echo "$ids"; return 1; }
  echo "$ids"
  grep -q '::' <<<"$ids" || { echo "nothing collected"; return 1; }
}
export PY sanitizer
export -f run_build run_check run_pytest run_sanitizer collect

echo "# cutmix_ext GPU check$( ((dry)) && echo ", dry run"), $(date -u '+%F %H:%M UTC'): ${stages[*]}"
echo
echo '```'
echo "preflight (at most ${SLOT[preflight]} s)"
deadline=${SLOT[preflight]}
"$PY" - <<'EOF' || { echo "gpu_check: a Python package the check needs is missing or broken"; exit 1; }
import importlib.util, sys
need = ["torch", "numpy", "pytest", "hypothesis", "ninja"]
missing = [m for m in need if importlib.util.find_spec(m) is None]
if missing:
    sys.exit(f"missing: {' '.join(missing)} (nothing is installed here; carry it as a wheel)")
import torch
def version(name):
    try:
        return importlib.import_module(name).__version__
    except Exception as exc:  # absent, or built for another torch: its tests skip, saying so
        return f"unavailable ({type(exc).__name__})"
import importlib
print(f"python {sys.version.split()[0]}, torch {torch.__version__} (CUDA {torch.version.cuda}), "
      f"torchvision {version('torchvision')}, timm {version('timm')}, xdist {version('xdist')}")
if torch.version.cuda is None:
    sys.exit(f"torch {torch.__version__} is a CPU-only build: the CUDA kernels cannot be built")
if torch.cuda.is_available():
    p = torch.cuda.get_device_properties(0)
    print(f"{p.name}: {p.multi_processor_count} SMs, {p.total_memory / 2**30:.0f} GiB, "
          f"compute capability {p.major}.{p.minor}, {torch.cuda.device_count()} device(s)")
else:
    print("torch sees no CUDA device")
EOF
command -v nvcc >/dev/null || { echo "gpu_check: nvcc not found: the CUDA kernels cannot be built"; exit 1; }
nvcc --version | tail -n 1
sanitizer=$(command -v compute-sanitizer || ls "${CUDA_HOME:-/usr/local/cuda}/bin/compute-sanitizer" 2>/dev/null || true)
refused=""
if ((dry)); then
  nvidia-smi -L 2>/dev/null || echo "no GPU here (dry run): nothing is launched"
  [ -n "$sanitizer" ] && echo "compute-sanitizer: $sanitizer" || echo "compute-sanitizer: not found here"
else
  nvidia-smi --query-gpu=name,driver_version,memory.total,clocks.max.sm --format=csv,noheader ||
    { echo "gpu_check: nvidia-smi sees no GPU"; exit 1; }
  "$PY" -c "import sys, torch; sys.exit(not torch.cuda.is_available())" ||
    { echo "gpu_check: torch sees no CUDA device"; exit 1; }
  # Some machines' GPUs are refused by the sanitizer (gVisor: "Device not supported"): try it once.
  if [ -z "$sanitizer" ]; then
    refused="compute-sanitizer not found"
  elif ! timeout 60 "$sanitizer" --tool memcheck --error-exitcode 9 "$PY" -c \
      "import torch; x = torch.ones(8, device='cuda'); assert float((x * 2).sum()) == 16" \
      >"$logs/sanitizer-probe.log" 2>&1; then
    refused=$(grep -m1 -iE "error|not supported|refused" "$logs/sanitizer-probe.log" | cut -c1-160)
    refused=${refused:-"it failed on a tiny program (sanitizer-probe.log)"}
  fi
  echo "compute-sanitizer: ${refused:+refused here: }${refused:-works here ($sanitizer)}"
fi
echo "preflight: $SECONDS s"
echo '```'
pack

for s in "${stages[@]}"; do
  if ((dry)); then
    case $s in
      build) stage build run_build || { echo "gpu_check: the build failed"; exit 1; } ;;
      check) stage check run_check ;;
      tests) stage tests collect "${TESTS[@]}" ;;
      memcheck) stage memcheck collect "${MEMCHECK[@]}" ;;
      synccheck) stage synccheck collect "${SYNCCHECK[@]}" ;;
      racecheck) stage racecheck collect "${RACECHECK[@]}" ;;
      bench) stage bench "$PY" "${BENCH[@]}" --list ;;
      paths) stage paths "$PY" -m benchmarks.paths --help ;;
      detection) stage detection "$PY" -m benchmarks.detection --help ;;
    esac
    case $s in
      tests) echo "would run: $PY -m pytest ${pytest_args[*]} ${xdist[*]} ${per_test[*]} ${TESTS[*]}" ;;
      memcheck | synccheck | racecheck)
        var=${s^^}[@]
        echo "would run: PYTORCH_NO_CUDA_MEMORY_CACHING=1 ${sanitizer:-compute-sanitizer} --tool $s --error-exitcode 9 $PY -m pytest -v -x -p no:cacheprovider ${!var}" ;;
      bench) echo "would run: $PY ${BENCH[*]}" ;;
      paths) echo "would run: $PY ${PATHS[*]}" ;;
      detection) echo "would run: $PY ${DETECTION[*]}" ;;
    esac
    continue
  fi
  case $s in
    build) stage build run_build || { echo "gpu_check: the build failed: nothing else can run"; exit 1; } ;;
    check) stage check run_check ;;
    tests) stage tests run_pytest "${pytest_args[@]}" "${xdist[@]}" "${per_test[@]}" --durations=10 "${TESTS[@]}" ;;
    bench) stage bench "$PY" "${BENCH[@]}" --brief ;;
    paths) stage paths "$PY" "${PATHS[@]}" ;;
    detection) stage detection "$PY" "${DETECTION[@]}" ;;
    memcheck | synccheck | racecheck)
      if [ -n "$refused" ]; then
        deadline=$((deadline + SLOT[$s]))  # unspent: the next stage may use it
        echo "### $s: skipped (refused: $refused)"
        record "$s" "skipped (refused: $refused)"
        continue
      fi
      var=${s^^}[@]
      stage "$s" run_sanitizer "$s" "${!var}" ;;
  esac
done

echo
echo "## Summary"
for r in "${results[@]}"; do echo "- $r"; done
if ((dry)); then
  echo
  echo "## The plan on the GPU (slots add up to deadlines; GPU_CHECK_BUDGET=$BUDGET s in all)"
  t=0
  echo "| stage | slot (s) | ends by (s) |"
  echo "|---|---:|---:|"
  for s in preflight "${stages[@]}"; do
    t=$((t + SLOT[$s]))
    echo "| $s | ${SLOT[$s]} | $t |"
  done
  echo
  echo "Files returned (at most 8): gpu-check.md, gpu-check-logs.tar.gz, cuda-$today-quick.md," \
    "cuda-$today-quick.png, cuda-$today-paths.md, detection-cuda-$today.md"
  ((t <= BUDGET)) || { echo "gpu_check: the slots add up to $t s, over the budget of $BUDGET s"; failed=1; }
fi
pack
echo
echo "GPU check$( ((dry)) && echo " (dry run)"): $( ((failed)) && echo "SOME STAGES FAILED" || echo "every stage passed") in $SECONDS s; returned: $(ls "$out" | tr '\n' ' ')"
exit $failed
