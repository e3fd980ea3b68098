#!/usr/bin/env bash
# test_train_sft.sh - dsm train sft end to end on a tiny random model: the loss falls, the outputs
# are a loadable HF model plus checkpoints and a metrics file; 10 steps + resume + 10 steps gives
# bit-identical weights to 20 steps; a leftover temporary checkpoint (what kill -9 during a save
# leaves) is ignored by --resume auto; bad records are skipped and counted; bad flags and
# unusable data fail with a clear message and exit 2.
set -u
DSM=${DSM:?set by ctest}
T=$(mktemp -d /tmp/dsm-train-cli.XXXXXX)
trap 'rm -rf "$T"' EXIT
. "$(dirname "$0")/lib_check.sh"
export OMP_NUM_THREADS=2

"$DSM" model init --preset tiny --layers 2 --seed 5 --out "$T/m" 2>/dev/null || { bad "model init"; check_done; exit 1; }
# a fixed-format task: the response repeats a 4-letter word from the prompt
awk 'BEGIN { srand(7); for (i = 0; i < 200; i++) { w = "";
       for (k = 0; k < 4; k++) w = w sprintf("%c", 97 + int(rand() * 26));
       printf("{\"prompt\": \"say %s: \", \"response\": \"%s\"}\n", w, w) } }' > "$T/d.jsonl"
common=(--model "$T/m" --data "$T/d.jsonl" --lr 3e-3 --batch-size 8 --max-len 32 --warmup-steps 2 --threads 2 --seed 3)

# ---- training lowers the loss; outputs exist and load ----
if "$DSM" train sft "${common[@]}" --out "$T/run" --steps 40 --eval-split 20 --eval-every 20 2>"$T/err"; then
  ok "train sft runs"
else bad "train sft: $(tail -3 "$T/err")"; fi
first=$(grep -m1 '"loss"' "$T/run/metrics.jsonl" | sed 's/.*"loss": \([0-9.]*\).*/\1/')
last=$(grep '"loss"' "$T/run/metrics.jsonl" | tail -1 | sed 's/.*"loss": \([0-9.]*\).*/\1/')
awk -v a="$first" -v b="$last" 'BEGIN { exit !(a > 5.0 && b < 0.6 * a) }' && ok "loss falls ($first -> $last)" || bad "loss $first -> $last"
grep -q '"eval_loss"' "$T/run/metrics.jsonl" && ok "eval loss recorded" || bad "no eval loss in metrics"
[ "$(grep -c '"step"' "$T/run/metrics.jsonl")" -ge 40 ] && ok "one metrics line per step" || bad "metrics lines"
for f in config.json model.safetensors tokenizer.json checkpoint-40/model.safetensors checkpoint-40/optimizer.safetensors checkpoint-40/trainer_state.json; do
  [ -s "$T/run/$f" ] && ok "wrote $f" || bad "missing $f"
done
"$DSM" model info --model "$T/run" --check >/dev/null 2>"$T/err" && ok "final model loads" || bad "final model: $(cat "$T/err")"
"$DSM" logits --model "$T/run/checkpoint-40" --ids 256,115,97,121 >/dev/null 2>&1 && ok "checkpoint loads" || bad "checkpoint does not load"

