#!/usr/bin/env bash
# test.sh - the whole test suite: builds the AddressSanitizer/UBSan configuration and runs every
# test with CTest. Exits non-zero when anything fails. Extra arguments go to ctest
# (e.g. `bash scripts/test.sh -R tokenizer`).
set -euo pipefail
cd "$(dirname "$0")/.."
DSM_BUILD=asan bash scripts/build.sh
export ASAN_OPTIONS=${ASAN_OPTIONS:-detect_leaks=1:abort_on_error=0}
export UBSAN_OPTIONS=${UBSAN_OPTIONS:-print_stacktrace=1:halt_on_error=1}
cd build-asan
ctest --output-on-failure -j "$(nproc)" "$@"
