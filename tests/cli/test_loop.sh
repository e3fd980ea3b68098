#!/usr/bin/env bash
# test_loop.sh - `dsm loop` end to end against a throwaway PostgreSQL.
#
#  A. All three roles served by loop_server.py (an oracle for the synthetic domain whose verifier
#     raises a false issue on a quarter of its analyses and whose meta-verifier rejects exactly
#     the false issues): every stage runs through the services and the store; the counts are exact
#     (G proofs per problem, n analyses per well-formed proof, m ratings per analysis or
#     self-evaluation scoring < 1, one auto and one ground-truth label per proof); single analyses
#     are wrong sometimes but the V2 vote labels every proof right (label.accuracy = 1 >
#     verifier.accuracy); a second run of the same command sends no request and adds no row.
#  B. kill -9 in the middle of a run, then the same command: it finishes with the same exact
#     counts (nothing lost, nothing twice).
#  C. Native tiny models: bootstrap SFT, the rounds and both GRPO stages; new checkpoints are
#     registered in `models` and load.
#  D. Bad configurations and flags are refused with the key named.
set -u
DSM=${DSM:?set by ctest}
T=$(mktemp -d /tmp/dsm-loop-test.XXXXXX)
. "$(dirname "$0")/lib_check.sh"
. "$(dirname "$0")/lib_pg.sh"
pg_setup
srv=
cleanup() { [ -n "$srv" ] && kill "$srv" 2>/dev/null; pg_cleanup; rm -rf "$T"; }
trap cleanup EXIT
export OMP_NUM_THREADS=2
q() { "$DSM" db psql -tA -c "$1" 2>>"$T/psql.err"; }

python3 "$(dirname "$0")/loop_server.py" "$T/port" "$T/requests" &
srv=$!
for _ in $(seq 50); do [ -s "$T/port" ] && break; sleep 0.1; done
URL="http://127.0.0.1:$(cat "$T/port")"
cat > "$T/oracle.json" <<EOF
{"rounds": 1, "problems": 6, "proofs": 4, "analyses": 6, "metas": 3, "difficulty": "1..2",
 "models": {"generator": "$URL", "verifier": "$URL", "metaverifier": "$URL"}}
EOF

# ---- A. the oracle run ------------------------------------------------------------------------
if "$DSM" loop --config "$T/oracle.json" --run oracle --summary "$T/sum.json" >"$T/a.out" 2>"$T/a.err"; then ok "oracle run"; else bad "oracle run: $(tail -5 "$T/a.err")"; fi
RUN=$(q "SELECT id FROM runs WHERE name = 'oracle'")
check_counts() { # $1 run id, $2 what
  local p v bad_v bad_m lab gt
  p=$(q "SELECT count(*) FROM proofs WHERE run_id = $1")
  [ "$p" = 48 ] && ok "$2: 2 rounds x 6 problems x 4 proofs" || bad "$2: $p proofs, want 48"
  bad_v=$(q "SELECT count(*) FROM proofs p WHERE p.run_id = $1 AND (SELECT count(*) FROM verifications v WHERE v.proof_id = p.id AND v.kind = 'analysis') <> 6")
  [ "$bad_v" = 0 ] && ok "$2: exactly 6 analyses per proof" || bad "$2: $bad_v proofs without exactly 6 analyses"
  bad_m=$(q "SELECT count(*) FROM verifications v WHERE v.run_id = $1 AND v.score < 1 AND (SELECT count(*) FROM meta_verifications m WHERE m.verification_id = v.id) <> 3")
  [ "$bad_m" = 0 ] && ok "$2: exactly 3 ratings per issue" || bad "$2: $bad_m issues without exactly 3 ratings"
  lab=$(q "SELECT count(*) FROM labels WHERE run_id = $1 AND source = 'auto'")
  gt=$(q "SELECT count(*) FROM labels WHERE run_id = $1 AND source = 'ground_truth'")
  [ "$lab" = 48 ] && [ "$gt" = 48 ] && ok "$2: one auto and one ground-truth label per proof" || bad "$2: $lab auto, $gt ground-truth labels"
}
check_counts "$RUN" "oracle"
selfv=$(q "SELECT count(*) FROM verifications WHERE run_id = $RUN AND kind = 'self'")
flawed=$(q "SELECT count(*) FROM proofs WHERE run_id = $RUN AND self_score < 1")
[ "$selfv" = "$flawed" ] && [ "$flawed" -gt 0 ] && ok "each self-evaluation below 1 is rated ($selfv)" || bad "self rows $selfv for $flawed flawed proofs"
wrong=$(q "SELECT count(*) FROM labels a JOIN labels g ON g.proof_id = a.proof_id AND g.source = 'ground_truth' WHERE a.run_id = $RUN AND a.source = 'auto' AND a.value IS DISTINCT FROM g.value")
[ "$wrong" = 0 ] && ok "the vote labels every proof with its true score" || bad "$wrong auto labels differ from the truth"
vacc=$(q "SELECT value FROM metrics WHERE run_id = $RUN AND round = 1 AND name = 'verifier.accuracy'")
lacc=$(q "SELECT value FROM metrics WHERE run_id = $RUN AND round = 1 AND name = 'label.accuracy'")
rej=$(q "SELECT value FROM metrics WHERE run_id = $RUN AND round = 1 AND name = 'meta.reject_precision'")
awk -v v="$vacc" -v l="$lacc" -v r="$rej" 'BEGIN { exit !(v > 0.5 && v < 0.95 && l == 1 && r == 1) }' &&
  ok "metrics: verifier accuracy $vacc < label accuracy $lacc; meta rejects only false issues ($rej)" ||
  bad "metrics: verifier.accuracy '$vacc', label.accuracy '$lacc', meta.reject_precision '$rej'"
