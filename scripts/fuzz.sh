#!/usr/bin/env bash
# fuzz.sh - fuzz the safetensors header parser (st_parse) with libFuzzer for a bounded time.
#
#   bash scripts/fuzz.sh                 # 60 s
#   FUZZ_SECONDS=300 bash scripts/fuzz.sh
#
# Builds tests/fuzz/fuzz_safetensors.c with clang -fsanitize=fuzzer,address,undefined into
# ./.fuzz/ (outside CMake: the fuzzer runtime is clang-only), seeds a working corpus in
# .fuzz/corpus from tests/fuzz/corpus, tests/fuzz/regressions and the fixture models, and runs it.
# Any crashing, leaking or hanging input is copied to tests/fuzz/regressions/ (replayed by
# tests/unit/test_safetensors_regress.c under CTest) and the script exits 1. Exits 2 when it
# cannot build. Environment: FUZZ_SECONDS (60), FUZZ_MAX_LEN (4096), CC (clang).
set -euo pipefail
cd "$(dirname "$0")/.."
secs=${FUZZ_SECONDS:-60}
max_len=${FUZZ_MAX_LEN:-4096}
cc=${CC:-clang}
out=.fuzz
regress=tests/fuzz/regressions

if ! command -v "$cc" >/dev/null; then
  echo "fuzz.sh: $cc not found; install clang (Debian: apt-get install clang libclang-rt-14-dev)" >&2
  exit 2
fi
mkdir -p "$out/corpus" "$out/artifacts" "$regress"

# The parser needs dsm_dtype_size/name from kernels/backend.c, which also references the backend
# constructors; stub those so that the fuzzer links without OpenBLAS and OpenMP.
cat >"$out/stubs.c" <<'STUBS'
#include "kernels/backend.h"
int dsm_backend_cpu_create(int n, struct dsm_backend **out, struct dsm_err *err) {
    (void)n; *out = NULL; return dsm_errf(err, DSM_EBACKEND, "not in the fuzzer");
}
int dsm_backend_ref_create(struct dsm_backend **out, struct dsm_err *err) {
    *out = NULL; return dsm_errf(err, DSM_EBACKEND, "not in the fuzzer");
}
STUBS

srcs=(tests/fuzz/fuzz_safetensors.c common/safetensors.c common/err.c common/util.c common/log.c
      kernels/backend.c "$out/stubs.c")
for s in "${srcs[@]}"; do
  [ -f "$s" ] || { echo "fuzz.sh: missing $s" >&2; exit 2; }
done
# shellcheck disable=SC2046
if ! "$cc" -std=c11 -D_GNU_SOURCE -g -O1 -fno-omit-frame-pointer \
    -fsanitize=fuzzer,address,undefined -fno-sanitize-recover=undefined -I. \
    "${srcs[@]}" $(pkg-config --cflags --libs jansson) -ldl -lm -o "$out/fuzz_safetensors"; then
  echo "fuzz.sh: build failed" >&2
  exit 2
fi

cp -f tests/fuzz/corpus/* "$out/corpus/" 2>/dev/null || true
find "$regress" -maxdepth 1 -type f ! -name 'README*' ! -name '.*' -exec cp -f {} "$out/corpus/" \;
for f in tests/fixtures/models/*/*.safetensors; do
  [ -f "$f" ] && cp -f "$f" "$out/corpus/fixture_$(basename "$(dirname "$f")")_$(basename "$f")"
done

rm -f "$out"/artifacts/*
echo "fuzz.sh: fuzzing st_parse for ${secs}s (max_len $max_len), log in $out/fuzz.log" >&2
set +e
ASAN_OPTIONS=${ASAN_OPTIONS:-detect_leaks=1:abort_on_error=1} \
UBSAN_OPTIONS=${UBSAN_OPTIONS:-print_stacktrace=1:halt_on_error=1} \
  "$out/fuzz_safetensors" "$out/corpus" -dict=tests/fuzz/safetensors.dict \
  -max_total_time="$secs" -max_len="$max_len" -timeout=10 -rss_limit_mb=2048 \
  -artifact_prefix="$out/artifacts/" -print_final_stats=1 >"$out/fuzz.log" 2>&1
rc=$?
set -e
grep -E '^(Done|stat::number_of_executed_units|stat::average_exec_per_sec|stat::new_units_added)' \
  "$out/fuzz.log" >&2 || true

found=0
for a in "$out"/artifacts/*; do
  [ -f "$a" ] || continue
  name="$(basename "$a")"
  cp -f "$a" "$regress/$name"
  echo "fuzz.sh: FOUND $name -> $regress/$name" >&2
  found=1
done
if [ "$found" = 1 ] || [ "$rc" != 0 ]; then
  tail -n 60 "$out/fuzz.log" >&2
  echo "fuzz.sh: FAILED (libFuzzer exit $rc); replay with: $out/fuzz_safetensors <file>" >&2
  exit 1
fi
echo "fuzz.sh: no crashes" >&2
