#!/usr/bin/env bash
# test_submit.sh - submissions through the store (docs/serve.md "Submissions"): `dsm submit
# --wait` with the verifier and meta-verifier services running on a scripted server
# (prove_server.py), the result checked against the rows the services wrote; the same through
# `INSERT INTO submissions` by a dsm_submitter role and `dsm serve submissions`; a wait that times
# out and is taken up again (no job enqueued twice); a failing backend; bad input.
set -u
: "${DSM:?}" "${DSM_SOURCE_DIR:?}"
T=$(mktemp -d /tmp/dsm-test-submit.XXXXXX)
. "$DSM_SOURCE_DIR/tests/cli/lib_check.sh"
. "$DSM_SOURCE_DIR/tests/cli/lib_pg.sh"
pg_setup
pids=()
cleanup() {
  for p in "${pids[@]}"; do kill "$p" 2>/dev/null; done
  wait 2>/dev/null
  pg_cleanup
  rm -rf "$T"
}
trap cleanup EXIT
cd "$T"
export DSM_LOG=warn
q() { "$DSM" db psql -tA -F ' ' -c "$1"; }
same() { [ "$2" = "$3" ] && ok "$1" || bad "$1: got '$2', want '$3'"; }
jget() { python3 -c "import json,sys; d=json.load(open(sys.argv[1])); print(eval(sys.argv[2]))" "$@"; }

srv_start "$DSM_SOURCE_DIR/tests/cli/prove_server.py"
pids+=("$srv_pid")
"$DSM" db start >/dev/null 2>&1 || { echo "FAIL db start"; exit 1; }

start_services() {
  "$DSM" serve verifier --backend "$URL" --model-name scripted --retries -1 --concurrency 4 --idle-wait 0.5 \
      --worker ver >>ver.log 2>&1 &
  pids+=($!); vpid=$!
  "$DSM" serve metaverifier --backend "$URL" --model-name scripted --retries -1 --concurrency 4 --idle-wait 0.5 \
      --worker meta >>meta.log 2>&1 &
  pids+=($!); mpid=$!
}
stop_services() { kill -TERM "$vpid" "$mpid"; wait "$vpid" "$mpid" 2>/dev/null; }

echo "Show that every case is handled." >problem.txt
echo "Proof: the cases are all handled." >right.txt
echo "Proof: WRONG, a case is missing." >wrong.txt
echo "Proof: FALSE-ISSUES may be claimed here." >false.txt

# Compare a result file with the rows of its proof: counts, mean, histogram, analysis ids.
check_result() { # name file n
  local name=$1 f=$2 n=$3 pid
  pid=$(jget "$f" 'd["proof_id"]')
  same "$name: status" "$(jget "$f" 'd["status"]')" done
  same "$name: analyses = rows" "$(jget "$f" 'd["analyses"]') $(jget "$f" 'len(d["analysis_ids"])')" \
      "$(q "SELECT count(*) FROM verifications WHERE proof_id = $pid AND score IS NOT NULL") $n"
  same "$name: analysis ids" "$(jget "$f" '",".join(map(str, d["analysis_ids"]))')" \
      "$(q "SELECT string_agg(id::text, ',' ORDER BY id) FROM verifications WHERE proof_id = $pid")"
  same "$name: mean score" "$(jget "$f" '"%.6f" % d["mean_score"]')" "$(q "SELECT to_char(avg(score), 'FM0.000000') FROM verifications WHERE proof_id = $pid")"
  same "$name: histogram" "$(jget "$f" '"%d %d %d" % (d["histogram"]["0"], d["histogram"]["0.5"], d["histogram"]["1"])')" \
      "$(q "SELECT count(*) FILTER (WHERE score = 0) || ' ' || count(*) FILTER (WHERE score = 0.5) || ' ' || count(*) FILTER (WHERE score = 1) FROM verifications WHERE proof_id = $pid")"
  same "$name: label row = result" "$(q "SELECT coalesce(value::float8::text, 'null') || ' ' || (vote->>'reason') FROM labels WHERE proof_id = $pid AND source = 'auto' AND origin = 'submission'")" \
      "$(jget "$f" '("null" if d["label"] is None else "%g" % d["label"]) + " " + d["reason"]')"
}

