#!/usr/bin/env bash
# test_eval_verifier.sh - `dsm eval verifier` (docs/eval.md) on real graded records
# (tests/fixtures/proofsets: 5 Open Proof Corpus proofs, 2 DeepSeekMath-V2 ProofBench proofs, 3
# MR-GSM8K flawed solutions) and a scripted verifier (evalv_server.py) whose scores per proof are
# fixed multisets, so every figure of the report is computed by hand below:
#   single analyses (30): tp 11, fp 5, fn 7, tn 7; the 3-vote (10 proofs, ties to the lower
#   score): tp 4, fp 2, fn 2, tn 2; per source and per generating model; the MR-GSM8K first-issue
#   match (5 analyses flag an error, 4 name the human's first wrong step); the metrics rows; a
#   rerun sends nothing; --limit picks a stable sample; bad input is refused.
set -u
: "${DSM:?}" "${DSM_SOURCE_DIR:?}"
T=$(mktemp -d /tmp/dsm-test-evalv.XXXXXX)
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
F="$DSM_SOURCE_DIR/tests/fixtures/proofsets"

# The scripted verifier's answers: per proof (matched by the start of its text) a multiset of
# (score, analysis). Human labels: A, C incorrect; B, D, E correct (OPC); F 7/7, G 0/7 (V2);
# H, I, J all flawed, first wrong steps 2, 2, 5 (MR-GSM8K).
python3 - "$F" <<'PY' || { echo "FAIL scores.json"; exit 1; }
import json, sys
F = sys.argv[1]
opc = {(o["problem_id"], o["model_id"]): o["proof"] for o in map(json.loads, open(F + "/opc/test.jsonl"))}
v2 = {o["problem_idx"]: o["model_prediction"]["proof"] for o in map(json.loads, open(F + "/v2/outputs/IMO-ProofBench.jsonl"))}
mr = {o["uuid"][:8]: o["model_output_steps"][0] for o in map(json.loads, open(F + "/mr_gsm8k/first_error_steps.jsonl"))}
ok, issue = "Every step is justified.", "There is a gap in the argument."
table = [
  (opc["EGMO_2018_2", "openai/o3"], [(0, issue), (0, issue), (1, ok)]),                       # A
  (opc["bmo1_2015_1", "openai/o4-mini--high"], [(1, ok), (1, ok), (0.5, issue)]),             # B
  (opc["swiss_final_2015_6", "openai/o4-mini--high"], [(1, ok), (1, ok), (0, issue)]),        # C
  (opc["BalticWay_2020_1", "openai/o4-mini--high"], [(0.5, issue), (0.5, issue), (1, ok)]),   # D
  (opc["bmo1_2015_1", "openai/o3"], [(1, ok), (1, ok), (1, ok)]),                             # E
  (v2["PB-Basic-002"], [(1, ok), (0, issue), (0.5, issue)]),                                  # F: a tie
  (v2["PB-Advanced-011"], [(0, issue), (0, issue), (0, issue)]),                              # G
  (mr["81e97a86"], [(0, "Step 2 computes the cost wrongly."),                                 # H: hit
                    (0, "Step 1 is fine, but step 2 is wrong."),                              #    miss (first mention)
                    (1, ok)]),
  (mr["d09f224c"], [(0.5, "In step 2 the count is off."), (0, "STEP #2 is wrong."),            # I: 3 hits
                    (0, "The error: Step 2.")]),
  (mr["92859b73"], [(1, ok), (1, ok), (1, ok)]),                                              # J
]
out = []
for text, answers in table:
    m = text[:80]
    assert sum(m in t for t, _ in table) == 1, m
    out.append({"match": m, "answers": answers})
json.dump(out, open("scores.json", "w"))
PY
srv_start "$DSM_SOURCE_DIR/tests/cli/evalv_server.py"
"$DSM" db start >/dev/null 2>&1 || { echo "FAIL db start"; exit 1; }
S=(--set "$F/opc/test.jsonl" --set "$F/v2/outputs" --set "$F/mr_gsm8k" --verifier "$URL" -n 3 --quiet)

