#!/usr/bin/env bash
# run.sh - the main job on the embedded default. Today: build, create the tiny model (byte
# tokenizer, ~0.8M parameters) under $DSM_HOME (default ./var), check it, run a forward pass and a
# short generation. Grows into `dsm loop` as the training loop lands.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/build.sh >/dev/null
home=${DSM_HOME:-var}
model="$home/models/tiny-llama"
dsm=build/dsm
if [ ! -f "$model/model.safetensors" ]; then
  $dsm model init --arch llama --preset tiny --seed 1 --out "$model"
fi
echo "== model" && $dsm model info --model "$model" --check
echo "== backend" && $dsm backend
echo "== next-token distribution after 'Show that 37 + 48 - 19 = 66.'"
ids=$(printf 'Show that 37 + 48 - 19 = 66.' | od -An -tu1 | tr -s ' \n' ',' | sed 's/^,//; s/,$//')
$dsm logits --model "$model" --ids "256,$ids"
echo "== generation (an untrained model: expect noise)"
$dsm generate --model "$model" --prompt "Show that 37 + 48 - 19 = 66." --max-tokens 32 --seed 1 | od -c | head -4
