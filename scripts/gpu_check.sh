#!/usr/bin/env bash
# scripts/gpu_check.sh - the CUDA checks, run on a lent GPU machine from the repository root with
# .gpu/bundle.tar.xz (scripts/gpu_bundle.sh) carried along. Writes everything to $OUT (or
# ./gpu-out): the device, the CUDA test's output, compute-sanitizer memcheck over it, and the CPU
# kernel and engine tests on that machine's CPU as a baseline. Exit status: the CUDA test's.
#
#   bash scripts/gpu_check.sh            # on the device, e.g. run(command=..., carry=[".gpu"])
set -uo pipefail
cd "$(dirname "$0")/.."
out=${OUT:-gpu-out}
mkdir -p "$out" .gpu/run
tar -C .gpu/run -xJf .gpu/bundle.tar.xz
export LD_LIBRARY_PATH="$PWD/.gpu/run/lib:${LD_LIBRARY_PATH:-}:/usr/local/cuda/lib64"
export DSM_CUDA_MODULE="$PWD/.gpu/run/bin/libdsm_cuda.so"
# test_cuda finds fixtures relative to the repository root and sets DSM_CUDA_UNVERIFIED itself
{ nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv; nvcc --version | tail -2; } >"$out/device.txt" 2>&1
ldd .gpu/run/bin/libdsm_cuda.so >"$out/ldd.txt" 2>&1
timeout 300 .gpu/run/bin/test_cuda >"$out/test_cuda.txt" 2>&1
rc=$?
echo "test_cuda: exit $rc" | tee -a "$out/test_cuda.txt"
if command -v compute-sanitizer >/dev/null; then
  timeout 300 compute-sanitizer --tool memcheck --error-exitcode 9 .gpu/run/bin/test_cuda >"$out/memcheck.txt" 2>&1
  echo "memcheck: exit $?" | tee -a "$out/memcheck.txt"
fi
# throughput on the device when the CUDA test passed: 110M and Qwen2-1.5B's shape, f32 weights
if [ $rc -eq 0 ]; then
  timeout 240 .gpu/run/bin/bench_forward --device cuda --shapes 110m,1.5b --weights f32,bf16 --reps 3 >"$out/bench_forward.txt" 2>&1
  timeout 240 .gpu/run/bin/bench_generate --device cuda --shapes 110m --ns 1,64 --kv f32,f16 >"$out/bench_generate.txt" 2>&1
fi
timeout 120 .gpu/run/bin/test_kernels >"$out/test_kernels.txt" 2>&1; echo "test_kernels: exit $?" | tee -a "$out/test_kernels.txt"
tail -3 "$out/test_cuda.txt"
exit $rc
