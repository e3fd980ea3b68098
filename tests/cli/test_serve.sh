#!/usr/bin/env bash
# test_serve.sh - `dsm serve verifier|metaverifier|generator` against a throwaway cluster.
#   1. http backend -> a scripted server (serve_server.py) with canned verifier outputs: valid
#      scores (both "overall"/"overal", a <think> block), a missing score marker, a cut-off output
#      (format failures stored as rows), an HTTP 500 (the job fails, dead at max_attempts 1) and a
#      bad payload; rows, provenance and job states are checked, a second run does nothing;
#   2. SIGTERM while a request hangs: exit 0, the job is released (queued, attempt not counted);
#   3. end to end: verifier and metaverifier services on scripted outputs, then `dsm label`
#      gives the expected labels (meta-verification rejecting false issues included);
#   4. a tiny random native model serves the three roles (format failures, the plumbing).
set -u
: "${DSM:?}" "${DSM_SOURCE_DIR:?}"
T=$(mktemp -d /tmp/dsm-test-serve.XXXXXX)
. "$DSM_SOURCE_DIR/tests/cli/lib_check.sh"
. "$DSM_SOURCE_DIR/tests/cli/lib_pg.sh"
command -v python3 >/dev/null || { echo "FAIL python3 is needed (scripts/setup.sh installs it)"; exit 1; }
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
dt() { awk -v a="$1" -v b="$2" 'BEGIN { printf "%.2f", b - a }'; }
same() { [ "$2" = "$3" ] && ok "$1" || bad "$1: got '$2', want '$3'"; }
clean_err() { ! grep -qE 'Sanitizer|runtime error' "$1"; }

python3 "$DSM_SOURCE_DIR/tests/cli/serve_server.py" port reqs.log 2>srv.err &
srv_pid=$!
for _ in $(seq 100); do [ -s port ] && break; sleep 0.1; done
[ -s port ] || { echo "FAIL scripted server did not start: $(cat srv.err)"; exit 1; }
URL="http://127.0.0.1:$(cat port)"

"$DSM" db start >/dev/null 2>&1 || { echo "FAIL db start"; exit 1; }
q "INSERT INTO problems (source, source_key, statement) VALUES ('t', 'p1', 'Show that 2 + 2 = 4.')" >/dev/null
for c in A B C D E F; do
  q "INSERT INTO proofs (problem_id, proof, origin, origin_key) SELECT id, 'Proof CASE-$c: count.', 't', '$c' FROM problems" >/dev/null
done
q "INSERT INTO jobs (kind, payload, max_attempts) SELECT 'verify', jsonb_build_object('proof_id', id), 1 FROM proofs ORDER BY id" >/dev/null
q "INSERT INTO jobs (kind, payload, max_attempts) VALUES ('verify', '{\"proof_id\": 99999}', 1), ('verify', '{\"nothing\": 1}', 1)" >/dev/null
q "INSERT INTO jobs (kind, payload) VALUES ('generate', '{\"problem_id\": 1}')" >/dev/null  # another kind: untouched

# ---- 1. http backend, scripted outputs
t0=$(date +%s.%N)
"$DSM" serve verifier --once --backend "$URL" --model-name scripted --retries -1 --concurrency 4 \
    --temperature 0.7 --max-tokens 256 --seed 100 >out1 2>err1
rc=$?
t1=$(date +%s.%N)
same "serve --once exit" "$rc" 0
clean_err err1 && ok "no sanitizer report" || bad "sanitizer report: $(head -c 500 err1)"
grep -q '5 job(s) done (2 format failure(s)), 3 failed' err1 && ok "summary line" || bad "summary: $(tail -3 err1)"
echo "serve verifier (http, 8 jobs): $(dt "$t0" "$t1") s"
same "verification rows" "$(q 'SELECT count(*) FROM verifications')" 5
same "scores by case" "$(q "SELECT string_agg(p.origin_key || ':' || coalesce(v.score::text, '-') || ':' || v.format_ok || ':' || coalesce(v.finish_reason, '-'), ' ' ORDER BY p.origin_key) FROM verifications v JOIN proofs p ON p.id = v.proof_id")" \
    "A:1.0:true:stop B:0.5:true:stop C:0.0:true:stop D:-:false:stop E:-:false:length"