"$DSM" eval verifier "${S[@]}" --run ev1 >t1.txt 2>e1
same "exit" "$?" 0
same "30 requests, 30 scored analyses under the run" "$(grep -c '^verifier ' reqs.log) $(q "SELECT count(*) FROM verifications v JOIN runs r ON r.id = v.run_id WHERE r.name = 'ev1' AND v.score IS NOT NULL")" "30 30"
row() { awk -v j="$1" -v g="$2" '$1 == j && $3 == g {print $4, $5, $6, $7, $8, $9, $10, $11, $12, $13}' t1.txt; }
# n tp fp fn tn acc bal_acc prec_in rec_in kappa (kappa: (po - pe) / (1 - pe))
same "analysis/all" "$(row analysis all)" "30 11 5 7 7 0.600 0.597 0.688 0.611 0.189"
same "vote/all (F's 1-0-0.5 tie goes to 0)" "$(row vote all)" "10 4 2 2 2 0.600 0.583 0.667 0.667 0.167"
same "analysis/source=opc" "$(row analysis source=opc)" "15 3 3 3 6 0.600 0.583 0.500 0.500 0.167"
same "analysis/source=proofbench" "$(row analysis source=proofbench)" "6 3 2 0 1 0.667 0.667 0.600 1.000 0.333"
same "analysis/source=mr_gsm8k (no correct proof: balanced accuracy undefined)" "$(row analysis source=mr_gsm8k)" "9 5 0 4 0 0.556 - 1.000 0.556 0.000"
same "vote/generator=openai/o3" "$(row vote generator=openai/o3)" "2 1 0 0 1 1.000 1.000 1.000 1.000 1.000"
same "vote/generator=openai/o4-mini--high" "$(row vote generator=openai/o4-mini--high)" "3 0 1 1 1 0.333 0.250 0.000 0.000 -0.500"
grep -q "MR-GSM8K first issue (scripted-verifier): 5 of 9 analyses report an error, 5 name a step, 4 name the human's first wrong step (hit rate 0.800)" t1.txt \
  && ok "first issue line" || bad "first issue line: $(grep MR-GSM8K t1.txt)"
M() { q "SELECT round(value::numeric, 4) FROM metrics m JOIN runs r ON r.id = m.run_id WHERE r.name = 'ev1' AND m.name = '$1'"; }
same "metrics rows" "$(M analysis/all/kappa) $(M vote/all/accuracy) $(M vote/source=opc/n) $(M first_issue/hit_rate) $(M first_issue/flagged)" "0.1892 0.6000 5.0000 0.8000 5.0000"
same "run done, kind eval-verifier" "$(q "SELECT kind, status FROM runs WHERE name = 'ev1'")" "eval-verifier done"
same "each analysis's seed is the hash of its key (no two alike)" "$(q "SELECT count(DISTINCT seed) FROM verifications v JOIN runs r ON r.id = v.run_id WHERE r.name = 'ev1'")" 30

# the same command again: nothing sent, the same table
"$DSM" eval verifier "${S[@]}" --run ev1 >t2.txt 2>e2
same "rerun: exit, no request, same table" "$?:$(grep -c '^verifier ' reqs.log):$(cmp -s t1.txt t2.txt && echo same)" "0:30:same"

# JSON, and a stable sample of 4 proofs x 2
"$DSM" eval verifier "${S[@]}" --run ev1 --json >t3.json 2>e3
same "json: vote/all kappa, first issue hits" "$(jget t3.json '"%.4f %d" % ([r for r in d["agreement"] if r["judged_by"] == "vote" and r["group"] == "all"][0]["kappa"], d["first_issue"][0]["hits"])')" "0.1667 4"
"$DSM" eval verifier "${S[@]/-n/--limit}" -n 2 --run ev2 >t4.txt 2>e4
same "limit: 3 proofs x 2 analyses" "$?:$(q "SELECT count(DISTINCT proof_id), count(*) FROM verifications v JOIN runs r ON r.id = v.run_id WHERE r.name = 'ev2'")" "0:3 6"

# bad input
expect_fail "no set" 2 "--set PATH is required" -- "$DSM" eval verifier --verifier "$URL"
expect_fail "no verifier" 2 "--verifier SPEC is required" -- "$DSM" eval verifier --set "$F/opc"
expect_fail "n = 0" 2 "-n 1..1024" -- "$DSM" eval verifier --set "$F/opc" --verifier "$URL" -n 0
expect_fail "bad backend" 2 "expected native:DIR or http:URL" -- "$DSM" eval verifier --set "$F/opc" --verifier ftp://x
expect_fail "missing set" 2 "nope: No such file" -- "$DSM" eval verifier --set "$T/nope" --verifier "$URL"
mkdir -p gsm8k && printf '{"question": "1+1?", "answer": "#### 2"}\n' >gsm8k/test.jsonl
expect_fail "a set without graded proofs" 2 "no proof with a human grade" -- "$DSM" eval verifier --set gsm8k/test.jsonl --verifier "$URL"
expect_fail "same run, other settings" 2 "exists with other settings" -- "$DSM" eval verifier "${S[@]}" --run ev1 --seed 5
! grep -qE 'Sanitizer|runtime error' e1 e2 e3 e4 && ok "no sanitizer report" || bad "sanitizer report"
check_done