# ---- resume: 10 + 10 steps == 20 steps, bit for bit ----
"$DSM" train sft "${common[@]}" --out "$T/full" --steps 20 --quiet 2>/dev/null
"$DSM" train sft "${common[@]}" --out "$T/part" --steps 20 --stop-after 10 --quiet 2>/dev/null
[ -d "$T/part/checkpoint-10" ] && [ ! -e "$T/part/model.safetensors" ] && ok "stop-after leaves checkpoint-10" || bad "stop-after"
# what a kill -9 in the middle of a later save leaves behind: a hidden temporary directory
mkdir -p "$T/part/.checkpoint-20.tmp.99999" && echo partial > "$T/part/.checkpoint-20.tmp.99999/model.safetensors"
"$DSM" train sft "${common[@]}" --out "$T/part" --steps 20 --resume auto --quiet 2>"$T/err" || bad "resume: $(tail -2 "$T/err")"
grep -q "resuming from .*checkpoint-10" "$T/err" && ok "resume picks checkpoint-10" || bad "resume source: $(cat "$T/err")"
cmp -s "$T/full/model.safetensors" "$T/part/model.safetensors" && ok "resumed weights are bit-identical" || bad "resumed weights differ"
cmp -s "$T/full/checkpoint-20/optimizer.safetensors" "$T/part/checkpoint-20/optimizer.safetensors" && ok "optimizer state identical" || bad "optimizer state differs"
[ "$(grep -c '"loss"' "$T/part/metrics.jsonl")" = 20 ] && ok "metrics appended on resume" || bad "metrics after resume"

# ---- recomputation and SGD/constant run ----
"$DSM" train sft "${common[@]}" --out "$T/rc" --steps 20 --recompute --quiet 2>/dev/null
cmp -s "$T/full/model.safetensors" "$T/rc/model.safetensors" && ok "recompute gives identical weights" || bad "recompute differs"
"$DSM" train sft "${common[@]}" --out "$T/sgd" --steps 5 --optim sgd --schedule constant --lr 0.1 --grad-accum 2 --quiet 2>"$T/err" &&
  [ ! -e "$T/sgd/checkpoint-5/optimizer.safetensors" ] && ok "sgd + accumulation" || bad "sgd: $(tail -2 "$T/err")"

# ---- LoRA: PEFT files, loss falls, resume is bit-identical, base weights untouched ----
lcommon=("${common[@]}" --lora r=4,alpha=8,targets=q_proj+v_proj+o_proj+gate_proj+up_proj+down_proj+k_proj --lr 1e-2)
if "$DSM" train sft "${lcommon[@]}" --out "$T/lora" --steps 20 --quiet 2>"$T/err"; then ok "lora train runs"; else bad "lora: $(tail -2 "$T/err")"; fi
grep -q "LoRA r=4 alpha=8" "$T/err" && ok "lora logged" || bad "lora log"
for f in adapter_config.json adapter_model.safetensors checkpoint-20/adapter_model.safetensors checkpoint-20/optimizer.safetensors; do
  [ -s "$T/lora/$f" ] && ok "lora wrote $f" || bad "lora missing $f"
done
[ ! -e "$T/lora/model.safetensors" ] && ok "no full weights for an adapter run" || bad "adapter run wrote model.safetensors"
grep -q '"peft_type": "LORA"' "$T/lora/adapter_config.json" && grep -q '"lora_alpha": 8' "$T/lora/adapter_config.json" && ok "PEFT config" || bad "PEFT config: $(cat "$T/lora/adapter_config.json")"
grep -q 'base_model.model.model.layers.1.mlp.down_proj.lora_B.weight' "$T/lora/adapter_model.safetensors" && ok "PEFT tensor names" || bad "PEFT tensor names"
first=$(grep -m1 '"loss"' "$T/lora/metrics.jsonl" | sed 's/.*"loss": \([0-9.]*\).*/\1/')
last=$(grep '"loss"' "$T/lora/metrics.jsonl" | tail -1 | sed 's/.*"loss": \([0-9.]*\).*/\1/')
awk -v a="$first" -v b="$last" 'BEGIN { exit !(b < 0.95 * a) }' && ok "lora loss falls ($first -> $last)" || bad "lora loss $first -> $last"
"$DSM" train sft "${lcommon[@]}" --out "$T/lpart" --steps 20 --stop-after 10 --quiet 2>/dev/null
"$DSM" train sft "${lcommon[@]}" --out "$T/lpart" --steps 20 --resume auto --quiet 2>/dev/null
cmp -s "$T/lora/adapter_model.safetensors" "$T/lpart/adapter_model.safetensors" && ok "lora resume bit-identical" || bad "lora resume differs"
# merge: the merged model gives the adapted model's logits (the adapter run's final loss is
# reproduced by a 1-step eval-only pass: compare top tokens of both through dsm logits)
if "$DSM" train merge-lora --model "$T/m" --adapter "$T/lora" --out "$T/merged" 2>"$T/err"; then ok "merge-lora"; else bad "merge-lora: $(cat "$T/err")"; fi
"$DSM" model info --model "$T/merged" --check >/dev/null 2>&1 && ok "merged model loads" || bad "merged model"
cmp -s "$T/m/model.safetensors" "$T/merged/model.safetensors" && bad "merge changed nothing" || ok "merge changed the weights"
expect_fail "merge mismatched adapter" 2 "another model" -- "$DSM" train merge-lora --model "$DSM_SOURCE_DIR/tests/fixtures/models/llama_mha_f32" --adapter "$T/lora" --out "$T/x"
"$DSM" train sft "${lcommon[@]}" --out "$T/lbf" --steps 3 --base-dtype bf16 --quiet 2>"$T/err" && [ -s "$T/lbf/adapter_model.safetensors" ] &&
  ok "lora on bf16 base weights" || bad "lora bf16: $(tail -2 "$T/err")"
