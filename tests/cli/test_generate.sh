#!/usr/bin/env bash
# test_generate.sh - dsm generate from the command line: JSON records, sample seeds, prompts from a
# JSONL file, stop strings, chat formats, and the bad input issue 6 names (clear error, exit 2).
set -u
DSM=${DSM:?set by ctest}
T=$(mktemp -d /tmp/dsm-generate-cli.XXXXXX)
trap 'rm -rf "$T"' EXIT
. "$(dirname "$0")/lib_check.sh"

M="$T/m"
"$DSM" model init --arch qwen2 --preset tiny --layers 2 --seed 11 --out "$M" 2>/dev/null || { echo "FAIL init"; exit 1; }

# --json: one object per completion with the documented fields
"$DSM" generate --model "$M" --prompt "7 * 6 =" -n 5 --max-tokens 12 --seed 40 --json >"$T/batch.jsonl" 2>"$T/err"
[ "$(wc -l <"$T/batch.jsonl")" = 5 ] && ok "5 JSON lines" || bad "expected 5 lines: $(cat "$T/err")"
for f in '"text":' '"ids":\[' '"finish_reason":"length"' '"logprobs":\[' '"seed":'; do
  [ "$(grep -c "$f" "$T/batch.jsonl")" = 5 ] && ok "field $f" || bad "field $f missing"
done
# sample 3 of seed 40 is the single sample of seed 43
s3=$(grep '"sample":3,' "$T/batch.jsonl" | sed 's/.*"ids":\(\[[^]]*\]\).*/\1/')
one=$("$DSM" generate --model "$M" --prompt "7 * 6 =" --max-tokens 12 --seed 43 --json 2>/dev/null | sed 's/.*"ids":\(\[[^]]*\]\).*/\1/')
[ -n "$s3" ] && [ "$s3" = "$one" ] && ok "sample i uses seed + i" || bad "sample 3 '$s3' vs seed 43 '$one'"

# prompts from JSONL: prompt, messages (chat format), prompt_ids
cat >"$T/p.jsonl" <<'J'
{"prompt": "Show that 2 + 2 = 4."}
{"messages": [{"role": "user", "content": "Prove 1 < 2."}]}
{"prompt_ids": [256, 65, 66]}
J
"$DSM" generate --model "$M" --prompts "$T/p.jsonl" -n 2 --max-tokens 6 --json --chat-format byte >"$T/many.jsonl" 2>"$T/err"
[ "$(wc -l <"$T/many.jsonl")" = 6 ] && ok "3 prompts x 2 samples" || bad "prompts file: $(cat "$T/err")"
grep -q "3 completions\|6 completions" "$T/err" && ok "totals on stderr" || bad "no totals line"

# a seeded sample with a stop string taken from that same sample: two consecutive alphanumeric byte
# tokens (so the string spans a token boundary); the run must end there with finish_reason stop
full=$("$DSM" generate --model "$M" --prompt-ids 256,72 --temperature 1 --seed 9 --max-tokens 60 --ignore-eos --json 2>/dev/null)
ids=$(printf '%s' "$full" | sed 's/.*"ids":\[\([^]]*\)\].*/\1/' | tr ',' ' ')
stop="" prev=""
alnum() { [ "$1" -ge 48 ] && [ "$1" -le 57 ] || { [ "$1" -ge 65 ] && [ "$1" -le 90 ]; } || { [ "$1" -ge 97 ] && [ "$1" -le 122 ]; }; }
for id in $ids; do
  if [ -n "$prev" ] && alnum "$prev" && alnum "$id"; then stop=$(printf "\\$(printf %o "$prev")\\$(printf %o "$id")"); break; fi
  prev=$id
done
if [ ${#stop} = 2 ]; then
  "$DSM" generate --model "$M" --prompt-ids 256,72 --temperature 1 --seed 9 --max-tokens 60 --ignore-eos --stop "$stop" --json 2>/dev/null >"$T/stop.json"
  n=$(sed 's/.*"ids":\[\([^]]*\)\].*/\1/' "$T/stop.json" | tr ',' '\n' | wc -l)
  text=$(sed 's/.*"text":"\([^"]*\)".*/\1/' "$T/stop.json")
  if grep -q '"finish_reason":"stop"' "$T/stop.json" && [ "$n" -lt 60 ] && [ "${text#*"$stop"}" = "$text" ]; then
    ok "stop string '$stop' across tokens ends generation after $n tokens"
  else bad "stop '$stop': $(cat "$T/stop.json")"; fi
else
  bad "the sample has no two consecutive alphanumeric byte tokens to build a stop string from: $ids"
fi

# bad input
# an f16 KV cache: the same interface, half the pool, text close to (here equal to) the f32 run's
"$DSM" generate --model "$M" --prompt "7 * 6 =" -n 4 --max-tokens 12 --seed 40 --json --kv-dtype f16 >"$T/f16.jsonl" 2>"$T/err"
[ "$(wc -l <"$T/f16.jsonl")" = 4 ] && grep -q '"logprobs"' "$T/f16.jsonl" && ok "--kv-dtype f16 generates" || bad "--kv-dtype f16: $(cat "$T/err")"
expect_fail "unknown KV dtype" 2 "KV cache dtype 'bf8': use f32 or f16" -- "$DSM" generate --model "$M" --prompt x --kv-dtype bf8
expect_fail "n = 0" 2 "-n must be at least 1" -- "$DSM" generate --model "$M" --prompt x -n 0
expect_fail "negative temperature" 2 "--temperature must be >= 0" -- "$DSM" generate --model "$M" --prompt x --temperature -1
expect_fail "top-p 0" 2 "--top-p must be in \(0, 1\]" -- "$DSM" generate --model "$M" --prompt x --top-p 0
expect_fail "top-p 1.5" 2 "--top-p must be in \(0, 1\]" -- "$DSM" generate --model "$M" --prompt x --top-p 1.5
expect_fail "prompt longer than the context" 2 "exceeds the context" -- "$DSM" generate --model "$M" --prompt-ids 256,1,2 --max-tokens 5000
expect_fail "unknown chat format" 2 "nosuch" -- "$DSM" generate --model "$M" --prompt x --chat-format nosuch
expect_fail "two prompt sources" 2 "exactly one of" -- "$DSM" generate --model "$M" --prompt x --prompt-ids 1
expect_fail "bad prompts file" 2 "p2.jsonl:2: .*\"prompt\", \"messages\" or \"prompt_ids\"" -- \
  sh -c "printf '{\"prompt\": \"a\"}\n{\"text\": 1}\n' >'$T/p2.jsonl'; '$DSM' generate --model '$M' --prompts '$T/p2.jsonl'"
expect_fail "token id out of range" 2 "id 9999" -- "$DSM" generate --model "$M" --prompt-ids 256,9999

check_done
