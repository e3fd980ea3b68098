#!/usr/bin/env bash
# test_prove.sh - `dsm prove` (docs/prove.md) through the store, with the generator and verifier
# services it starts, on a scripted server (prove_server.py: a proof is right once it has been
# refined TARGET-t times; self-evaluations are honest; wrong proofs get 0 or 0.5 with the issue):
#   one-shot, refine and search give exactly the expected proofs, requests, rounds and scores;
#   a run killed with -9 while waiting is continued by the same command, nothing sent twice;
#   a tiny random native model runs the plumbing; bad input is refused.
set -u
: "${DSM:?}" "${DSM_SOURCE_DIR:?}"
T=$(mktemp -d /tmp/dsm-test-prove.XXXXXX)
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
jget() { python3 -c "import json,sys; d=json.load(open(sys.argv[1])); print(eval(sys.argv[2]))" "$@"; }
reqs() { grep -c "^$1 " reqs.log; }
srv_start "$DSM_SOURCE_DIR/tests/cli/prove_server.py"
"$DSM" db start >/dev/null 2>&1 || { echo "FAIL db start"; exit 1; }
S=(--generator "$URL" --quiet --json)
: >reqs.log

# ---- one-shot: right at once (TARGET-0): 4 proofs x 3 analyses, all pass
echo "Show the claim. TARGET-0" >p0.txt
"$DSM" prove --problem p0.txt --mode one-shot --proofs 4 --analyses 3 "${S[@]}" >o1.json 2>e1
same "one-shot: exit" "$?" 0
same "one-shot: best passes, mean 1, 4 proofs, 4 passing" "$(jget o1.json '"%g %d %d %d %s" % (d["best"]["mean_score"], d["proofs"], d["passing"], d["best"]["analyses"], d["best"]["passes_all"])')" "1 4 4 3 True"
same "one-shot: requests (4 generate, 12 verify)" "$(reqs generator) $(reqs verifier)" "4 12"
same "one-shot: the printed proof is the stored one" "$(jget o1.json 'd["best"]["proof"]')" "$(q "SELECT proof FROM proofs WHERE id = $(jget o1.json 'd["best"]["proof_id"]') AND proof LIKE 'Proof ATTEMPT-0:%'")"

# ---- one-shot, all wrong (TARGET-1): the best by majority then mean, checked against the rows
echo "Show the claim. TARGET-1" >p1.txt
"$DSM" prove --problem p1.txt --proofs 4 --analyses 3 "${S[@]}" >o2.json 2>e2
same "one-shot wrong: exit" "$?" 0
run=$(jget o2.json 'd["run_id"]')
want=$(q "SELECT p.id FROM proofs p JOIN verifications v ON v.proof_id = p.id WHERE p.run_id = $run GROUP BY p.id ORDER BY mode() WITHIN GROUP (ORDER BY v.score) DESC, avg(v.score) DESC, p.id LIMIT 1")
same "one-shot wrong: best = the SQL's pick (mode (ties low) then mean)" "$(jget o2.json 'd["best"]["proof_id"]')" "$want"
same "one-shot wrong: nothing passes" "$(jget o2.json 'd["passing"], d["best"]["passes_all"]')" "(0, False)"

# ---- refine (TARGET-2): 3 threads, each right at its third attempt
: >reqs.log
echo "Show the claim. TARGET-2" >p2.txt
"$DSM" prove --problem p2.txt --mode refine --threads 3 --attempts 5 --analyses 2 "${S[@]}" >o3.json 2>e3
same "refine: exit" "$?" 0
same "refine: 3 attempts, 9 proofs, best right" "$(jget o3.json '"%d %d %g %s" % (d["rounds"], d["proofs"], d["best"]["mean_score"], d["best"]["proof"])')" "3 9 1 Proof ATTEMPT-2: every case is handled."
same "refine: requests (9 generate, 3 x 2 verify of the final proofs)" "$(reqs generator) $(reqs verifier)" "9 6"
run=$(jget o3.json 'd["run_id"]')
same "refine: each refinement has its parent, the previous attempt" "$(q "SELECT count(*) FROM proof_parents pp JOIN proofs c ON c.id = pp.proof_id JOIN proofs p ON p.id = pp.parent_id WHERE c.run_id = $run AND c.round = p.round + 1")" 6
same "refine: template id recorded with the refinement's" "$(q "SELECT count(*) FROM proofs WHERE run_id = $run AND sampling->>'prompt' ~ '^generate\.v1@[0-9a-f]{12}\+refine\.v1@[0-9a-f]{12}$'")" 6

