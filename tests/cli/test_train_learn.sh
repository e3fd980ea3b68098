#!/usr/bin/env bash
# test_train_learn.sh - the learning check: tiny models trained from scratch by `dsm train sft`
# learn synthetic tasks to >= 95% exact match on held-out prompts, judged by greedy `dsm generate`.
#
# 1. 2-digit addition in natural digit order: "12+47=" -> "59" for operands 10..99. The 8100 pairs
#    are shuffled with a fixed seed; 7900 train, the other 200 are held out (disjoint). A 4-layer
#    tiny model (hidden 128, ffn 256) gets 1200 AdamW steps of 32 sequences (~4.9 epochs). The
#    sum's tens digit needs the carry of the ones, so the model must read four digits at fixed
#    positions and combine them; a random model scores ~0 (checked), a broken gradient, mask or
#    optimizer stays far below 95%. Measured: 200/200 in ~24 s (Release, 2 threads), ~40 s under
#    ASan; 5 seeds gave 197-200/200 (docs/training.md).
# 2. Copying: "say abcd: " -> "abcd" for random 4-letter words (500 train, 100 held out): an
#    induction pattern, cheap (2 layers, 200 steps).
set -u
DSM=${DSM:?set by ctest}
T=$(mktemp -d /tmp/dsm-train-learn.XXXXXX)
trap 'rm -rf "$T"' EXIT
. "$(dirname "$0")/lib_check.sh"
export OMP_NUM_THREADS=2

# score GOLD OUT.json: count of requests whose generated text equals line (request + 1) of GOLD.
# `dsm generate --json` writes completions as they finish, so they are matched by "request".
score() {
  awk 'NR == FNR { gold[FNR - 1] = $0; next }
       match($0, /"request":[0-9]+/) {
         r = substr($0, RSTART + 10, RLENGTH - 10); t = "";
         if (match($0, /"text":"[^"]*"/)) t = substr($0, RSTART + 8, RLENGTH - 9);
         if (!(r in seen) && (r in gold) && t == gold[r]) n++; seen[r] = 1 }
       END { print n + 0 }' "$1" "$2"
}
# first N outputs in request order, for failure messages
firsts() {
  sed -n 's/.*"request":\([0-9]*\),.*"text":"\([^"]*\)".*/\1 \2/p' "$1" | sort -n | head -"$2" | cut -d' ' -f2- | tr '\n' ' '
}

# ---- 1. 2-digit addition ----
awk 'BEGIN { srand(7); n = 0;
       for (a = 10; a < 100; a++) for (b = 10; b < 100; b++) p[n++] = a "+" b;
       for (i = n - 1; i > 0; i--) { j = int(rand() * (i + 1)); t = p[i]; p[i] = p[j]; p[j] = t }
       for (i = 0; i < n; i++) print p[i] }' > "$T/pairs"
head -7900 "$T/pairs" | awk -F+ '{ printf("{\"prompt\": \"%s+%s=\", \"response\": \"%d\"}\n", $1, $2, $1 + $2) }' > "$T/add.jsonl"
tail -200 "$T/pairs" > "$T/held"
awk -F+ '{ printf("{\"prompt\": \"%s+%s=\"}\n", $1, $2) }' "$T/held" > "$T/add_test.jsonl"
awk -F+ '{ print $1 + $2 }' "$T/held" > "$T/add_gold"
if [ "$(sort "$T/pairs" | uniq | wc -l)" -eq 8100 ] && [ -z "$(head -7900 "$T/pairs" | sort | comm -12 - <(sort "$T/held"))" ]; then
  ok "8100 distinct pairs, train and held-out disjoint"
else
  bad "the addition data is not 8100 distinct pairs split disjointly"
fi

"$DSM" model init --preset tiny --layers 4 --ffn 256 --seed 5 --out "$T/am" 2>/dev/null || bad "model init (addition)"
"$DSM" generate --model "$T/am" --prompts "$T/add_test.jsonl" --temperature 0 --max-tokens 5 --json > "$T/add0.json" 2>"$T/gerr" ||
  bad "generate (untrained): $(tail -2 "$T/gerr")"
