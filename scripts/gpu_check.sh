#!/usr/bin/env bash
# On a machine with a GPU: build, then the stages named (default: all of them, in this order):
#   test      the whole test suite (CUDA tests included: gradcheck, opcheck, CUDA graphs)
#   sanitize  the CUDA tests again under compute-sanitizer memcheck and racecheck
#   bench     the CUDA benchmark (python -m benchmarks.run --device cuda): its table and chart
# What it prints is also saved to $OUT (or benchmarks/results)/gpu-<date>.md, with the
# benchmark's cuda-<date>.md and .png beside it. All three take about 10 minutes on an H200;
# with a shorter lease, run "test bench" in one call and "sanitize" in another.
export FORCE_CUDA=1 CUTMIX_EXPECT_CUDA=1  # the build must contain the CUDA kernels
source "$(dirname "${BASH_SOURCE[0]}")/env.sh"
set +e -o pipefail
stages=${*:-test sanitize bench}
out=${OUT:-benchmarks/results}
mkdir -p "$out"
log="$out/gpu-$(date -u +%F).md"
sanitizer=$(command -v compute-sanitizer || ls /usr/local/cuda/bin/compute-sanitizer 2>/dev/null)
status=0
exec > >(tee -a "$log") 2>&1
echo "# cutmix_ext on a GPU, $(date -u '+%F %H:%M UTC'): $stages"
echo '```'
nvidia-smi --query-gpu=name,driver_version,memory.total --format=csv,noheader
"$PY" -c 'import torch, torchvision; print("torch", torch.__version__, "cuda", torch.version.cuda, "torchvision", torchvision.__version__)'
echo '```'
if [[ " $stages " == *" test "* ]]; then
  echo "## Tests"
  echo '```'
  "$PY" -m pytest tests -q -ra -p no:cacheprovider 2>&1 | tail -n 25 || status=1
  echo '```'
  echo "($SECONDS s so far)"
fi
# memcheck over the CUDA tests of every kernel (in place, out of place and backward, device
# sampling); racecheck (slow) over the in-place kernels, whose blocks share a barrier and, with
# sampling="device", a table in shared memory.
if [[ " $stages " == *" sanitize "* ]]; then
  for run in "memcheck|tests/test_mix.py tests/test_errors.py|cuda and (float32 or uint8) and (contiguous or cropped)" \
             "memcheck|tests/test_autograd.py tests/test_cuda_graphs.py|cuda and not reduce_overhead" \
             "racecheck|tests/test_mix.py|cuda_matches_cpu and (float32 or uint8) and not channels_last" \
             "racecheck|tests/test_cuda_graphs.py|eager_device_sampling" \
             "memcheck|tests/test_general.py|cuda and (float32 or uint8 or int64 or bool)" \
             "racecheck|tests/test_general.py|mix_matches_reference and cuda and float32 and contiguous"; do
    tool=${run%%|*}
    rest=${run#*|}
    files=${rest%%|*}
    echo "## compute-sanitizer --tool $tool: $files -k '${rest#*|}'"
    echo '```'
    # shellcheck disable=SC2086  # $files is a list of paths
    PYTORCH_NO_CUDA_MEMORY_CACHING=1 "$sanitizer" --tool "$tool" --error-exitcode 9 \
      "$PY" -m pytest $files -q -x -p no:cacheprovider -k "${rest#*|}" 2>&1 | tail -n 15 || status=1
    echo '```'
    echo "($SECONDS s so far)"
  done
fi
if [[ " $stages " == *" bench "* ]]; then
  echo "## Benchmark"
  "$PY" -m benchmarks.run --device cuda --min-run-time 0.1 --out "$out" | sed 's/^# /### /' || status=1
  echo "($SECONDS s so far)"
fi
echo "saved to $log"
exit $status
