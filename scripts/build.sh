#!/usr/bin/env bash
# build.sh - configure and build dsm.
#   bash scripts/build.sh                 release build in ./build
#   DSM_BUILD=asan bash scripts/build.sh  AddressSanitizer + UBSan build in ./build-asan
set -euo pipefail
cd "$(dirname "$0")/.."
kind=${DSM_BUILD:-release}
case "$kind" in
  release) dir=build; flags=(-DCMAKE_BUILD_TYPE=Release) ;;
  asan)    dir=build-asan; flags=(-DCMAKE_BUILD_TYPE=RelWithDebInfo -DDSM_SANITIZE=ON) ;;
  debug)   dir=build-debug; flags=(-DCMAKE_BUILD_TYPE=Debug) ;;
  *) echo "build.sh: DSM_BUILD must be release, asan or debug (got '$kind')" >&2; exit 2 ;;
esac
cmake -S . -B "$dir" "${flags[@]}" >/dev/null
cmake --build "$dir" -j "$(nproc)"