right0=$(score "$T/add_gold" "$T/add0.json")
[ "$right0" -le 10 ] && ok "untrained model: $right0/200 exact (the check discriminates)" || bad "untrained model already scores $right0/200"

start=$(date +%s.%N)
if "$DSM" train sft --model "$T/am" --data "$T/add.jsonl" --out "$T/arun" --steps 1200 --batch-size 32 --lr 1e-3 \
     --warmup-steps 50 --adam-beta2 0.99 --max-len 16 --seed 5 --quiet 2>"$T/err"; then ok "train (addition)"
else bad "train (addition): $(tail -3 "$T/err")"; fi
train_s=$(awk -v s="$start" -v e="$(date +%s.%N)" 'BEGIN { printf("%.1f", e - s) }')
"$DSM" generate --model "$T/arun" --prompts "$T/add_test.jsonl" --temperature 0 --max-tokens 5 --json > "$T/add.json" 2>"$T/gerr" ||
  bad "generate (addition): $(tail -2 "$T/gerr")"
right=$(score "$T/add_gold" "$T/add.json")
loss=$(tail -1 "$T/arun/metrics.jsonl" 2>/dev/null | sed -n 's/.*"loss": \([0-9.e+-]*\).*/\1/p')
echo "addition: exact match $right / 200 held-out prompts; 1200 steps in $train_s s; last train loss ${loss:-?}"
[ "$right" -ge 190 ] && ok "learned 2-digit addition ($right/200 exact)" ||
  bad "addition: only $right/200 exact (first outputs: $(firsts "$T/add.json" 5); gold: $(head -5 "$T/add_gold" | tr '\n' ' '))"

# ---- 2. copying 4-letter words ----
# 600 distinct words from a fixed awk generator; the last 100 are held out
awk 'BEGIN { srand(4); n = 0;
       while (n < 600) { w = ""; for (k = 0; k < 4; k++) w = w sprintf("%c", 97 + int(rand() * 26));
                         if (!(w in seen)) { seen[w] = 1; word[n++] = w } }
       for (i = 0; i < 600; i++) print word[i] }' > "$T/words"
head -500 "$T/words" | awk '{ printf("{\"prompt\": \"say %s: \", \"response\": \"%s\"}\n", $1, $1) }' > "$T/copy.jsonl"
tail -100 "$T/words" > "$T/copy_gold"
awk '{ printf("{\"prompt\": \"say %s: \"}\n", $1) }' "$T/copy_gold" > "$T/copy_test.jsonl"

"$DSM" model init --preset tiny --layers 2 --seed 5 --out "$T/cm" 2>/dev/null || bad "model init (copy)"
start=$(date +%s.%N)
if "$DSM" train sft --model "$T/cm" --data "$T/copy.jsonl" --out "$T/crun" --steps 200 --batch-size 16 --lr 3e-3 \
     --warmup-steps 10 --max-len 32 --seed 1 --quiet 2>"$T/err"; then ok "train (copy)"; else bad "train (copy): $(tail -3 "$T/err")"; fi
train_s=$(awk -v s="$start" -v e="$(date +%s.%N)" 'BEGIN { printf("%.1f", e - s) }')
"$DSM" generate --model "$T/crun" --prompts "$T/copy_test.jsonl" --temperature 0 --max-tokens 8 --json > "$T/copy.json" 2>"$T/gerr" ||
  bad "generate (copy): $(tail -2 "$T/gerr")"
right=$(score "$T/copy_gold" "$T/copy.json")
echo "copy: exact match $right / 100 held-out prompts; 200 steps in $train_s s"
[ "$right" -ge 95 ] && ok "learned to copy ($right/100 exact)" || bad "copy: only $right/100 exact (first outputs: $(firsts "$T/copy.json" 3))"
check_done
