#!/usr/bin/env bash
# demo_v1.sh - the DeepSeekMath V1 path end to end: GRPO with the rule reward (the answer checker
# against gold answers) raises a tiny model's held-out accuracy on a synthetic arithmetic set in
# GSM8K's format. docs/loop.md "The V1 path" has the measured numbers.
#
#   1. data: "What is a + b?" for a, b in 10..99, answers "a + b = s\n#### s" (GSM8K's form);
#      shuffled with a fixed seed into an SFT part (5000), a part for the loop's rounds (2600) and a
#      held-out test part (500), disjoint;
#   2. the SFT part is biased: in a share BIAS (0.6) of the sums with a carry the carry is dropped
#      (the answer is 10 too small), so a tiny model (byte tokenizer) fine-tuned on it answers most
#      carry problems wrongly when greedy, though it samples the right sum often: a systematic
#      error that more SFT on the same data keeps and a rule reward can see;
#   3. the problems of the loop part go into the store (source arith-v1, gold_answer);
#   4. `dsm loop` with generator_reward "rule" and no verifier: each round samples 8 answers per
#      problem, rewards them with the answer checker and makes a GRPO update;
#   5. greedy accuracy on the held-out test part before and after, and the loop's sampled
#      accuracy (= mean rule reward) on each round's fresh problems.
#
# Usage: bash scripts/demo_v1.sh [WORKDIR]   (env: DSM=path/to/dsm, SFT_STEPS, ROUNDS, GRPO_LR,
#        PROBLEMS, TEMP, BIAS; defaults 1200, 4, 5e-5, 128, 1.0, 0.6)
set -euo pipefail
DSM=${DSM:-$(cd "$(dirname "$0")/.." && pwd)/build/dsm}
W=$(realpath -m "${1:-${DSM_HOME:-var}/demo-v1}")
SFT_STEPS=${SFT_STEPS:-1200}
ROUNDS=${ROUNDS:-4}
GRPO_LR=${GRPO_LR:-5e-5}
PROBLEMS=${PROBLEMS:-128}
TEMP=${TEMP:-1.0}
BIAS=${BIAS:-0.6}
mkdir -p "$W"
cd "$W"
T0=$(date +%s)
printf 'Question: {{problem}}\nAnswer:\n' >template.md

# ---- 1. data (GSM8K format: question, answer ending in "#### s")
awk 'BEGIN { srand(11); n = 0;
       for (a = 10; a < 100; a++) for (b = 10; b < 100; b++) p[n++] = a " " b;
       for (i = n - 1; i > 0; i--) { j = int(rand() * (i + 1)); t = p[i]; p[i] = p[j]; p[j] = t }
       for (i = 0; i < n; i++) { split(p[i], x, " ");
         printf("{\"question\": \"What is %d + %d?\", \"answer\": \"%d + %d = %d\\n#### %d\"}\n", x[1], x[2], x[1], x[2], x[1] + x[2], x[1] + x[2]) } }' >all.jsonl
# the SFT part, with a bias: in a share BIAS of the sums with a carry, the carry is dropped
python3 - "$BIAS" <<'PY' >sft.jsonl
import json, random, sys
bias, rng = float(sys.argv[1]), random.Random(12)
for line in list(open("all.jsonl"))[:5000]:
    r = json.loads(line)
    a, b = (int(x) for x in r["question"][8:-1].split(" + "))
    s = a + b
    if a % 10 + b % 10 >= 10 and rng.random() < bias:
        s -= 10
    r["answer"] = f"{a} + {b} = {s}\n#### {s}"
    print(json.dumps(r))
