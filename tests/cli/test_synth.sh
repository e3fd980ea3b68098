#!/usr/bin/env bash
# test_synth.sh - `dsm synth`: problems (JSONL, deterministic, difficulty range), proofs with
# planted errors checked back, analyses and their judge, meta-verifier and generator outputs read
# back by `dsm parse` when it exists, SFT records, templates and their recorded SHA-256, and bad
# flags / bad input (exit 2 with a message, no sanitizer report).
set -u
DSM=${DSM:?set by ctest}
T=$(mktemp -d /tmp/dsm-synth-cli.XXXXXX)
trap 'rm -rf "$T"' EXIT
. "$(dirname "$0")/lib_check.sh"

# expect_out NAME PATTERN -- CMD...: CMD exits 0 and its stdout matches PATTERN (extended regex)
expect_out() {
  local name=$1 pat=$2; shift 3
  "$@" >"$T/out" 2>"$T/err"; local rc=$?
  if [ $rc -ne 0 ]; then bad "$name: exit $rc: $(head -c 300 "$T/err")"; return; fi
  if ! grep -qE -- "$pat" "$T/out"; then bad "$name: stdout !~ /$pat/: $(head -c 300 "$T/out")"; return; fi
  if grep -qE 'Sanitizer|runtime error' "$T/err"; then bad "$name: sanitizer report"; return; fi
  ok "$name"
}

P='Show that 37 + 48 - 19 = 66.'

# problems: count, fields, determinism, the difficulty range
"$DSM" synth problems --n 50 --seed 4 --difficulty 2..4 >"$T/p1" 2>"$T/err" && ok "problems run" || bad "problems: $(cat "$T/err")"
"$DSM" synth problems --n 50 --seed 4 --difficulty 2..4 >"$T/p2" 2>/dev/null
[ "$(wc -l <"$T/p1")" = 50 ] && ok "50 lines" || bad "expected 50 lines"
cmp -s "$T/p1" "$T/p2" && ok "same seed, same problems" || bad "problems differ between runs"
"$DSM" synth problems --n 50 --seed 5 --difficulty 2..4 >"$T/p3" 2>/dev/null
cmp -s "$T/p1" "$T/p3" && bad "another seed gave the same problems" || ok "another seed, other problems"
[ "$(grep -cE '^\{"index":[0-9]+,"problem":"Show that [0-9 +-]+ = [0-9]+\.","difficulty":[234],"steps":[234],"claim":[0-9]+\}$' "$T/p1")" = 50 ] \
  && ok "problem fields and difficulty range" || bad "problem lines: $(head -3 "$T/p1")"
"$DSM" synth problems --n 5 --seed 4 --start 10 --difficulty 2..4 >"$T/p4" 2>/dev/null
sed -n 11,15p "$T/p1" | cmp -s - "$T/p4" && ok "--start continues the stream" || bad "--start: $(cat "$T/p4")"