if python3 - "$T/sum.json" <<'PY'
import json, sys
s = json.load(open(sys.argv[1]))
r = s["rounds"]
assert s["seconds"] > 0 and len(r) == 2 and [x["round"] for x in r] == [0, 1], r
for x in r:
    assert x["label_accuracy"] == 1 and x["verifier_accuracy"] < 1 and x["meta_reject_precision"] == 1, x
    assert x["label_coverage"] == 1 and 0 <= x["generator_validity"] <= 1 and 0 < x["mean_reward"] <= 1, x
PY
then ok "summary JSON: rounds[0] after the bootstrap, the headline figures"; else bad "summary: $(head -c 400 "$T/sum.json")"; fi
grep -q "where the numbers are" "$T/a.err" && ok "the run says where its numbers are" || bad "no pointer to the numbers"
rep="$DSM_HOME/loop/oracle/report.html"
[ -s "$rep" ] && grep -q "report: $rep" "$T/a.err" && grep -q "<svg" "$rep" && ok "the run wrote its HTML report" || bad "no report at $rep"
stages=$(q "SELECT count(*) FROM loop_stages WHERE run_id = $RUN")
nreq=$(wc -l < "$T/requests")
if "$DSM" loop --config "$T/oracle.json" --run oracle >"$T/a2.out" 2>"$T/a2.err"; then ok "second run"; else bad "second run: $(tail -3 "$T/a2.err")"; fi
[ "$(wc -l < "$T/requests")" = "$nreq" ] && [ "$(q "SELECT count(*) FROM loop_stages WHERE run_id = $RUN")" = "$stages" ] &&
  ok "a finished run is not redone ($nreq requests, $stages stages)" || bad "the second run sent requests or added stages"
check_counts "$RUN" "after a second run"

# ---- B. kill -9 in the middle ----------------------------------------------------------------
"$DSM" loop --config "$T/oracle.json" --run killed >"$T/b.out" 2>"$T/b.err" &
pid=$!
K=0
for _ in $(seq 600); do
  n=$(q "SELECT count(*) FROM verifications v JOIN runs r ON r.id = v.run_id WHERE r.name = 'killed'")
  if [ "${n:-0}" -gt 20 ]; then kill -9 $pid; K=1; break; fi
  kill -0 $pid 2>/dev/null || break
  sleep 0.05
done
wait $pid 2>/dev/null
[ $K = 1 ] && ok "killed the loop with SIGKILL during verification" || bad "the run ended before it could be killed"
if "$DSM" loop --config "$T/oracle.json" --run killed >"$T/b2.out" 2>"$T/b2.err"; then ok "resumed after kill -9"; else bad "resume: $(tail -5 "$T/b2.err")"; fi
grep -q "resuming run 'killed'" "$T/b2.err" && ok "it resumed the same run" || bad "no resume message"
check_counts "$(q "SELECT id FROM runs WHERE name = 'killed'")" "after kill -9 and resume"

