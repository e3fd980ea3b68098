#!/usr/bin/env bash
# test_parse.sh - `dsm parse` against the golden files in tests/fixtures/roles/ (each NAME.txt is a
# model output; NAME.json the expected JSON; names containing ".length" are parsed as cut off),
# a multi-megabyte output, --jsonl, bad input; and `dsm vote` on the SPEC §2 vote patterns.
# DSM_UPDATE_GOLDEN=1 rewrites the .json files (review the diff before committing it).
set -u
: "${DSM:?}" "${DSM_SOURCE_DIR:?}"
T=$(mktemp -d /tmp/dsm-test-parse.XXXXXX)
trap 'rm -rf "$T"' EXIT
. "$DSM_SOURCE_DIR/tests/cli/lib_check.sh"
FIX="$DSM_SOURCE_DIR/tests/fixtures/roles"

# ---- golden files ----
count=0
for role in generator verifier metaverifier; do
  for f in "$FIX/$role"/*.txt; do
    name=$(basename "$f" .txt)
    finish=stop
    case "$name" in *.length*) finish=length ;; esac
    if ! "$DSM" parse "$role" --finish "$finish" --pretty <"$f" >"$T/got.json" 2>"$T/err"; then
      bad "$role/$name: exit $? ($(head -c 200 "$T/err"))"; continue
    fi
    if [ "${DSM_UPDATE_GOLDEN:-0}" = 1 ]; then cp "$T/got.json" "$FIX/$role/$name.json"; fi
    if cmp -s "$T/got.json" "$FIX/$role/$name.json"; then count=$((count + 1));
    else bad "$role/$name: output differs from $name.json:"; diff "$FIX/$role/$name.json" "$T/got.json" | head -20; fi
  done
done
[ "$count" -ge 45 ] && ok "golden outputs ($count)" || bad "only $count golden outputs matched"

# the decisions the goldens pin, spelled out (so a regenerated golden cannot silently flip them)
expect() { # role file field value
  local got; got=$(jq -c ".$3" "$FIX/$1/$2.json" 2>/dev/null)
  [ "$got" = "$4" ] && ok "$1/$2: $3 = $4" || bad "$1/$2: $3 = $got, want $4"
}
expect verifier ok score 1
expect verifier overal_spelling score 0.5
expect verifier score_1.0 score 1
expect verifier score_0.50 score 0.5
expect verifier score_frac_half error '"bad-score"'
expect verifier score_2 error '"bad-score"'
expect verifier several_boxes score 0.5
expect verifier last_box_empty score 1
expect verifier last_box_unbalanced error '"no-score-box"'
expect verifier nested_braces error '"bad-score"'
expect verifier missing_begin_marker error '"no-analysis-marker"'
expect verifier missing_score_marker error '"no-score-marker"'
expect verifier markers_out_of_order error '"marker-order"'
expect verifier markers_only_in_code_block error '"no-analysis-marker"'
expect verifier quoted_format_then_real score 0.5
expect verifier think_then_answer score 1
expect verifier think_unclosed error '"think-unclosed"'
expect verifier truncated.length error '"truncated"'
expect verifier truncated.length score null
expect verifier empty error '"empty"'
expect generator ok_standard self_score 1
expect generator ok_star_headings self_score 0.5
expect generator ok_think_drafts self_score 1
expect generator proof_with_answer_boxes self_score 0.5
expect generator self_score_frac error '"bad-score"'
expect generator self_score_2 error '"bad-score"'
expect generator missing_self_evaluation error '"no-self-evaluation-heading"'
expect generator only_in_code_block error '"no-solution-heading"'
expect generator truncated.length self_score null
expect metaverifier ok score 0
expect metaverifier curly_quotes error '"no-analysis-marker"'
expect metaverifier score_0.75 error '"bad-score"'

# ---- a multi-megabyte output ----
{ echo "Here is my evaluation of the solution:"
  for i in $(seq 1 40000); do echo "Step $i: since \$a_{n+1} = a_n + \\frac{1}{n}\$ the claim {holds} \\boxed{x}; checked."; done
  echo "Based on my evaluation, the final overall score should be: \\boxed{0.5}"; } >"$T/huge.txt"
size=$(stat -c %s "$T/huge.txt")
t0=$(date +%s.%N)
"$DSM" parse verifier <"$T/huge.txt" >"$T/huge.json" 2>"$T/err"
t1=$(date +%s.%N)
if [ "$(jq -c .score "$T/huge.json")" = 0.5 ] && [ "$(jq -r .analysis "$T/huge.json" | wc -l)" = 40000 ]; then
  ok "huge output: $(awk -v s="$size" -v a="$t0" -v b="$t1" 'BEGIN { printf "%.1f MB in %.3f s (whole command)", s / 1048576, b - a }')"
else bad "huge output: $(head -c 200 "$T/huge.json") $(head -c 200 "$T/err")"; fi

# ---- --jsonl, --input ----
printf '%s\n' '"Here is my evaluation of the solution:\nx\nBased on my evaluation, the final overall score should be: \\boxed{1}"' \
  '{"text": "Here is my evaluation of the solution:\nx\nBased on my evaluation, the final overall score should be: \\boxed{1}", "finish_reason": "length"}' \
  '' '{"text": "nothing", "finish_reason": "stop"}' >"$T/in.jsonl"
"$DSM" parse verifier --jsonl <"$T/in.jsonl" >"$T/out.jsonl" 2>"$T/err"
[ "$(jq -c '[.score, .error]' "$T/out.jsonl" | tr '\n' ' ')" = '[1,null] [null,"truncated"] [null,"no-analysis-marker"] ' ] \
  && ok "--jsonl" || bad "--jsonl: $(cat "$T/out.jsonl" "$T/err" | head -c 400)"
"$DSM" parse generator --input "$FIX/generator/ok_standard.txt" --pretty >"$T/o.json" 2>"$T/err" \
  && cmp -s "$T/o.json" "$FIX/generator/ok_standard.json" && ok "--input" || bad "--input"

# ---- bad input ----
expect_fail "unknown role" 2 "unknown role 'prover'" -- "$DSM" parse prover </dev/null
expect_fail "no role" 2 "name the role" -- "$DSM" parse </dev/null
expect_fail "bad --finish" 2 "--finish must be stop or length" -- "$DSM" parse verifier --finish eos </dev/null
printf 'abc\377def' >"$T/bad.txt"
expect_fail "invalid UTF-8" 2 "not valid UTF-8" -- "$DSM" parse verifier --input "$T/bad.txt"
expect_fail "missing file" 2 "nope.txt" -- "$DSM" parse verifier --input "$T/nope.txt"
printf '{"text": 3}\n' >"$T/bad.jsonl"
expect_fail "bad jsonl" 2 "stdin:1: expected a JSON string" -- "$DSM" parse verifier --jsonl <"$T/bad.jsonl"

# ---- dsm vote ----
vote() { # name expected-label expected-reason args... (stdin: the vote)
  local name=$1 label=$2 reason=$3; shift 3
  "$DSM" vote "$@" >"$T/v.json" 2>"$T/err" || { bad "vote $name: exit $? $(head -c 200 "$T/err")"; return; }
  local got; got=$(jq -c '[.label, .reason]' "$T/v.json")
  [ "$got" = "[$label,\"$reason\"]" ] && ok "vote $name" || bad "vote $name: $got, want [$label,\"$reason\"]"
}
echo '{"analyses":[{"score":1},{"score":1},{"score":1}]}' | vote "no issues" 1 no-issues
echo '{"analyses":[{"score":1},{"score":0,"meta":[0,0,1]},{"score":0.5,"meta":[1,0,0]}]}' | vote "all rejected" 1 all-issues-rejected
echo '{"analyses":[{"score":0.5,"meta":[1,1,0]},{"score":0.5,"meta":[1,1,1]},{"score":1}]}' | vote "two agree" 0.5 agreed
echo '{"analyses":[{"score":0,"meta":[1,1,1]},{"score":0.5,"meta":[1,1,1]},{"score":0.5,"meta":[1,1,1]}]}' | vote "one at lo" null uncertain
echo '{"analyses":[{"score":0,"meta":[1,1,1]},{"score":0.5,"meta":[1,1,1]},{"score":0.5,"meta":[1,1,1]}]}' | vote "k=1" 0 agreed --k 1
echo '{"analyses":[{"score":0,"meta":[0,0,0]},{"score":0,"meta":[0,1,0]},{"score":0.5,"meta":[1,1,1]},{"score":0.5,"meta":[1,1,0]}]}' \
  | vote "rejected never sets the label" 0.5 agreed
echo '{"analyses":[{"score":0,"meta":[1,0]},{"score":0,"meta":[1,1,0,0]}]}' | vote "strict majority" 1 all-issues-rejected
echo '{"analyses":[{"score":0,"meta":[1,1,0]},{"score":0,"meta":[1,1,1,0]}]}' | vote "majority of 3 and 4" 0 agreed
echo '{"analyses":[{"score":0,"meta":[1]},{"score":0,"meta":[1,1,1]}]}' | vote "incomplete m" null incomplete --m 3
echo '{"analyses":[{"score":1}]}' | vote "incomplete n" null incomplete --n 64
echo '{"analyses":[{"score":null},{"score":null}]}' | vote "no analyses" null no-analyses
echo '{"analyses":[{"score":0},{"score":0}]}' | vote "no meta-verifier" 0 agreed --no-meta
echo '{"analyses":[{"score":0.5,"meta":[1,1,0]}]}' | "$DSM" vote >"$T/v.json" 2>&1
[ "$(jq -c '[.n, .valid, .issues, .rejected, .analyses[0].valid]' "$T/v.json")" = '[1,1,1,0,true]' ] \
  && ok "vote counts" || bad "vote counts: $(cat "$T/v.json")"
echo '{"analyses":[{"score":0.3}]}' >"$T/badvote.json"
expect_fail "vote bad score" 2 "analyses\[0\].score must be 0, 0.5, 1 or null" -- "$DSM" vote --input "$T/badvote.json"
echo '{"analyses":' >"$T/badvote.json"
expect_fail "vote bad JSON" 2 "invalid JSON" -- "$DSM" vote --input "$T/badvote.json"
expect_fail "vote bad k" 2 "--k must be at least 1" -- "$DSM" vote --k 0 </dev/null

check_done