same "analysis of A" "$(q "SELECT v.analysis FROM verifications v JOIN proofs p ON p.id = v.proof_id WHERE p.origin_key = 'A'")" "Every step is justified."
same "raw output kept" "$(q "SELECT count(*) FROM verifications WHERE raw_output LIKE 'Here is my evaluation%' OR raw_output LIKE '<think>%'")" 5
same "provenance: model, backend, template, settings" \
    "$(q "SELECT DISTINCT m.name || ' ' || m.kind || ' ' || (v.sampling->>'backend') || ' ' || (v.sampling->>'model') || ' ' || (v.sampling->>'temperature') || ' ' || (v.sampling->>'top_p') || ' ' || (v.sampling->>'max_tokens') || ' ' || ((v.sampling->>'prompt') ~ '^verify\.v1@[0-9a-f]{12}$') FROM verifications v JOIN models m ON m.id = v.model_id")" \
    "scripted remote http scripted 0.7 0.95 256 true"
same "seed = --seed + job id (row and sampling)" "$(q "SELECT count(*) FROM verifications WHERE seed = 100 + job_id AND (sampling->>'seed')::bigint = seed")" 5
same "seeds sent to the server" "$(awk '{print $2}' reqs.log | sort -n | tr '\n' ' ')" "$(q "SELECT 100 + id FROM jobs WHERE kind = 'verify' AND payload ? 'proof_id' AND (payload->>'proof_id')::bigint < 99999 ORDER BY id" | tr '\n' ' ')"
same "jobs: verify done 5, dead 3; generate queued 1" "$(q "SELECT string_agg(kind || ':' || state || ':' || n, ' ' ORDER BY kind, state) FROM (SELECT kind, state, count(*) n FROM jobs GROUP BY 1, 2) s")" \
    "generate:queued:1 verify:dead:3 verify:done:5"
same "one result per done job, linked to its row" "$(q "SELECT count(*) FROM jobs j JOIN job_results r ON r.job_id = j.id JOIN verifications v ON v.job_id = j.id WHERE j.state = 'done'")" 5
same "errors kept" "$(q "SELECT string_agg(CASE WHEN last_error ~ '500' THEN '500' WHEN last_error ~ 'proof 99999 does not exist' THEN 'missing' WHEN last_error ~ 'lacks an integer' THEN 'payload' ELSE last_error END, ' ' ORDER BY id) FROM jobs WHERE state = 'dead'")" \
    "500 missing payload"

"$DSM" serve verifier --once --backend "$URL" --model-name scripted --retries -1 >out2 2>err2
same "second run exit" "$?" 0
same "second run: nothing to do" "$(q 'SELECT count(*) FROM verifications') $(wc -l <reqs.log)" "5 6"

expect_fail "unknown role" 2 "unknown role" -- "$DSM" serve judge --backend "$URL"
expect_fail "no backend" 2 "--backend" -- "$DSM" serve verifier --once
expect_fail "bad concurrency" 2 "concurrency" -- "$DSM" serve verifier --once --backend "$URL" --concurrency 65

# --template: the file's id goes into the row
printf 'Grade this.\n{{problem}}\n{{proof}}\n' >tmpl.md
q "INSERT INTO jobs (kind, payload) SELECT 'verify', jsonb_build_object('proof_id', id) FROM proofs WHERE origin_key = 'B'" >/dev/null
"$DSM" serve verifier --once --template tmpl.md --backend "$URL" --model-name scripted --retries -1 >/dev/null 2>err7
same "--template: row with the file's template id" "$?:$(q "SELECT count(*) FROM verifications WHERE sampling->>'prompt' ~ '^file:tmpl.md@[0-9a-f]{12}$' AND score = 0.5")" "0:1"
expect_fail "--template missing file" 2 "nope.md" -- "$DSM" serve verifier --once --template nope.md --backend "$URL"
printf 'Grade {{proof}} only.\n' >tmpl2.md
q "INSERT INTO jobs (kind, payload, max_attempts) SELECT 'verify', jsonb_build_object('proof_id', id), 1 FROM proofs WHERE origin_key = 'B'" >/dev/null
"$DSM" serve verifier --once --template tmpl2.md --backend "$URL" --model-name scripted --retries -1 >/dev/null 2>err8
same "--template lacking {{problem}}: the job fails with the reason" "$(q "SELECT count(*) FROM jobs WHERE state = 'dead' AND last_error ~ 'problem'")" 1

