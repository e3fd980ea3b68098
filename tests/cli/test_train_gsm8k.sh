#!/usr/bin/env bash
# test_train_gsm8k.sh - SFT of a tiny random model (byte tokenizer) on 300 GSM8K records
# (question -> worked answer) lowers the loss on 40 held-out records. The GSM8K file is not in the
# repository: it is read from ../shared/data (or $DSM_DATA_DIR); the test skips (77) without it.
set -u
DSM=${DSM:?set by ctest}
DATA=${DSM_DATA_DIR:-${DSM_SOURCE_DIR:-.}/../shared/data}/gsm8k/test.jsonl
[ -r "$DATA" ] || { echo "SKIP: no $DATA (set DSM_DATA_DIR)"; exit 77; }
command -v python3 >/dev/null || { echo "SKIP: python3 needed to convert the records"; exit 77; }
T=$(mktemp -d /tmp/dsm-train-gsm.XXXXXX)
trap 'rm -rf "$T"' EXIT
. "$(dirname "$0")/lib_check.sh"
export OMP_NUM_THREADS=2

head -300 "$DATA" | python3 -c '
import json, sys
for line in sys.stdin:
    r = json.loads(line)
    print(json.dumps({"prompt": "Question: " + r["question"] + "\nAnswer: ", "response": r["answer"]}))
' > "$T/gsm.jsonl"
[ "$(wc -l < "$T/gsm.jsonl")" = 300 ] && ok "300 records" || bad "conversion"
"$DSM" model init --preset tiny --seed 11 --max-pos 512 --out "$T/m" 2>/dev/null || bad "model init"
if "$DSM" train sft --model "$T/m" --data "$T/gsm.jsonl" --out "$T/run" --steps 24 --batch-size 8 --max-len 384 \
     --lr 3e-3 --warmup-steps 3 --eval-split 40 --eval-every 12 --seed 1 --quiet 2>"$T/err"; then ok "train"; else bad "train: $(tail -3 "$T/err")"; fi
e0=$(grep '"step": 0, "eval_loss"' "$T/run/metrics.jsonl" | sed 's/.*"eval_loss": \([0-9.]*\).*/\1/')
e1=$(grep '"eval_loss"' "$T/run/metrics.jsonl" | tail -1 | sed 's/.*"eval_loss": \([0-9.]*\).*/\1/')
echo "held-out loss: $e0 -> $e1"
awk -v a="${e0:-0}" -v b="${e1:-99}" 'BEGIN { exit !(a > 0 && b < 0.8 * a) }' && ok "held-out loss falls ($e0 -> $e1)" || bad "held-out loss $e0 -> $e1"
grep -q "truncated" "$T/err" && ok "summary line" || bad "no data summary"
check_done