expect_fail "bf16 needs lora" 2 "needs --lora" -- "$DSM" train sft --model "$T/m" --data "$T/d.jsonl" --out "$T/x" --base-dtype bf16
# with dropout: runs, and resume still reproduces the same masks
dcommon=("${common[@]}" --lora r=4,alpha=8,dropout=0.1 --lr 1e-2)
"$DSM" train sft "${dcommon[@]}" --out "$T/ld" --steps 8 --quiet 2>/dev/null
"$DSM" train sft "${dcommon[@]}" --out "$T/ldp" --steps 8 --stop-after 4 --quiet 2>/dev/null
"$DSM" train sft "${dcommon[@]}" --out "$T/ldp" --steps 8 --resume auto --quiet 2>/dev/null
[ -s "$T/ld/adapter_model.safetensors" ] && cmp -s "$T/ld/adapter_model.safetensors" "$T/ldp/adapter_model.safetensors" &&
  ok "lora dropout resume bit-identical" || bad "lora dropout resume"
"$DSM" train sft "${common[@]}" --lora r=4,alpha=8 --lr 1e-2 --out "$T/l8" --steps 8 --quiet 2>/dev/null
[ -s "$T/l8/adapter_model.safetensors" ] && ! cmp -s "$T/ld/adapter_model.safetensors" "$T/l8/adapter_model.safetensors" &&
  ok "dropout changes training" || bad "dropout had no effect"

# ---- bad records are skipped and counted ----
{ head -20 "$T/d.jsonl"; echo '{"prompt": "x", "response": ""}'; echo 'not json'; echo '{"foo": 1}';
  echo '{"input_ids": [1, 2, 99999]}'; echo '{"input_ids": [256, 97, 98, 99], "labels": [-100, -100, 98, 99]}'; } > "$T/bad.jsonl"
"$DSM" train sft --model "$T/m" --data "$T/bad.jsonl" --out "$T/b" --steps 1 --quiet 2>"$T/err" && ok "mixed data trains" || bad "mixed data"
grep -q "21 records used of 25 lines.*1 invalid JSON, 1 unknown form, 1 empty response, 1 bad ids" "$T/err" && ok "bad records counted" ||
  bad "counts: $(grep records "$T/err")"
grep -q "bad.jsonl:22: not a JSON object" "$T/err" && ok "bad line named" || bad "bad line not named"
# chat records: loss on assistant turns only
printf '%s\n' '{"messages": [{"role": "system", "content": "be brief"}, {"role": "user", "content": "hi"}, {"role": "assistant", "content": "hello"}]}' \
  '{"messages": [{"role": "user", "content": "2+2?"}, {"role": "assistant", "content": "4"}, {"role": "user", "content": "3+3?"}, {"role": "assistant", "content": "6"}]}' \
  '{"messages": [{"role": "user", "content": "no answer"}]}' '{"messages": [{"role": "robot", "content": "x"}]}' > "$T/chat.jsonl"
