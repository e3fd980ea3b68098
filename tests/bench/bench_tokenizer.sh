#!/usr/bin/env bash
# bench_tokenizer.sh - dsm's tokenizer next to tokenizers.js (the npm reference) on the same corpus,
# same machine, same run: encode and decode MB/s per model and the dsm/JS ratio.
#
#   bash tests/bench/bench_tokenizer.sh BUILD_DIR [DATA_DIR]
#
# BUILD_DIR holds tests/bench_tokenizer built without sanitizers (e.g. cmake -DCMAKE_BUILD_TYPE=Release).
# The corpus is tests/ref/tok/tokref.js's (edge cases + the shared data sets, ~3 MB).
set -euo pipefail
SRC=$(cd "$(dirname "$0")/../.." && pwd)
BUILD=${1:?usage: bench_tokenizer.sh BUILD_DIR [DATA_DIR]}
DATA=${2:-$SRC/../shared/data}
BENCH=$BUILD/tests/bench_tokenizer
[ -x "$BENCH" ] || BENCH=$BUILD/bench_tokenizer
REF=$SRC/tests/ref/tok
(cd "$REF" && npm ls --silent >/dev/null 2>&1) || (cd "$REF" && npm ci --silent --no-audit --no-fund)
WORK=$(mktemp -d /tmp/dsm-tok-bench.XXXXXX)
trap 'rm -rf "$WORK"' EXIT
node "$REF/tokref.js" corpus --data "$DATA" "$SRC/tests/fixtures/tok/edge_cases.jsonl" "$WORK/corpus.jsonl"
for m in deepseek_v3 qwen3; do
  js=$(node "$REF/tokref.js" bench $m "$WORK/corpus.jsonl" 3)
  c=$("$BENCH" "$(node "$REF/tokref.js" path $m)" "$WORK/corpus.jsonl" 3)
  echo "$js"
  echo "$c"
  node -e '
    const js = JSON.parse(process.argv[1]), c = JSON.parse(process.argv[2]);
    const r = (k) => (c[k] / js[k]).toFixed(1);
    console.log(`${process.argv[3]}: dsm/js encode ${r("encode_mb_s")}x (cold ${r("encode_mb_s_cold")}x), decode ${r("decode_mb_s")}x`);
  ' "$js" "$c" $m
done