# ---- 2. SIGTERM while a request hangs: the job goes back to the queue
q "INSERT INTO proofs (problem_id, proof, origin, origin_key) SELECT id, 'Proof CASE-S.', 't', 'S' FROM problems" >/dev/null
q "INSERT INTO jobs (kind, payload) SELECT 'verify', jsonb_build_object('proof_id', id) FROM proofs WHERE origin_key = 'S'" >/dev/null
"$DSM" serve verifier --backend "$URL" --model-name scripted --retries -1 >out3 2>err3 &
pid=$!
for _ in $(seq 100); do grep -q '^S ' reqs.log && break; sleep 0.1; done
ts=$(date +%s.%N)
kill -TERM $pid
wait $pid
rc=$?
te=$(date +%s.%N)
same "SIGTERM: exit 0" "$rc" 0
echo "SIGTERM to exit: $(dt "$ts" "$te") s"
awk -v d="$(dt "$ts" "$te")" 'BEGIN { exit !(d < 5) }' && ok "SIGTERM: prompt exit" || bad "SIGTERM took $(dt "$ts" "$te") s"
grep -q '1 released' err3 && ok "SIGTERM: released in summary" || bad "SIGTERM summary: $(tail -3 err3)"
same "SIGTERM: job queued again, attempt not counted" "$(q "SELECT state || ' ' || attempts || ' ' || (lease_token IS NULL) FROM jobs j WHERE payload->>'proof_id' = (SELECT id::text FROM proofs WHERE origin_key = 'S')")" "queued 0 true"
q "UPDATE jobs SET state = 'dead' WHERE state = 'queued' AND kind = 'verify'" >/dev/null

# ---- 2a. an idle worker (no --once) is woken by NOTIFY and stops at once on SIGTERM
n0=$(q 'SELECT count(*) FROM verifications')
"$DSM" serve verifier --idle-wait 60 --backend "$URL" --model-name scripted --retries -1 >out6 2>err6 &
pid=$!
sleep 1
ts=$(date +%s.%N)
q "INSERT INTO jobs (kind, payload) SELECT 'verify', jsonb_build_object('proof_id', id) FROM proofs WHERE origin_key = 'A'" >/dev/null
for _ in $(seq 100); do [ "$(q 'SELECT count(*) FROM verifications')" = $((n0 + 1)) ] && break; sleep 0.1; done
te=$(date +%s.%N)
same "idle worker: new job served" "$(q 'SELECT count(*) FROM verifications')" $((n0 + 1))
echo "idle worker: job served $(dt "$ts" "$te") s after the INSERT (psql included)"
ts=$(date +%s.%N)
kill -TERM $pid
wait $pid
rc=$?
te=$(date +%s.%N)
same "idle worker: SIGTERM exit 0" "$rc" 0
awk -v d="$(dt "$ts" "$te")" 'BEGIN { exit !(d < 2) }' && ok "idle worker: stops at once ($(dt "$ts" "$te") s)" || bad "idle worker: SIGTERM took $(dt "$ts" "$te") s"

# ---- 2b. a request longer than the lease: the heartbeat keeps the job
q "INSERT INTO proofs (problem_id, proof, origin, origin_key) SELECT id, 'Proof CASE-W.', 't', 'W' FROM problems" >/dev/null
q "INSERT INTO jobs (kind, payload) SELECT 'verify', jsonb_build_object('proof_id', id) FROM proofs WHERE origin_key = 'W'" >/dev/null
"$DSM" serve verifier --once --lease 1 --backend "$URL" --model-name scripted --retries -1 >out4 2>err4 &
pid=$!
sleep 2
# a second worker tries to take it (reclaiming expired leases first): it must find nothing
"$DSM" serve verifier --once --backend "$URL" --model-name scripted --retries -1 >out5 2>err5
grep -q '^dsm serve verifier: 0 job(s) done.*0 already done' err5 && ok "heartbeat: lease not expired after 2 s of a 1 s lease" || bad "heartbeat: second worker: $(tail -2 err5)"
wait $pid
same "heartbeat: first worker exit" "$?" 0
same "heartbeat: done on the first attempt, one row" "$(q "SELECT j.state || ' ' || j.attempts || ' ' || count(v.id) FROM jobs j JOIN verifications v ON v.job_id = j.id JOIN proofs p ON p.id = v.proof_id WHERE p.origin_key = 'W' GROUP BY j.id")" "done 1 1"

# ---- 2c. end to end: verifier and metaverifier services over http, then `dsm label`
for l in L1 L2 L3 L4; do
  q "INSERT INTO proofs (problem_id, proof, origin, origin_key) SELECT id, 'Proof SCRIPT-$l.', 't', '$l' FROM problems" >/dev/null
  q "INSERT INTO jobs (kind, payload) SELECT 'verify', jsonb_build_object('proof_id', p.id) FROM proofs p, generate_series(1, 3) WHERE p.origin_key = '$l'" >/dev/null