# ---- C. native tiny models: bootstrap and GRPO -------------------------------------------------
cat > "$T/native.json" <<EOF
{"rounds": 1, "problems": 2, "proofs": 2, "analyses": 2, "metas": 1, "concurrency": 8,
 "max_tokens": {"generator": 48, "verifier": 48, "metaverifier": 32},
 "bootstrap_records": {"generator": 40, "verifier": 40, "metaverifier": 40},
 "bootstrap_steps": {"generator": 3, "verifier": 3, "metaverifier": 3},
 "bootstrap_batch": 4, "bootstrap_max_len": {"generator": 160, "verifier": 200, "metaverifier": 400},
 "bootstrap_flawed": 0.5, "bootstrap_plants": {"skip": 1}, "grpo_max_len": 256}
EOF
if "$DSM" loop --config "$T/native.json" --run native --dir "$T/native" >"$T/c.out" 2>"$T/c.err"; then ok "native run"; else bad "native run: $(tail -8 "$T/c.err")"; fi
NR=$(q "SELECT id FROM runs WHERE name = 'native'")
st=$(q "SELECT string_agg(stage, ',' ORDER BY round, stage) FROM loop_stages WHERE run_id = $NR AND (stage LIKE 'boot_%' OR stage LIKE 'grpo_%')")
# the generator's SFT mix follows bootstrap_flawed / bootstrap_plants: correct proofs and skipped steps only
mix=$(grep -o '"plant": *"[a-z_]*"' "$T/native/data/sft-generator.jsonl" | sed 's/.*"\([a-z_]*\)"$/\1/' | sort -u | paste -sd,)
[ "$mix" = "none,skip" ] && ok "bootstrap_plants shapes the generator's SFT data" || bad "generator SFT plants: $mix"
[ "$st" = "boot_generator,boot_metaverifier,boot_verifier,grpo_generator,grpo_verifier" ] && ok "bootstrap and GRPO stages ran" || bad "stages: $st"
for role in generator verifier; do
  path=$(q "SELECT path FROM models WHERE run_id = $NR AND role = '$role' AND round = 1")
  if [ -n "$path" ] && "$DSM" model info --model "$path" >/dev/null 2>&1; then ok "GRPO $role checkpoint registered and loads"; else bad "GRPO $role checkpoint '$path'"; fi
done
[ "$(q "SELECT count(*) FROM proofs WHERE run_id = $NR")" = 8 ] && ok "native rounds wrote their proofs" || bad "native proofs: $(q "SELECT count(*) FROM proofs WHERE run_id = $NR")"
# the generator on the fixed held-out set: greedy, 64 problems, every round, the same problems each time
hv=$(q "SELECT count(*) || ' ' || bool_and(value BETWEEN 0 AND 1) FROM metrics WHERE run_id = $NR AND name = 'generator.heldout_validity'")
[ "$hv" = "2 true" ] && [ "$(wc -l < "$T/native/data/heldout-prompts.jsonl")" = 64 ] &&
  [ "$(wc -l < "$T/native/logs/heldout-round-1.jsonl")" = 64 ] && [ "$(wc -l < "$T/native/logs/heldout-round-2.jsonl")" = 64 ] &&
  ok "held-out generator validity measured in both rounds on 64 problems" || bad "held-out metric: $hv"

# the V1 path: rule rewards from the answer checker on the same rollouts, made answer problems
q "UPDATE problems SET gold_answer = '42' WHERE id IN (SELECT problem_id FROM proofs WHERE run_id = $NR AND round = 1)" >/dev/null
q "UPDATE proofs p SET finish_reason = 'stop', raw_output = CASE WHEN p.id = (SELECT min(x.id) FROM proofs x WHERE x.problem_id = p.problem_id AND x.run_id = $NR AND x.round = 1) THEN 'so it is \boxed{42}.' ELSE 'so it is \boxed{41}.' END WHERE p.run_id = $NR AND p.round = 1" >/dev/null
gen0=$(q "SELECT path FROM models WHERE run_id = $NR AND role = 'generator' AND round = 0")
if "$DSM" train grpo --role generator --reward rule --model "$gen0" --out "$T/rule" --run-id "$NR" --round 1 --template synth \
     --lr 1e-3 --max-len 256 >"$T/rule.json" 2>"$T/rule.err"; then ok "train grpo --reward rule"; else bad "rule reward: $(tail -3 "$T/rule.err")"; fi
