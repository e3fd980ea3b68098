#!/usr/bin/env bash
# scripts/gpu_bundle.sh - pack what a lent GPU machine needs to run the CUDA checks.
#
# The GPU machine has nvcc, cmake and the CUDA libraries but no package registry, so it cannot
# install this project's build dependencies (jansson, libpq, PCRE2, utf8proc, curl, OpenBLAS).
# This script builds the Release tree here (build/, with the CUDA module when nvcc exists) and
# packs the binaries that the checks run, with every shared library they load that is not part of
# glibc or CUDA, into .gpu/bundle.tar.xz (ignored by git; a few tens of MB). Carry `.gpu` to the
# device and run scripts/gpu_check.sh there.
#
#   bash scripts/gpu_bundle.sh
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/build.sh >/dev/null
[ -f build/libdsm_cuda.so ] || { echo "gpu_bundle: build/libdsm_cuda.so missing (no nvcc here?)" >&2; exit 1; }
rm -rf .gpu && mkdir -p .gpu/pack/bin .gpu/pack/lib
bins="build/dsm build/libdsm_cuda.so build/tests/test_cuda build/tests/test_kernels build/tests/test_engine
      build/tests/bench_generate build/tests/bench_forward"
for b in $bins; do cp "$b" .gpu/pack/bin/; done
# OpenBLAS is opened with dlopen (kernels/cpu/blas.c), so ldd does not list it
blas=$(readlink -f "$(ldconfig -p | awk '/libopenblas\.so\.0 /{print $NF; exit}')")
cp "$blas" .gpu/pack/lib/libopenblas.so.0
for b in $bins; do
  ldd "$b" | awk '$2 == "=>" && $3 ~ /^\// {print $3}'
done | sort -u | while read -r lib; do
  case "$(basename "$lib")" in
    # glibc and the toolchain's runtime are the machine's; CUDA's come with its toolkit
    libc.so*|libm.so*|libpthread.so*|libdl.so*|librt.so*|ld-linux*|libgcc_s.so*|libstdc++.so*) ;;
    libcuda*|libcublas*|libcudart*|libnccl*|libnvrtc*) ;;
    *) cp -L "$lib" .gpu/pack/lib/ ;;
  esac
done
tar -C .gpu/pack -cJf .gpu/bundle.tar.xz bin lib
rm -rf .gpu/pack
echo "gpu_bundle: .gpu/bundle.tar.xz, $(du -h .gpu/bundle.tar.xz | cut -f1); on the device: bash scripts/gpu_check.sh"