done
t0=$(date +%s.%N)
"$DSM" serve verifier --max-jobs 5 --concurrency 2 --backend "$URL" --model-name scripted --retries -1 >/dev/null 2>e0.err
same "--max-jobs 5 (batches of 2): exit 0 after 5 jobs" "$? $(q "SELECT count(*) FROM verifications v JOIN proofs p ON p.id = v.proof_id WHERE p.origin_key LIKE 'L_'")" "0 5"
"$DSM" serve verifier --once --backend "$URL" --model-name scripted --retries -1 >/dev/null 2>e1.err
rc1=$?
# the vote needs m = 3 meta-verifications of every analysis reporting an issue
q "INSERT INTO jobs (kind, payload) SELECT 'metaverify', jsonb_build_object('verification_id', v.id) FROM verifications v JOIN proofs p ON p.id = v.proof_id, generate_series(1, 3) WHERE p.origin_key LIKE 'L_' AND v.score < 1" >/dev/null
"$DSM" serve metaverifier --once --concurrency 3 --backend "$URL" --model-name scripted --retries -1 >/dev/null 2>e2.err
rc2=$?
"$DSM" label --n 3 --m 3 --k 2 >lab.json 2>lab.err
rc3=$?
t1=$(date +%s.%N)
echo "end to end (12 verify + 18 metaverify jobs, label): $(dt "$t0" "$t1") s"
same "e2e: exits" "$rc1 $rc2 $rc3" "0 0 0"
same "e2e: rows" "$(q "SELECT count(*) FROM verifications v JOIN proofs p ON p.id = v.proof_id WHERE p.origin_key LIKE 'L_'") $(q "SELECT count(*) FROM meta_verifications m JOIN verifications v ON v.id = m.verification_id JOIN proofs p ON p.id = v.proof_id WHERE p.origin_key LIKE 'L_' AND m.format_ok")" "12 18"
same "e2e: labels (L3: meta-verification rejects the false issues)"     "$(q "SELECT string_agg(p.origin_key || ':' || coalesce(l.value::text, 'null') || ':' || (l.vote->>'reason'), ' ' ORDER BY p.origin_key) FROM labels l JOIN proofs p ON p.id = l.proof_id WHERE p.origin_key LIKE 'L_'")"     "L1:1.0:no-issues L2:0.0:agreed L3:1.0:all-issues-rejected L4:null:uncertain"

# ---- 3. a tiny random native model through the three roles
if "$DSM" model init --out model --preset tiny --layers 1 >/dev/null 2>&1; then
  q "INSERT INTO jobs (kind, payload) SELECT 'verify', jsonb_build_object('proof_id', id, 'seed', 7) FROM proofs WHERE origin_key IN ('A', 'B')" >/dev/null
  q "INSERT INTO jobs (kind, payload) SELECT 'metaverify', jsonb_build_object('verification_id', min(v.id)) FROM verifications v JOIN proofs p ON p.id = v.proof_id WHERE p.origin_key = 'A'" >/dev/null
  nat="--backend native:model --device cpu --threads 2 --max-context 2048 --max-tokens 8 --once"
  t0=$(date +%s.%N)
  # shellcheck disable=SC2086
  "$DSM" serve verifier $nat --concurrency 2 >/dev/null 2>n1.err && \
  "$DSM" serve metaverifier $nat >/dev/null 2>n2.err && \
  "$DSM" serve generator $nat >/dev/null 2>n3.err
  rc=$?
  t1=$(date +%s.%N)
  echo "native: 4 jobs through 3 services: $(dt "$t0" "$t1") s"
  same "native: exit" "$rc" 0
  clean_err n1.err && clean_err n2.err && clean_err n3.err && ok "native: no sanitizer report" || bad "native: sanitizer report"
  same "native: verifications (format failures, seed from payload)" \
    "$(q "SELECT count(*) || ' ' || bool_or(format_ok) || ' ' || min(seed) || ' ' || min(sampling->>'backend') FROM verifications WHERE sampling->>'backend' = 'native'")" "2 false 7 native"
  same "native: meta-verification row" "$(q "SELECT count(*) || ' ' || bool_or(format_ok) FROM meta_verifications WHERE sampling->>'backend' = 'native'")" "1 false"
  same "native: generated proof row" \
    "$(q "SELECT count(*) || ' ' || min(metadata->>'format_ok') || ' ' || bool_and(job_id IS NOT NULL) || ' ' || bool_and((sampling->>'prompt') ~ '^generate\.v1@') FROM proofs WHERE origin IS NULL")" "1 false true true"
  same "native: model row" "$(q "SELECT kind FROM models WHERE id = (SELECT model_id FROM meta_verifications WHERE sampling->>'backend' = 'native')")" checkpoint
  same "all jobs settled" "$(q "SELECT count(*) FROM jobs WHERE state IN ('queued', 'running')")" 0
else bad "dsm model init failed"; fi

check_done