grep -q '"mean_reward":0.5,' "$T/rule.json" && grep -q '"groups":2,' "$T/rule.json" && ok "rule rewards: half the answers right, groups used" ||
  bad "rule summary: $(cat "$T/rule.json")"
cmp -s "$T/rule/model.safetensors" "$gen0/model.safetensors" && bad "the rule update changed nothing" || ok "the rule update changed the weights"
# the same update by two data-parallel ranks (each half of the sequences, gradients summed): the
# same summary and weights within float rounding; the ranks' weights compared after every update
if "$DSM" train grpo --role generator --reward rule --model "$gen0" --out "$T/rule2" --run-id "$NR" --round 1 --template synth \
     --lr 1e-3 --max-len 256 --updates 2 --dp 2 --dp-check-every 1 >"$T/rule2.json" 2>"$T/rule2.err" &&
   "$DSM" train grpo --role generator --reward rule --model "$gen0" --out "$T/rule1" --run-id "$NR" --round 1 --template synth \
     --lr 1e-3 --max-len 256 --updates 2 >"$T/rule1.json" 2>"$T/rule1.err"; then
  python3 - "$T/rule1" "$T/rule2" <<'PY' && ok "GRPO with --dp 2 = one process (summary, weights)" || bad "GRPO --dp 2 differs: $(cat "$T/rule1.json" "$T/rule2.json")"
import array, json, struct, sys
a, b = (json.load(open(d + '.json')) for d in sys.argv[1:3])
for k in ('loss', 'kl', 'grad_norm', 'clip_frac'):
    assert abs(a[k] - b[k]) <= 1e-5 * max(1e-3, abs(a[k])), (k, a[k], b[k])
assert a['sequences'] == b['sequences'] == 4 and a['tokens'] == b['tokens']
def load(p):
    raw = open(p + '/model.safetensors', 'rb').read(); n = struct.unpack('<Q', raw[:8])[0]; h = json.loads(raw[8:8 + n]); out = {}
    for k, v in h.items():
        if k != '__metadata__':
            s, e = v['data_offsets']; t = array.array('f'); t.frombytes(raw[8 + n + s:8 + n + e]); out[k] = t
    return out
x, y = load(sys.argv[1]), load(sys.argv[2])
d = max(abs(p - q) for k in x for p, q in zip(x[k], y[k]))
# AdamW divides by sqrt(v): a weight whose gradient is near 0 moves by a good part of lr = 1e-3
# either way, so the bound is lr / 10, not float rounding
assert d < 1e-4, d
PY
else bad "GRPO --dp 2: $(tail -3 "$T/rule2.err")"; fi
# GRPO with LoRA on the same rollouts: the reference is the base with the adapter off; the output
# holds the adapter and the merged model; a second update continues the adapter (its KL is > 0 at once)
if "$DSM" train grpo --role generator --reward rule --model "$gen0" --out "$T/lora1" --run-id "$NR" --round 1 --template synth \
     --lora r=4,alpha=8 --lr 1e-2 --max-len 256 >"$T/lora1.json" 2>"$T/lora1.err"; then ok "train grpo --lora"; else bad "lora: $(tail -3 "$T/lora1.err")"; fi
grep -q '"reference":"base model (adapter off)"' "$T/lora1.json" && [ -s "$T/lora1/adapter_model.safetensors" ] &&
  [ -s "$T/lora1/adapter_config.json" ] && "$DSM" model info --model "$T/lora1" >/dev/null 2>&1 &&
  ok "LoRA update: adapter and merged model written, reference = base" || bad "LoRA output: $(cat "$T/lora1.json"; ls "$T/lora1")"
cmp -s "$T/lora1/model.safetensors" "$gen0/model.safetensors" && bad "the LoRA update changed nothing" || ok "the merged LoRA model differs from the base"
if "$DSM" train grpo --role generator --reward rule --model "$gen0" --adapter "$T/lora1" --out "$T/lora2" --run-id "$NR" --round 1 \
     --template synth --lr 1e-2 --max-len 256 >"$T/lora2.json" 2>"$T/lora2.err"; then ok "train grpo --adapter"; else bad "adapter: $(tail -3 "$T/lora2.err")"; fi
