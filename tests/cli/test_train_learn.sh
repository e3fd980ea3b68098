#!/usr/bin/env bash
# test_train_learn.sh - the learning check: a tiny model trained from scratch by `dsm train sft`
# learns a synthetic task to >= 95% exact match on held-out prompts, judged by greedy
# `dsm generate`. Task: "say abcd: " -> "abcd" for random 4-letter words (500 train, 100 held out,
# disjoint). It needs the model to attend back to the prompt and copy (an induction pattern), so
# it fails if gradients, masking or the optimizer are wrong; it takes ~200 steps (seconds).
set -u
DSM=${DSM:?set by ctest}
T=$(mktemp -d /tmp/dsm-train-learn.XXXXXX)
trap 'rm -rf "$T"' EXIT
. "$(dirname "$0")/lib_check.sh"
export OMP_NUM_THREADS=2

# 600 distinct words from a fixed awk generator; the last 100 are held out
awk 'BEGIN { srand(4); n = 0;
       while (n < 600) { w = ""; for (k = 0; k < 4; k++) w = w sprintf("%c", 97 + int(rand() * 26));
                         if (!(w in seen)) { seen[w] = 1; word[n++] = w } }
       for (i = 0; i < 600; i++) print word[i] }' > "$T/words"
head -500 "$T/words" | awk '{ printf("{\"prompt\": \"say %s: \", \"response\": \"%s\"}\n", $1, $1) }' > "$T/train.jsonl"
tail -100 "$T/words" > "$T/gold"
awk '{ printf("{\"prompt\": \"say %s: \"}\n", $1) }' "$T/gold" > "$T/test.jsonl"

"$DSM" model init --preset tiny --layers 2 --seed 5 --out "$T/m" 2>/dev/null || bad "model init"
start=$(date +%s)
if "$DSM" train sft --model "$T/m" --data "$T/train.jsonl" --out "$T/run" --steps 200 --batch-size 16 --lr 3e-3 \
     --warmup-steps 10 --max-len 32 --seed 1 --quiet 2>"$T/err"; then ok "train"; else bad "train: $(tail -3 "$T/err")"; fi
"$DSM" generate --model "$T/run" --prompts "$T/test.jsonl" --temperature 0 --max-tokens 8 --json 2>"$T/gerr" |
  sed 's/.*"text":"\([^"]*\)".*/\1/' > "$T/out" || bad "generate: $(tail -2 "$T/gerr")"
right=$(paste -d' ' "$T/out" "$T/gold" | awk '$1 == $2 { n++ } END { print n + 0 }')
echo "exact match: $right / 100 held-out prompts in $(( $(date +%s) - start )) s"
[ "$right" -ge 95 ] && ok "learned the task ($right/100 exact)" || bad "only $right/100 exact (first outputs: $(head -3 "$T/out" | tr '\n' ' '))"
check_done