# every plant: the proof written checks back to its intended score
for kv in none:1.0 arith:0.0 copy:0.0 skip:0.5 merge:0.5 conclusion:0.0 no_conclusion:0.0; do
  k=${kv%%:*} s=${kv#*:}
  "$DSM" synth proof --problem 'Show that 12 + 30 - 7 + 15 = 50.' --plant "$k" --plant-seed 3 >"$T/proof" 2>"$T/err"
  expect_out "plant $k checks to $s" "^\{\"score\":$s," -- "$DSM" synth check --problem 'Show that 12 + 30 - 7 + 15 = 50.' --proof-file "$T/proof"
done
expect_out "proof --json" '"plant":"skip","score":0.5,"defect":"skipped"' -- "$DSM" synth proof --seed 1 --index 3 --difficulty 1 --plant merge --json

# check: the exact JSON, stdin, and an analysis judged with it
printf '37 + 48 = 85\n85 - 19 = 67\nSo 37 + 48 - 19 = 66.\n' >"$T/bad"
expect_out "check wrong step" '^\{"score":0.0,"defect":"wrong_step","line":2,"lines":2,"omitted":0\}$' -- "$DSM" synth check --problem "$P" --proof-file "$T/bad"
expect_out "check from stdin" '"defect":"wrong_step"' -- bash -c "\"$DSM\" synth check --problem '$P' --proof-file - <'$T/bad'"
expect_out "check --proof" '^\{"score":1.0,"defect":"none"' -- "$DSM" synth check --problem "$P" --proof $'37 + 48 = 85\n85 - 19 = 66\nSo 37 + 48 - 19 = 66.'
expect_out "check garbage" '"score":0.0,"defect":"unparsable"' -- "$DSM" synth check --problem "$P" --proof $'\x01\x02 hello'
"$DSM" synth analyze --problem "$P" --proof-file "$T/bad" >"$T/an" 2>"$T/err"
grep -q '^Line 2: 85 - 19 = 66, not 67. Wrong.$' "$T/an" && grep -q '^\\boxed{0}$' "$T/an" && ok "analysis names the wrong step" || bad "analysis: $(cat "$T/an" "$T/err")"
expect_out "right analysis judged right" '"analysis":\{"format_ok":true,"score":0.0,"ms":1.0,"right":true' -- "$DSM" synth check --problem "$P" --proof-file "$T/bad" --analysis-file "$T/an"
for fm in false_issue:0.0:0 missed:0.0:0 wrong_score:0.5:0.5 expr_error:0.5:0.5; do
  f=${fm%%:*} m=${fm#*:} b=${fm##*:}
  m=${m%%:*}
  "$DSM" synth analyze --problem "$P" --proof-file "$T/bad" --flaw "$f" --seed 2 >"$T/an_$f" 2>"$T/err"
  expect_out "flaw $f judged ms $m" "\"ms\":$m,\"right\":false" -- "$DSM" synth check --problem "$P" --proof-file "$T/bad" --analysis-file "$T/an_$f"
  expect_out "meta output for $f" "^\\\\boxed\\{$b\\}$" -- "$DSM" synth analyze --problem "$P" --proof-file "$T/bad" --role metaverifier --analysis-file "$T/an_$f"
done
expect_out "judge a non-analysis" '"analysis":\{"format_ok":false,"score":null,"ms":0.0' -- "$DSM" synth check --problem "$P" --proof-file "$T/bad" --analysis 'looks fine \boxed{1}'
expect_out "generator honest" '^\\boxed\{0\}$' -- "$DSM" synth analyze --problem "$P" --proof-file "$T/bad" --role generator
expect_out "generator dishonest" '^\\boxed\{1\}$' -- "$DSM" synth analyze --problem "$P" --proof-file "$T/bad" --role generator --dishonest
grep -q '^## Solution$' "$T/out" && grep -q '^## Self Evaluation$' "$T/out" && ok "generator headings" || bad "generator: $(cat "$T/out")"

# the role parsers (dsm parse) read what the writers wrote
"$DSM" synth analyze --problem "$P" --proof-file "$T/bad" --role generator >"$T/gen" 2>/dev/null
"$DSM" synth analyze --problem "$P" --proof-file "$T/bad" --role metaverifier --analysis-file "$T/an_false_issue" >"$T/meta" 2>/dev/null
expect_out "dsm parse verifier" '"format_ok":true.*"score":0(\.0)?[,}]' -- "$DSM" parse verifier --input "$T/an"
expect_out "dsm parse metaverifier" '"format_ok":true.*"score":0(\.0)?[,}]' -- "$DSM" parse metaverifier --input "$T/meta"
expect_out "dsm parse generator" '"format_ok":true.*"self_score":0(\.0)?[,}]' -- "$DSM" parse generator --input "$T/gen"

# SFT records: one per line, the three fields, deterministic, every role
for r in generator verifier metaverifier; do
  "$DSM" synth sft --role $r --n 40 --seed 2 >"$T/sft_$r" 2>"$T/err" || bad "sft $r: $(cat "$T/err")"
  [ "$(grep -c '^{"prompt":"Task: [^"]*","response":"[^"]\+.*","meta":{"role":"'$r'"' "$T/sft_$r")" = 40 ] \
    && ok "sft $r: 40 records" || bad "sft $r: $(head -c 300 "$T/sft_$r")"
done
"$DSM" synth sft --role verifier --n 40 --seed 2 | cmp -s - "$T/sft_verifier" && ok "sft deterministic" || bad "sft differs between runs"
grep -q 'Here is my evaluation of the solution:' "$T/sft_verifier" && ok "verifier markers" || bad "no verifier marker"
grep -q 'Here is my analysis of the \\"solution evaluation\\":' "$T/sft_metaverifier" && ok "meta markers" || bad "no meta marker"
grep -q '## Self Evaluation' "$T/sft_generator" && ok "generator sections" || bad "no generator section"
"$DSM" synth sft --role verifier --n 200 --seed 2 --noise 0 --plants 0,1,0,0,0,0,0,0 >"$T/arith" 2>/dev/null
[ "$(grep -c '"plant":"arith","score":0.0,"defect":"wrong_step","flaw":"none"' "$T/arith")" = 200 ] && ok "--plants and --noise" || bad "mix flags: $(head -c 300 "$T/arith")"

# templates: the id's hash is the SHA-256 of the text
for r in generator verifier metaverifier; do
  h=$("$DSM" synth template --role $r | sha256sum | cut -c1-12)
  id=$("$DSM" synth template --role $r --id)
  [ "${id##*@}" = "$h" ] && ok "template $r id $id" || bad "template $r: id $id, sha256 $h"
done

# usage errors and bad input
expect_fail "no subcommand"      2 'usage'                 -- "$DSM" synth
expect_fail "unknown subcommand" 2 'unknown subcommand'    -- "$DSM" synth frobnicate
expect_fail "bad flag"           2 'unknown|--nope'        -- "$DSM" synth problems --nope
expect_fail "bad n"              2 'integer'               -- "$DSM" synth problems --n x
expect_fail "negative n"         2 'negative'              -- "$DSM" synth problems --n -3
expect_fail "bad difficulty"     2 'difficulty'            -- "$DSM" synth problems --difficulty 0..9
expect_fail "reversed range"     2 'difficulty'            -- "$DSM" synth problems --difficulty 4..2
expect_fail "bad plant"          2 'unknown --plant'       -- "$DSM" synth proof --problem "$P" --plant typo
expect_fail "proof no problem"   2 'problem TEXT'          -- "$DSM" synth proof
expect_fail "bad problem text"   2 "must start with 'Show that'" -- "$DSM" synth check --problem 'Prove 1 + 1 = 2' --proof x
expect_fail "problem no ops"     2 'operations'            -- "$DSM" synth check --problem 'Show that 5 = 5.' --proof x
expect_fail "check no proof"     2 'proof'                 -- "$DSM" synth check --problem "$P"
expect_fail "check no problem"   2 'required'              -- "$DSM" synth check --proof x
expect_fail "both proof forms"   2 'only one'              -- "$DSM" synth check --problem "$P" --proof x --proof-file "$T/bad"
expect_fail "missing file"       2 'nope.txt'              -- "$DSM" synth check --problem "$P" --proof-file "$T/nope.txt"
expect_fail "two stdins"         2 'stdin'                 -- "$DSM" synth check --problem "$P" --proof-file - --analysis-file -
expect_fail "bad flaw"           2 'unknown --flaw'        -- "$DSM" synth analyze --problem "$P" --proof x --flaw typo
expect_fail "flaw not applying"  2 'does not apply'        -- "$DSM" synth analyze --problem "$P" --proof $'37 + 48 = 85\n85 - 19 = 66\nSo 37 + 48 - 19 = 66.' --flaw missed
expect_fail "meta without analysis" 2 'analysis'           -- "$DSM" synth analyze --problem "$P" --proof x --role metaverifier
expect_fail "bad role"           2 'unknown --role'        -- "$DSM" synth analyze --problem "$P" --proof x --role judge
expect_fail "sft no role"        2 'required'              -- "$DSM" synth sft --n 3
expect_fail "sft bad role"       2 'unknown --role'        -- "$DSM" synth sft --role critic
expect_fail "sft bad weights"    2 'plants'                -- "$DSM" synth sft --role verifier --plants 1,2,3
expect_fail "sft negative weight" 2 'plants'               -- "$DSM" synth sft --role verifier --plants 1,-2,3,4,5,6,7,8
expect_fail "sft zero weights"   2 'weights'               -- "$DSM" synth sft --role verifier --plants 0,0,0,0,0,0,0,0
expect_fail "sft bad noise"      2 'noise'                 -- "$DSM" synth sft --role verifier --noise 2
expect_fail "template no role"   2 'required'              -- "$DSM" synth template
"$DSM" synth --help | grep -q 'problems' && ok "help" || bad "help"
"$DSM" synth sft --help | grep -q -- '--plants' && ok "sft help" || bad "sft help"

check_done