python3 -c 'import json,sys; d=json.load(open(sys.argv[1])); sys.exit(0 if d["kl"] > 0 else 1)' "$T/lora2.json" &&
  ! cmp -s "$T/lora1/adapter_model.safetensors" "$T/lora2/adapter_model.safetensors" &&
  ok "a continued adapter: KL against the base > 0 from its first update, adapter changed" || bad "continued adapter: $(cat "$T/lora2.json")"
expect_fail "--lora and --adapter together" 2 'give one' -- "$DSM" train grpo --role generator --model "$gen0" --out "$T/x" \
  --run-id "$NR" --round 1 --lora r=4 --adapter "$T/lora1"
expect_fail "a bad LoRA spec" 2 '--lora' -- "$DSM" train grpo --role generator --model "$gen0" --out "$T/x" --run-id "$NR" --round 1 --lora r=0
q "UPDATE problems SET gold_answer = NULL WHERE id IN (SELECT problem_id FROM proofs WHERE run_id = $NR AND round = 1)" >/dev/null
expect_fail "rule rewards need gold answers" 2 'no gold answer' -- "$DSM" train grpo --role generator --reward rule --model "$gen0" \
  --out "$T/rule2" --run-id "$NR" --round 1 --template synth

# the V1 path as a loop: answer problems, rule rewards, no verifier (no verify/meta/label stages,
# no verifier bootstrap), a template file
for i in 1 2 3; do
  q "INSERT INTO problems (source, source_key, statement, gold_answer) VALUES ('arith-t', '$i', 'What is $i + $i?', '$((2 * i))')" >/dev/null
done
printf 'Question: {{problem}}\nAnswer:\n' >"$T/v1.md"
cat > "$T/v1.json" <<EOF
{"rounds": 1, "problems": 1, "proofs": 3, "problem_source": "arith-t", "template": "$T/v1.md",
 "generator_reward": "rule", "train": {"verifier": 0}, "models": {"generator": "$gen0"},
 "max_tokens": {"generator": 8}, "grpo_max_len": 128}
EOF
if "$DSM" loop --config "$T/v1.json" --run v1 --dir "$T/v1" --summary "$T/v1sum.json" >"$T/v1.out" 2>"$T/v1.err"; then ok "V1 loop run"; else bad "V1 loop: $(tail -8 "$T/v1.err")"; fi
VR=$(q "SELECT id FROM runs WHERE name = 'v1'")
v1_stages=$(q "SELECT string_agg(DISTINCT stage, ',' ORDER BY stage) FROM loop_stages WHERE run_id = $VR")
[ "$v1_stages" = "generate,grpo_generator,metrics,problems" ] && ok "V1 loop: only problems, generate, metrics, GRPO of the generator" || bad "V1 loop stages: $v1_stages"
[ "$(q "SELECT count(*) FROM verifications WHERE run_id = $VR") $(q "SELECT count(*) FROM proofs WHERE run_id = $VR")" = "0 6" ] && ok "V1 loop: 6 answers, no verification" || bad "V1 loop rows: $(q "SELECT count(*) FROM proofs WHERE run_id = $VR")"
[ "$(q "SELECT count(*) FROM proofs WHERE run_id = $VR AND sampling->>'prompt' ~ '^file:v1.md@'")" = 6 ] && ok "V1 loop: the template file recorded" || bad "V1 loop: template id"
[ "$(q "SELECT count(*) FROM metrics WHERE run_id = $VR AND name = 'generator.mean_reward'")" = 2 ] && ok "V1 loop: rule reward measured each round" || bad "V1 loop: metrics"
# a LoRA loop from the bootstrap models: round 1 starts an adapter, round 2 continues it
gv0=$(q "SELECT path FROM models WHERE run_id = $NR AND role = 'verifier' AND round = 0")
gm0=$(q "SELECT path FROM models WHERE run_id = $NR AND role = 'metaverifier' AND round = 0")
cat > "$T/lora.json" <<EOF
{"rounds": 2, "problems": 2, "proofs": 2, "analyses": 2, "metas": 1, "concurrency": 8, "grpo_lora": "r=4,alpha=8",
 "max_tokens": {"generator": 48, "verifier": 48, "metaverifier": 32}, "grpo_max_len": 256,
 "models": {"generator": "$gen0", "verifier": "$gv0", "metaverifier": "$gm0"}}
