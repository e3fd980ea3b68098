#!/usr/bin/env bash
# test_tokenize.sh - `dsm tokenize` / `dsm detokenize` behaviour on the byte tokenizer (committed
# in tests/fixtures/tok/byte): output forms, chat rendering, and clear errors for bad input.
set -uo pipefail
: "${DSM:?}" "${DSM_SOURCE_DIR:?}"
BYTE=$DSM_SOURCE_DIR/tests/fixtures/tok/byte
WORK=$(mktemp -d /tmp/dsm-tok-cli.XXXXXX)
trap 'rm -rf "$WORK"' EXIT
fails=0
ok() { echo "ok: $1"; }
bad() { echo "FAIL: $1" >&2; fails=$((fails + 1)); }

# expect NAME WANT_STDOUT CMD...: exit 0 and exact stdout
expect() {
  local name=$1 want=$2; shift 2
  local got; got=$("$@" 2>"$WORK/err"); local rc=$?
  if [ $rc -eq 0 ] && [ "$got" = "$want" ]; then ok "$name"; else bad "$name: rc $rc, got '$got', want '$want' ($(cat "$WORK/err"))"; fi
}
# expect_err NAME RC NEEDLE CMD...: that exit code and NEEDLE in stderr
expect_err() {
  local name=$1 want_rc=$2 needle=$3; shift 3
  "$@" >/dev/null 2>"$WORK/err"; local rc=$?
  if [ $rc -eq "$want_rc" ] && grep -qF -- "$needle" "$WORK/err"; then ok "$name"
  else bad "$name: rc $rc (want $want_rc), stderr '$(cat "$WORK/err")' lacks '$needle'"; fi
}

expect "text" "[104,105,32,195,169]" "$DSM" tokenize --model "$BYTE" --text "hi é"
expect "stdin" "[104,105,10]" bash -c "printf 'hi\n' | '$DSM' tokenize --tokenizer '$BYTE/tokenizer.json'"
expect "specials in text" "[256,120,257]" "$DSM" tokenize --model "$BYTE" --text "<|begin_of_text|>x<|end_of_text|>"
expect "json tokens" '{"ids":[97,32,259],"tokens":["a","Ġ","<|user|>"]}' "$DSM" tokenize --model "$BYTE" --text "a <|user|>" --json
expect "chat" "[256,259,49,43,49,63,260]" "$DSM" tokenize --model "$BYTE" --chat --text "1+1?"
expect "chat system" "[256,261,66,259,81,260]" "$DSM" tokenize --model "$BYTE" --chat --system B --text Q
expect "chat override" "[256,259,81,260]" "$DSM" tokenize --tokenizer "$BYTE/tokenizer.json" --chat --chat-format byte --text Q
printf '"a"\n"\\u00e9\\n"\n""\n' > "$WORK/in.jsonl"
expect "jsonl" $'[97]\n[195,169,10]\n[]' bash -c "'$DSM' tokenize --jsonl --model '$BYTE' < '$WORK/in.jsonl'"
expect "detokenize ids" "hi" "$DSM" detokenize --model "$BYTE" --ids 104,105
expect "tokenize --decode" "hi" "$DSM" tokenize --model "$BYTE" --decode 104,105
expect "detokenize stdin" "a<|user|>" bash -c "echo '[97,259]' | '$DSM' detokenize --model '$BYTE'"
expect "detokenize skip special" "a" bash -c "echo '[256,97,257]' | '$DSM' detokenize --model '$BYTE' --skip-special"
expect "detokenize jsonl" $'"a"\n"é\\n"\n""' bash -c "printf '[97]\n[195,169,10]\n[]\n' | '$DSM' detokenize --jsonl --model '$BYTE'"
expect "lossy decode" $'\xef\xbf\xbd' "$DSM" detokenize --model "$BYTE" --ids 255
expect "round trip" "x = 37 + 48 → 85 ✓" bash -c "'$DSM' tokenize --model '$BYTE' --text 'x = 37 + 48 → 85 ✓' | '$DSM' detokenize --model '$BYTE'"

expect_err "invalid UTF-8 stdin" 2 "invalid UTF-8 at byte 2" bash -c "printf 'ab\xffcd' | '$DSM' tokenize --model '$BYTE'"
expect_err "truncated UTF-8" 2 "byte 1" "$DSM" tokenize --model "$BYTE" --text $'a\xe4\xbd'
expect_err "jsonl not a string" 2 "stdin line 2" bash -c "printf '\"a\"\n[1]\n' | '$DSM' tokenize --jsonl --model '$BYTE'"
expect_err "jsonl bad JSON" 2 "stdin line 1" bash -c "printf '\"a\n' | '$DSM' tokenize --jsonl --model '$BYTE'"
expect_err "unknown id" 2 "not in the vocabulary" "$DSM" detokenize --model "$BYTE" --ids 104,99999
expect_err "bad id list" 2 "element 2" "$DSM" detokenize --model "$BYTE" --ids 1,x
expect_err "detokenize bad JSON" 2 "stdin" bash -c "echo '[1,' | '$DSM' detokenize --model '$BYTE'"
expect_err "detokenize negative" 2 "element 0" bash -c "echo '[-1]' | '$DSM' detokenize --model '$BYTE'"
expect_err "no tokenizer" 2 "--model DIR or --tokenizer FILE" "$DSM" tokenize --text x
expect_err "both tokenizers" 2 "exactly one" "$DSM" tokenize --model "$BYTE" --tokenizer "$BYTE/tokenizer.json" --text x
expect_err "missing file" 2 "/nonexistent/tokenizer.json" "$DSM" tokenize --tokenizer /nonexistent/tokenizer.json --text x
expect_err "unknown chat format" 2 "unknown chat format 'nope'" "$DSM" tokenize --model "$BYTE" --chat --chat-format nope --text x
expect_err "chat format needs --chat" 2 "need --chat" "$DSM" tokenize --model "$BYTE" --chat-format qwen --text x
printf '{"model": {"type": "BPE", "vocab": {"a": 0}, "merges": ["a b"]}, "decoder": {"type": "ByteLevel"}}' > "$WORK/bad.json"
expect_err "merge naming unknown token" 2 "model.merges[0]" "$DSM" tokenize --tokenizer "$WORK/bad.json" --text x
printf '{"model": {"type": "BPE", "vocab": {}, "merges": []}, "decoder": {"type": "ByteLevel"}, "pre_tokenizer": {"type": "Split", "pattern": {"Regex": "[a-"}, "behavior": "Isolated"}}' > "$WORK/bad.json"
expect_err "bad regex" 2 "pre_tokenizer.pattern.Regex" "$DSM" tokenize --tokenizer "$WORK/bad.json" --text x
printf '{"model": ' > "$WORK/bad.json"
expect_err "truncated JSON" 2 "malformed JSON" "$DSM" tokenize --tokenizer "$WORK/bad.json" --text x
mkdir -p "$WORK/m" && cp "$BYTE/tokenizer.json" "$WORK/m/" && printf '{"bos_token": "<nope>"}' > "$WORK/m/tokenizer_config.json"
expect_err "config names unknown token" 2 "bos_token" "$DSM" tokenize --model "$WORK/m" --text x
expect "help" "0" bash -c "'$DSM' tokenize --help >/dev/null; echo \$?"

[ $fails -eq 0 ] || { echo "$fails failures" >&2; exit 1; }
