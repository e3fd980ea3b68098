#!/usr/bin/env bash
# test_eval.sh - dsm eval on a small set in the shipped forms (MATH, GSM8K, OlympiadBench-style
# records): the table's groups and counts, the per-problem JSON records, and bad set files.
# (The metrics themselves are tested against hand-computed cases in tests/unit/test_eval.c.)
set -u
DSM=${DSM:?set by ctest}
T=$(mktemp -d /tmp/dsm-eval-cli.XXXXXX)
trap 'rm -rf "$T"' EXIT
. "$(dirname "$0")/lib_check.sh"
M="$T/m"
"$DSM" model init --preset tiny --layers 1 --seed 2 --out "$M" 2>/dev/null || { echo "FAIL init"; exit 1; }
cat >"$T/set.jsonl" <<'J'
{"problem": "What is $1+1$?", "answer": "2", "subject": "Algebra", "level": 1}
{"question": "Tom has 3 apples and buys 4. How many?", "answer": "3 + 4 = 7\n#### 7"}
{"problem": "Find x if 2x = 6.", "solution": "So $x = \\boxed{3}$.", "type": "Algebra", "level": "Level 2"}
{"question": "Give the pair.", "final_answer": ["(1, 2)"]}
J
"$DSM" eval --set "$T/set.jsonl" --model "$M" -k 3 --max-tokens 6 --json-out "$T/out.jsonl" >"$T/table" 2>"$T/err"
grep -q '^| all | 4 |' "$T/table" && ok "table: all 4 problems" || bad "table: $(cat "$T/table" "$T/err")"
grep -q '^| subject: Algebra | 2 |' "$T/table" && ok "subject group" || bad "no subject group"
grep -q '^| level: 2 | 1 |' "$T/table" && ok "level group from \"Level 2\"" || bad "no level group"
[ "$(wc -l <"$T/out.jsonl")" = 4 ] && ok "4 JSON records" || bad "json-out lines"
grep -q '"gold":"7"' "$T/out.jsonl" && ok "GSM8K gold after ####" || bad "GSM8K gold"
grep -q '"gold":"3"' "$T/out.jsonl" && ok "gold from the solution box" || bad "solution-box gold"
grep -q '"gold":"(1, 2)"' "$T/out.jsonl" && ok "gold from final_answer" || bad "final_answer gold"
[ "$(grep -o '"text":' "$T/out.jsonl" | wc -l)" = 12 ] && ok "3 samples per problem recorded" || bad "sample count"

printf '{"problem": "x"}\n' >"$T/nogold.jsonl"
expect_fail "record without gold" 2 "nogold.jsonl:1: a record needs" -- "$DSM" eval --set "$T/nogold.jsonl" --model "$M"
printf '{"problem": "x", "answer": "1"}\n[1, 2\n' >"$T/broken.jsonl"
expect_fail "broken JSON line" 2 "broken.jsonl:2: not a JSON object" -- "$DSM" eval --set "$T/broken.jsonl" --model "$M"
expect_fail "missing set" 2 "nope.jsonl" -- "$DSM" eval --set "$T/nope.jsonl" --model "$M"
expect_fail "k = 0" 2 "-k and --max-tokens" -- "$DSM" eval --set "$T/set.jsonl" --model "$M" -k 0
check_done