# ---- search (TARGET-2): pool 4 x 4 analyses, top 2: right at round 2
: >reqs.log
"$DSM" prove --problem p2.txt --mode search --pool 4 --analyses 4 --top 2 --shown 3 --rounds 5 "${S[@]}" >o4.json 2>e4
same "search: exit" "$?" 0
same "search: 3 rounds, 12 proofs, 4 passing, best passes" "$(jget o4.json '"%d %d %d %s" % (d["rounds"], d["proofs"], d["passing"], d["best"]["passes_all"])')" "3 12 4 True"
same "search: requests (12 generate, 48 verify)" "$(reqs generator) $(reqs verifier)" "12 48"
run=$(jget o4.json 'd["run_id"]')
same "search: round-1 refinements come from the 2 best of round 0" "$(q "SELECT count(DISTINCT pp.parent_id) FROM proof_parents pp JOIN proofs c ON c.id = pp.proof_id WHERE c.run_id = $run AND c.round = 1")" 2
same "search: at most 3 analyses shown, all reporting issues" "$(q "SELECT max(jsonb_array_length(j.payload->'refine'->0->'analyses')) FROM jobs j WHERE j.run_id = $run AND j.payload ? 'refine'") $(q "SELECT count(*) FROM jobs j CROSS JOIN jsonb_array_elements_text(j.payload->'refine'->0->'analyses') a(id) JOIN verifications v ON v.id = a.id::bigint WHERE j.run_id = $run AND v.score = 1")" "3 0"
n=$(reqs generator)
"$DSM" prove --problem p2.txt --mode search --pool 4 --analyses 4 --top 2 --shown 3 --rounds 5 "${S[@]}" >o5.json 2>e5
same "search again: same result, no request" "$(jget o5.json 'd["best"]["proof_id"]') $(reqs generator)" "$(jget o4.json 'd["best"]["proof_id"]') $n"

# ---- kill -9 while waiting for services, then the same command finishes it
: >reqs.log
echo "Show another claim. TARGET-2" >p3.txt
R=(--problem p3.txt --mode refine --threads 2 --attempts 4 --analyses 2 --run killed "${S[@]}")
"$DSM" prove "${R[@]}" --external >/dev/null 2>ek &
pid=$!
for _ in $(seq 100); do [ "$(q "SELECT count(*) FROM jobs j JOIN runs r ON r.id = j.run_id WHERE r.name = 'killed'")" = 2 ] && break; sleep 0.1; done
"$DSM" serve generator --once --backend "$URL" >/dev/null 2>&1   # attempt 1 done by an outside service
for _ in $(seq 100); do [ "$(q "SELECT count(*) FROM jobs j JOIN runs r ON r.id = j.run_id WHERE r.name = 'killed'")" = 4 ] && break; sleep 0.1; done
kill -9 $pid; wait $pid 2>/dev/null
same "killed: attempt 2 enqueued before the kill" "$(q "SELECT count(*) FROM jobs j JOIN runs r ON r.id = j.run_id WHERE r.name = 'killed'")" 4
"$DSM" prove "${R[@]}" >o6.json 2>e6
same "killed: the rerun finishes" "$?:$(jget o6.json '"%d %g" % (d["rounds"], d["best"]["mean_score"])')" "0:3 1"
same "killed: every proof generated once (6), verified once (2 x 2)" "$(reqs generator) $(reqs verifier) $(q "SELECT count(*) FROM jobs j JOIN runs r ON r.id = j.run_id WHERE r.name = 'killed'")" "6 4 10"

# ---- a tiny random native model: the plumbing (its outputs are format failures)
"$DSM" model init --preset tiny --layers 1 --seed 3 --out tiny >/dev/null 2>&1 || bad "model init"
"$DSM" prove --problem p0.txt --generator native:tiny --proofs 2 --analyses 1 --max-tokens 24 --template synth --cpu-threads 1 --quiet >o7 2>e7
rc=$?
run=$(q "SELECT max(id) FROM runs WHERE kind = 'prove'")
same "native: 2 proofs written with provenance" "$(q "SELECT count(*) FROM proofs p JOIN models m ON m.id = p.model_id WHERE p.run_id = $run AND m.kind = 'checkpoint' AND p.seed IS NOT NULL")" 2
if [ "$(q "SELECT count(*) FROM proofs WHERE run_id = $run AND proof <> ''")" = 0 ]; then
  same "native: no well-formed proof is an error saying so" "$rc:$(grep -c 'no well-formed proof among 2' e7)" "3:1"
else
  same "native: a well-formed proof is verified" "$rc" 0
fi

# ---- bad input
expect_fail "unknown mode" 2 "unknown --mode" -- "$DSM" prove --problem p0.txt --generator "$URL" --mode magic
expect_fail "two problems" 2 "one of --problem" -- "$DSM" prove --problem p0.txt --problem-id 1 --generator "$URL"
expect_fail "no generator" 2 "--generator SPEC is required" -- "$DSM" prove --problem p0.txt
expect_fail "bad backend" 2 "expected native:DIR or http:URL" -- "$DSM" prove --problem p0.txt --generator ftp://x
expect_fail "missing problem" 2 "problem 99999 does not exist" -- "$DSM" prove --problem-id 99999 --generator "$URL"
expect_fail "zero analyses" 2 "--analyses 1..1024" -- "$DSM" prove --problem p0.txt --generator "$URL" --analyses 0
expect_fail "same run, other settings" 2 "exists with other settings" -- "$DSM" prove "${R[@]/--threads/--attempts}" 
! grep -qE 'Sanitizer|runtime error' e1 e2 e3 e4 e6 e7 && ok "no sanitizer report" || bad "sanitizer report"
check_done