EOF
if "$DSM" loop --config "$T/lora.json" --run lora --dir "$T/loraloop" >"$T/ll.out" 2>"$T/ll.err"; then ok "LoRA loop run"; else bad "LoRA loop: $(tail -8 "$T/ll.err")"; fi
LR=$(q "SELECT id FROM runs WHERE name = 'lora'")
grep -q -- "--model $gen0 .*--lora r=4,alpha=8" "$T/loraloop/logs/grpo_generator.log" &&
  grep -q -- "--model $gen0 .*--adapter $T/loraloop/models/generator/round-1" "$T/loraloop/logs/grpo_generator.log" &&
  [ -s "$T/loraloop/models/generator/round-2/adapter_model.safetensors" ] &&
  ok "LoRA loop: the base stays the model, round 2 continues round 1's adapter" || bad "LoRA loop commands: $(grep -h -- '--model' "$T/loraloop/logs/grpo_generator.log" | head -3)"
[ "$(q "SELECT count(*) FROM models WHERE run_id = $LR AND round IN (1, 2)")" = 4 ] && ok "LoRA loop: merged models registered" || bad "LoRA loop models"
echo '{"heldout": -1}' > "$T/bad_h.json"
expect_fail "bad heldout" 2 '"heldout" must be an integer' -- "$DSM" loop --config "$T/bad_h.json"
echo '{"bootstrap_plants": {"skipp": 1}}' > "$T/bad_p.json"
expect_fail "unknown plant kind" 2 '"skipp" is not a planted error kind' -- "$DSM" loop --config "$T/bad_p.json"
echo '{"bootstrap_plants": {"none": 1}}' > "$T/bad_p2.json"
expect_fail "plant none is not an error" 2 '"none" is not a planted error kind' -- "$DSM" loop --config "$T/bad_p2.json"
echo '{"bootstrap_plants": {"skip": 0}}' > "$T/bad_p3.json"
expect_fail "plant weights sum to 0" 2 'needs a positive weight' -- "$DSM" loop --config "$T/bad_p3.json"
echo '{"bootstrap_flawed": 1.5}' > "$T/bad_f.json"
expect_fail "flawed share above 1" 2 '"bootstrap_flawed" must be a number in \[0, 1\]' -- "$DSM" loop --config "$T/bad_f.json"
echo '{"grpo_lora": "r=0"}' > "$T/bad_l.json"
expect_fail "bad grpo_lora" 2 '"grpo_lora"' -- "$DSM" loop --config "$T/bad_l.json"
echo '{"template": "relative.md"}' > "$T/bad_t.json"
expect_fail "template must be an absolute path" 2 'absolute path' -- "$DSM" loop --config "$T/bad_t.json"

# ---- D. bad input -------------------------------------------------------------------------------
echo '{"rounds": 1, "problemz": 3}' > "$T/bad1.json"
expect_fail "unknown configuration key" 2 'unknown key "problemz"' -- "$DSM" loop --config "$T/bad1.json"
echo '{"difficulty": "3..1"}' > "$T/bad2.json"
expect_fail "bad difficulty" 2 '"difficulty" must be' -- "$DSM" loop --config "$T/bad2.json"
echo '{"proofs": 1}' > "$T/bad3.json"
expect_fail "a group of one" 2 '"proofs" must be an integer in \[2' -- "$DSM" loop --config "$T/bad3.json"
echo '{"rounds": ' > "$T/bad4.json"
expect_fail "malformed JSON" 2 'bad4.json:' -- "$DSM" loop --config "$T/bad4.json"
expect_fail "bad run name" 2 'run must be' -- "$DSM" loop --run 'a b'
echo '{"rounds": 1, "problems": 7, "models": {"generator": "'$URL'", "verifier": "'$URL'", "metaverifier": "'$URL'"}}' > "$T/other.json"
expect_fail "same run, another configuration" 2 'exists with another configuration' -- "$DSM" loop --config "$T/other.json" --run oracle
check_done
