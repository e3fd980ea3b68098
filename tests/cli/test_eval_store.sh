#!/usr/bin/env bash
# test_eval_store.sh - `dsm eval --run NAME` through the http backend (a scripted server,
# eval_server.py) with the store: every sample recorded with its answer and verdict, the metrics
# rows equal to what SQL computes from the samples and to hand-counted values, a rerun that sends
# nothing, a run that fails mid-way (HTTP 500) and is continued without resampling what was
# recorded, and a run name reused with other settings refused.
set -u
: "${DSM:?}" "${DSM_SOURCE_DIR:?}"
T=$(mktemp -d /tmp/dsm-test-evalstore.XXXXXX)
. "$DSM_SOURCE_DIR/tests/cli/lib_check.sh"
. "$DSM_SOURCE_DIR/tests/cli/lib_pg.sh"
pg_setup
srv_pid=
cleanup() {
  [ -n "$srv_pid" ] && kill "$srv_pid" 2>/dev/null
  pg_cleanup
  rm -rf "$T"
}
trap cleanup EXIT
cd "$T"
export DSM_LOG=warn
q() { "$DSM" db psql -tA -F ' ' -c "$1"; }
same() { [ "$2" = "$3" ] && ok "$1" || bad "$1: got '$2', want '$3'"; }
srv_start "$DSM_SOURCE_DIR/tests/cli/eval_server.py"
: >reqs.log

cat >set.jsonl <<'J'
{"problem": "What is 1 + 2?", "answer": "3", "subject": "Arithmetic", "level": 1}
{"question": "What is 10 + 20?", "answer": "10 + 20 = 30\n#### 30"}
{"problem": "What is 4 + 4?", "solution": "It is $\\boxed{8}$.", "subject": "Arithmetic", "level": 2}
J
E=(eval --set set.jsonl --backend "$URL" -k 4 --retries -1 --run r1 --seed 5)
"$DSM" "${E[@]}" >t1 2>e1
same "eval --run: exit" "$?" 0
same "requests: 3 greedy + 3 with n = 4" "$(awk '{print $1}' reqs.log | sort | uniq -c | awk '{print $2 "x" $1}' | tr '\n' ' ')" "1x3 4x3 "
same "15 samples recorded (3 greedy, 12 sampled)" "$(q "SELECT count(*) FILTER (WHERE sample = -1) || ' ' || count(*) FILTER (WHERE sample >= 0) FROM eval_samples")" "3 12"
same "answers extracted" "$(q "SELECT count(*) FROM eval_samples WHERE answer ~ '^[0-9]+$'")" 15
same "greedy all right" "$(q "SELECT bool_and(correct) FROM eval_samples WHERE sample = -1")" t
# the requests' seeds are 5, 100008, 200011 (seed + i * 100003); choice j is wrong when seed + j is
# divisible by 3: problem 1 (5..8) 1 wrong, problem 2 (100008..100011) 2 wrong -- the first one
# wrong, so the 2-2 tie of maj@4 goes to the wrong answer --, problem 3 (200011..200014) 1 wrong.
# So greedy 3/3, maj@4 2/3, pass@1 (3/4 + 2/4 + 3/4) / 3 = 2/3, pass@4 1.
same "sampled verdicts as scripted" "$(q "SELECT string_agg(p.statement || ':' || s.n, ' ' ORDER BY p.id) FROM (SELECT problem_id, count(*) FILTER (WHERE correct) n FROM eval_samples WHERE sample >= 0 GROUP BY 1) s JOIN problems p ON p.id = s.problem_id")" \
    "What is 1 + 2?:3 What is 10 + 20?:2 What is 4 + 4?:3"
same "metrics: all/greedy_accuracy, maj@4, pass@1, pass@4" "$(q "SELECT string_agg(m.name || '=' || round(m.value::numeric, 4), ' ' ORDER BY m.name) FROM metrics m JOIN runs r ON r.id = m.run_id WHERE r.name = 'r1' AND m.name LIKE 'all/%'")" \
    "all/greedy_accuracy=1.0000 all/maj@4=0.6667 all/pass@1=0.6667 all/pass@4=1.0000 all/problems=3.0000"
same "metrics = SQL over the samples (pass@1)" "$(q "SELECT round(avg(samples_correct::numeric / samples), 4) FROM eval_problem_results")" "0.6667"
same "per subject and level" "$(q "SELECT string_agg(name || '=' || round(value::numeric, 2), ' ' ORDER BY name) FROM metrics WHERE name LIKE 'subject=%/pass@1' OR name LIKE 'level=%/pass@1'")" \
    "level=1/pass@1=0.75 level=2/pass@1=0.75 subject=Arithmetic/pass@1=0.75"
grep -q '^| all | 3 | 100.0 | 66.7 | 66.7 | 100.0 |' t1 && ok "table" || bad "table: $(cat t1)"
same "provenance: model and sampling on every row" "$(q "SELECT count(*) FROM eval_samples s JOIN models m ON m.id = s.model_id WHERE m.kind = 'remote' AND (s.sampling->>'max_tokens')::int = 512")" 15

n0=$(wc -l <reqs.log)
"$DSM" "${E[@]}" >t2 2>e2
same "rerun: exit, no request" "$?:$(wc -l <reqs.log)" "0:$n0"
same "rerun: the same table" "$(cat t2)" "$(cat t1)"
grep -q "0 sample(s) recorded now, 15 from before" e2 && ok "rerun: says so" || bad "rerun message: $(cat e2)"

# ---- a run that fails mid-way is continued
cat >set2.jsonl <<'J'
{"problem": "What is 2 + 2?", "answer": "4"}
{"problem": "What is 3 + 3? FAIL-ONCE", "answer": "6"}
{"problem": "What is 5 + 5?", "answer": "10"}
J
: >reqs.log
"$DSM" eval --set set2.jsonl --backend "$URL" -k 2 --retries -1 --run r2 --chunk 1 >t3 2>e3
rc=$?
[ $rc -ne 0 ] && grep -q "problem 2" e3 && ok "HTTP 500: fails naming the problem (exit $rc)" || bad "HTTP 500: exit $rc: $(cat e3)"
same "the first chunk was recorded" "$(q "SELECT count(*) FROM eval_samples s JOIN runs r ON r.id = s.run_id WHERE r.name = 'r2'")" 3
"$DSM" eval --set set2.jsonl --backend "$URL" -k 2 --retries -1 --run r2 --chunk 1 >t4 2>e4
same "continued: exit" "$?" 0
same "continued: only problems 2 and 3 were asked for again (2 x 2 requests)" "$(wc -l <reqs.log)" $((2 + 2 + 4))
same "continued: 9 samples, none twice" "$(q "SELECT count(*) || ' ' || count(DISTINCT (problem_id, sample)) FROM eval_samples s JOIN runs r ON r.id = s.run_id WHERE r.name = 'r2'")" "9 9"

expect_fail "same run, other settings" 2 "exists with other settings" -- "$DSM" eval --set set.jsonl --backend "$URL" -k 2 --run r1
expect_fail "--source without --run" 2 "needs --run" -- "$DSM" eval --set set.jsonl --backend "$URL" --source x
expect_fail "both --model and --backend" 2 "one of --model" -- "$DSM" eval --set set.jsonl --backend "$URL" --model /nope
! grep -qE 'Sanitizer|runtime error' e1 e2 e3 e4 && ok "no sanitizer report" || bad "sanitizer report"
check_done