# ---- 1. dsm submit --wait with the services running
start_services
"$DSM" submit --problem problem.txt --proof right.txt -n 8 --wait --timeout 60 >r1.json 2>e1
same "right proof: exit" "$?" 0
check_result "right proof" r1.json 8
same "right proof: label 1, no issues, no meta-verification" "$(jget r1.json '"%g %s %d %d" % (d["label"], d["reason"], d["meta_verifications"], d["histogram"]["1"])')" "1 no-issues 0 8"

"$DSM" submit --problem problem.txt --proof wrong.txt -n 8 --m 3 --wait --timeout 60 >r2.json 2>e2
same "wrong proof: exit" "$?" 0
check_result "wrong proof" r2.json 8
# every analysis reports a confirmed issue (0 on even seeds, 0.5 on odd): the label is the lowest
# score if at least k = 2 analyses give it
pid=$(jget r2.json 'd["proof_id"]')
z=$(q "SELECT count(*) FILTER (WHERE score = 0) FROM verifications WHERE proof_id = $pid")
want=$([ "$z" -ge 2 ] && echo "0 agreed" || { [ "$z" -eq 0 ] && echo "0.5 agreed" || echo "null uncertain"; })
same "wrong proof: label by the vote ($z zero scores)" "$(jget r2.json '("null" if d["label"] is None else "%g" % d["label"]) + " " + d["reason"]')" "$want"
same "wrong proof: 3 meta-verifications per analysis" "$(jget r2.json 'd["meta_verifications"]')" 24

"$DSM" submit --problem problem.txt --proof false.txt -n 8 --wait --timeout 60 >r3.json 2>e3
same "false issues: exit" "$?" 0
check_result "false issues" r3.json 8
pid=$(jget r3.json 'd["proof_id"]')
z=$(q "SELECT count(*) FROM verifications WHERE proof_id = $pid AND score = 0")
[ "$z" -ge 1 ] && ok "false issues: $z analyses reported a (false) issue" || bad "false issues: no issue reported (seeds?)"
same "false issues: every issue rejected -> label 1" "$(jget r3.json '"%g %s %d %d" % (d["label"], d["reason"], d["vote"]["rejected"], d["meta_verifications"])')" "1 all-issues-rejected $z $((3 * z))"
same "jobs of the submissions: priority 10, all done" "$(q "SELECT count(*) FILTER (WHERE state = 'done' AND priority = 10) = count(*) FROM jobs WHERE dedup_key LIKE '%verify:sub:%'")" t
same "the trigger's submission jobs are done" "$(q "SELECT count(*) FROM jobs WHERE kind = 'submission' AND state = 'done'")" 3
same "provenance: analyses of a submission carry seed and model" "$(q "SELECT count(*) FROM verifications v JOIN proofs p ON p.id = v.proof_id WHERE p.origin = 'submission' AND v.seed IS NOT NULL AND v.model_id IS NOT NULL")" 24
n_req=$(wc -l <reqs.log)
"$DSM" submit --id "$(jget r1.json 'd["submission_id"]')" --wait >r1b.json 2>/dev/null
same "--id of a finished submission: same result, no request" "$(jget r1b.json 'd["mean_score"], d["label"]') $(wc -l <reqs.log)" "$(jget r1.json 'd["mean_score"], d["label"]') $n_req"