"$DSM" train sft --model "$T/m" --data "$T/chat.jsonl" --out "$T/chat" --steps 2 --quiet 2>"$T/err" && ok "chat records train" || bad "chat: $(tail -2 "$T/err")"
grep -q "2 records used of 4 lines.*1 unknown form, 1 empty response" "$T/err" && ok "chat records counted" || bad "chat counts: $(grep records "$T/err")"
# truncation is counted
"$DSM" train sft --model "$T/m" --data "$T/d.jsonl" --out "$T/tr" --steps 1 --max-len 8 --quiet 2>"$T/err"
grep -qE "[1-9][0-9]* truncated" "$T/err" && ok "truncation counted" || bad "truncation: $(grep records "$T/err")"

# ---- failures ----
printf 'nope\n{"prompt": "a", "response": ""}\n' > "$T/allbad.jsonl"
expect_fail "no usable record" 2 "no usable training record" -- "$DSM" train sft --model "$T/m" --data "$T/allbad.jsonl" --out "$T/x"
expect_fail "missing data file" 2 "cannot open training data" -- "$DSM" train sft --model "$T/m" --data "$T/none.jsonl" --out "$T/x"
expect_fail "missing --out" 2 "required" -- "$DSM" train sft --model "$T/m" --data "$T/d.jsonl"
# activations beyond what the machine has: refused before anything is allocated, with the numbers
expect_fail "activations beyond memory" 3 "training activations for 409600000 rows need [0-9.]+ MB, but cpu has [0-9.]+ MB free of [0-9.]+ MB" -- \
  "$DSM" train sft --model "$T/m" --data "$T/d.jsonl" --out "$T/x" --batch-size 100000 --max-len 4096
"$DSM" train sft --model "$T/m" --data "$T/d.jsonl" --out "$T/mem" --steps 1 --batch-size 2 --max-len 64 2>"$T/mem.err" &&
  grep -qE "memory: weights [0-9.]+ MB \+ gradients [0-9.]+ MB \+ optimizer [0-9.]+ MB \+ activations [0-9.]+ MB = [0-9.]+ MB; cpu has" "$T/mem.err" &&
  ok "the memory estimate is printed before training" || bad "memory estimate: $(grep memory "$T/mem.err")"
expect_fail "bad optimizer" 2 "adamw or sgd" -- "$DSM" train sft --model "$T/m" --data "$T/d.jsonl" --out "$T/x" --optim adam
expect_fail "bad lr" 2 "out-of-range" -- "$DSM" train sft --model "$T/m" --data "$T/d.jsonl" --out "$T/x" --lr -1
expect_fail "max-len too long" 2 "max_position_embeddings" -- "$DSM" train sft --model "$T/m" --data "$T/d.jsonl" --out "$T/x" --max-len 100000
expect_fail "no model" 2 "config.json" -- "$DSM" train sft --model "$T/nomodel" --data "$T/d.jsonl" --out "$T/x"
expect_fail "resume without checkpoint" 2 "no checkpoint" -- "$DSM" train sft --model "$T/m" --data "$T/d.jsonl" --out "$T/empty" --resume auto
expect_fail "bad lora spec" 2 "LoRA target 'qq_proj'" -- "$DSM" train sft --model "$T/m" --data "$T/d.jsonl" --out "$T/x" --lora r=8,targets=q_proj+qq_proj
expect_fail "lora dropout range" 2 "dropout must be in" -- "$DSM" train sft --model "$T/m" --data "$T/d.jsonl" --out "$T/x" --lora r=8,dropout=1.5
expect_fail "unknown subcommand" 2 "expected 'sft', 'grpo' or 'merge-lora'" -- "$DSM" train dpo
check_done