PY
sed -n 5001,7600p all.jsonl >rl.jsonl
tail -500 all.jsonl >test.jsonl
# the prompt as the services render it (template.md), the answer as the model should write it
to_messages() { python3 -c '
import json, sys
t = open("template.md").read()
for line in open(sys.argv[1]):
    r = json.loads(line)
    m = {"messages": [{"role": "user", "content": t.replace("{{problem}}", r["question"])}]}
    if sys.argv[2] == "train":
        m["messages"].append({"role": "assistant", "content": r["answer"]})
    print(json.dumps(m))' "$@"; }
to_messages sft.jsonl train >sft_msgs.jsonl
to_messages test.jsonl test >test_msgs.jsonl
python3 -c '
import json
for line in open("test.jsonl"): print(json.loads(line)["answer"].split("#### ")[-1])' >test_gold

# ---- 2. a short SFT
[ -d init ] || "$DSM" model init --preset tiny --layers 4 --ffn 256 --seed 5 --out init 2>/dev/null
[ -f sft/config.json ] || "$DSM" train sft --model init --data sft_msgs.jsonl --out sft --steps "$SFT_STEPS" --batch-size 32 \
    --lr 1e-3 --warmup-steps 20 --max-len 64 --seed 5 --quiet

# greedy accuracy on the held-out test part: the answer checker on each completion
held_out() { # MODEL -> "right total"
  "$DSM" generate --model "$1" --prompts test_msgs.jsonl --temperature 0 --max-tokens 24 --no-bos --json >gen.json 2>/dev/null
  python3 - "$DSM" <<'PY'
import json, subprocess, sys
gold = open("test_gold").read().split()
texts = {}
for line in open("gen.json"):
    o = json.loads(line)
    texts.setdefault(o["request"], o["text"])
right = sum(subprocess.run([sys.argv[1], "check-answer", "--gold", gold[r], "--pred-text", t],
                           capture_output=True).returncode == 0 for r, t in texts.items())
print(right, len(gold))
PY
}
read -r b_right b_total < <(held_out sft)

# ---- 3. the loop's problems into the store
python3 -c '
import json
print("BEGIN;")
for i, line in enumerate(open("rl.jsonl")):
    r = json.loads(line)
    q, g = r["question"].replace("\x27", "\x27\x27"), r["answer"].split("#### ")[-1]
    print(f"INSERT INTO problems (source, source_key, statement, reference_solution, gold_answer) VALUES (\x27arith-v1\x27, \x27{i}\x27, \x27{q}\x27, NULL, \x27{g}\x27) ON CONFLICT DO NOTHING;")
print("COMMIT;")' >problems.sql
"$DSM" db psql -q -f "$W/problems.sql" >/dev/null

# ---- 4. the loop: rule rewards, no verifier
cat >loop.json <<JSON
{"rounds": $ROUNDS, "problems": $PROBLEMS, "proofs": 8, "problem_source": "arith-v1", "template": "$W/template.md",
 "generator_reward": "rule", "train": {"verifier": 0}, "models": {"generator": "$W/sft"},
 "max_tokens": {"generator": 24}, "temperature": $TEMP, "top_p": 1.0, "grpo_lr": $GRPO_LR, "updates": 2,
 "grpo_batch": 64, "grpo_max_len": 128}
JSON
"$DSM" loop --config loop.json --run v1-demo --fresh --dir "$W/loop" --summary "$W/summary.json" --quiet

# ---- 5. after
final="$W/loop/models/generator/round-$ROUNDS"
read -r a_right a_total < <(held_out "$final")
echo
echo "DeepSeekMath V1 path: tiny model (4 layers, byte tokenizer), $SFT_STEPS SFT steps on data with carry bias $BIAS,"
echo "$ROUNDS GRPO rounds"
echo "of $PROBLEMS problems x 8 samples, rule reward, lr $GRPO_LR; $(($(date +%s) - T0)) s in all"
echo
echo "| | held-out greedy accuracy ($b_total problems) |"
echo "|---|---|"
echo "| after SFT (before GRPO) | $b_right / $b_total |"
echo "| after $ROUNDS GRPO rounds | $a_right / $a_total |"
echo
echo "sampled accuracy (mean rule reward, temperature $TEMP) on each round's fresh problems:"
python3 -c '
import json, sys
s = json.load(open(sys.argv[1]))
for r in s["rounds"]:
    print("  round %d (%s): %s" % (r["round"], "after %d GRPO update(s)" % r["round"], r.get("mean_reward")))' "$W/summary.json"