# ---- 2. INSERT INTO submissions as a dsm_submitter, carried by `dsm serve submissions`
q "CREATE ROLE alice LOGIN IN ROLE dsm_submitter; CREATE ROLE bob LOGIN IN ROLE dsm_submitter" >/dev/null
sid=$(q "SET ROLE alice; INSERT INTO submissions (problem, proof, n, m, k) VALUES ('Show it. TARGET-0', 'Proof: WRONG step.', 6, 2, 3) RETURNING id" | grep -E '^[0-9]+$')
[ -n "$sid" ] && ok "alice inserted submission $sid" || bad "alice could not insert"
"$DSM" serve submissions --poll 0.2 --idle-wait 0.5 >sub.log 2>&1 &
pids+=($!); spid=$!
for _ in $(seq 300); do [ "$(q "SELECT status FROM submissions WHERE id = $sid")" = done ] && break; sleep 0.2; done
same "SQL submission: done" "$(q "SELECT status FROM submissions WHERE id = $sid")" done
same "SQL submission: n, m, k used" "$(q "SELECT (result->>'n') || ' ' || (result->>'m') || ' ' || (result->>'k') || ' ' || (result->>'meta_verifications') FROM submissions WHERE id = $sid")" "6 2 3 12"
same "alice reads her result" "$(q "SET ROLE alice; SELECT count(*) FROM submissions WHERE result ? 'label'" | tail -1)" 1
same "bob sees none of it" "$(q "SET ROLE bob; SELECT count(*) FROM submissions" | tail -1)" 0
kill -TERM $spid; wait $spid 2>/dev/null
grep -q "1 finished" sub.log && ok "serve submissions: summary" || bad "serve submissions: $(tail -2 sub.log)"

# ---- 3. no services: the wait times out; the submission is taken up again later, nothing doubled
stop_services
t0=$(date +%s)
"$DSM" submit --problem problem.txt --proof wrong.txt -n 5 --m 2 --wait --timeout 2 --poll 0.2 >r4.json 2>e4
same "timeout: exit 3" "$?" 3
grep -q "is not finished after 2 s" e4 && ok "timeout: message" || bad "timeout: $(cat e4)"
sid=$(q "SELECT max(id) FROM submissions")
same "timeout: submission running, 5 verify jobs queued" "$(q "SELECT status FROM submissions WHERE id = $sid") $(q "SELECT count(*) FROM jobs WHERE dedup_key LIKE 'verify:sub:$sid:%' AND state = 'queued'")" "running 5"
start_services
"$DSM" submit --id "$sid" --wait --timeout 60 >r5.json 2>e5
same "taken up again: exit" "$?" 0
check_result "taken up again" r5.json 5
same "taken up again: 5 verify + 10 metaverify jobs, none doubled" "$(q "SELECT count(*) FROM jobs WHERE dedup_key LIKE '%verify:sub:$sid:%'")" 15

# ---- 4. a backend that fails: the submission fails with the reason
stop_services
"$DSM" serve verifier --backend http://127.0.0.1:9 --model-name none --retries 0 --backoff 0 --idle-wait 0.5 >bad.log 2>&1 &
pids+=($!); bpid=$!
q "ALTER TABLE jobs ALTER COLUMN max_attempts SET DEFAULT 1" >/dev/null
"$DSM" submit --problem problem.txt --proof right.txt -n 2 --wait --timeout 60 >r6.json 2>e6
same "failing backend: exit 0 (the submission is finished)" "$?" 0
same "failing backend: status failed with the reason" "$(jget r6.json 'd["status"] + " " + str("verification job(s) failed" in d["error"])')" "failed True"
kill -TERM $bpid; wait $bpid 2>/dev/null

# ---- 5. bad input
echo -n "" >empty.txt
expect_fail "no proof" 2 "--proof" -- "$DSM" submit --problem problem.txt
expect_fail "missing file" 2 "nope.txt" -- "$DSM" submit --problem problem.txt --proof nope.txt
expect_fail "empty proof" 2 "must not be empty" -- "$DSM" submit --problem problem.txt --proof empty.txt
expect_fail "n = 0" 2 "-n in 1..1024" -- "$DSM" submit --problem problem.txt --proof right.txt -n 0
expect_fail "k > n" 2 "--k in 1..n" -- "$DSM" submit --problem problem.txt --proof right.txt -n 2 --k 3
expect_fail "unknown id" 2 "submission 99999 does not exist" -- "$DSM" submit --id 99999
expect_fail "--id with files" 2 "no --problem" -- "$DSM" submit --id 1 --proof right.txt
! grep -qE 'Sanitizer|runtime error' ver.log meta.log sub.log e1 e2 e3 e5 && ok "no sanitizer report" || bad "sanitizer report in a log"
check_done
