#!/usr/bin/env bash
# test_model_cli.sh - dsm model init/info, dsm logits and dsm generate from the command line, and
# every kind of bad input the foundation promises a clear error for (non-zero exit, a message that
# names the file, tensor or key, and never a crash).
set -u
DSM=${DSM:?set by ctest}
T=$(mktemp -d /tmp/dsm-model-cli.XXXXXX)
trap 'rm -rf "$T"' EXIT
. "$(dirname "$0")/lib_check.sh"

# ---- happy paths ----
for arch in llama qwen2; do
  for dt in f32 bf16 f16; do
    d="$T/$arch-$dt"
    if "$DSM" model init --arch $arch --dtype $dt --preset tiny --seed 7 --out "$d" 2>"$T/err" &&
       "$DSM" model info --model "$d" --check >"$T/info" && grep -q "\"arch\": \"$arch\"" "$T/info"; then
      ok "init+info $arch $dt"
    else bad "init+info $arch $dt: $(cat "$T/err")"; fi
  done
done
M="$T/llama-f32"
for f in config.json generation_config.json model.safetensors tokenizer.json tokenizer_config.json; do
  [ -s "$M/$f" ] && ok "init wrote $f" || bad "init did not write $f"
done

# logits to a file: exactly n_ids x vocab float32
"$DSM" logits --model "$M" --ids 256,10,20,30,263 --out "$T/l.f32" && size=$(stat -c %s "$T/l.f32")
[ "${size:-0}" = $((5 * 264 * 4)) ] && ok "logits file size" || bad "logits file size ${size:-none}"
# the same seed gives the same model bytes; another seed does not
"$DSM" model init --seed 7 --out "$T/again" 2>/dev/null
cmp -s "$M/model.safetensors" "$T/again/model.safetensors" && ok "init is reproducible" || bad "init not reproducible"
"$DSM" model init --seed 8 --out "$T/other" 2>/dev/null
cmp -s "$M/model.safetensors" "$T/other/model.safetensors" && bad "different seeds gave equal weights" || ok "seed changes weights"
# top-10 JSON on stdout; cpu and ref backends agree on the argmax
a=$("$DSM" logits --model "$M" --ids 256,1,2,3 --device cpu | sed 's/.*"top": \[{"id": \([0-9]*\).*/\1/')
b=$("$DSM" logits --model "$M" --ids 256,1,2,3 --device ref | sed 's/.*"top": \[{"id": \([0-9]*\).*/\1/')
[ -n "$a" ] && [ "$a" = "$b" ] && ok "cpu and ref agree on argmax ($a)" || bad "cpu argmax '$a' vs ref '$b'"
# bf16 weights on the CPU give the same argmax as f32 on this random model (differences are ~1e-3)
c=$("$DSM" logits --model "$M" --ids 256,1,2,3 --weights bf16 | sed 's/.*"top": \[{"id": \([0-9]*\).*/\1/')
[ "$a" = "$c" ] && ok "bf16 compute path argmax" || bad "bf16 argmax '$c' vs f32 '$a'"
# greedy generation is deterministic; seeded sampling reproduces
g1=$("$DSM" generate --model "$M" --prompt "12 + 30 =" --temperature 0 --max-tokens 12 2>/dev/null | od -An -tx1)
g2=$("$DSM" generate --model "$M" --prompt "12 + 30 =" --temperature 0 --max-tokens 12 2>/dev/null | od -An -tx1)
[ -n "$g1" ] && [ "$g1" = "$g2" ] && ok "greedy generate deterministic" || bad "greedy generate differs"
s1=$("$DSM" generate --model "$M" --prompt-ids 256,49,50 --seed 5 --max-tokens 12 2>/dev/null | od -An -tx1)
s2=$("$DSM" generate --model "$M" --prompt-ids 256,49,50 --seed 5 --max-tokens 12 2>/dev/null | od -An -tx1)
[ "$s1" = "$s2" ] && ok "seeded generate reproducible" || bad "seeded generate differs"
"$DSM" generate --model "$M" --prompt-ids 256 --max-tokens 3 --ignore-eos --json 2>"$T/err" >"$T/out"
grep -q '"finish_reason":"length"' "$T/out" && grep -q "1 completions, 3 new tokens" "$T/err" &&
  ok "generate finish reason" || bad "generate finish: $(cat "$T/out" "$T/err")"

# ---- bad input ----
expect_fail "missing model dir" 2 "nope/config.json" -- "$DSM" logits --model "$T/nope" --ids 1
expect_fail "unknown flag" 2 "unknown option --frobnicate" -- "$DSM" logits --frobnicate
expect_fail "missing --ids" 2 "--ids is required" -- "$DSM" logits --model "$M"
expect_fail "bad id list" 2 "element 2" -- "$DSM" logits --model "$M" --ids 1,x,3
expect_fail "id out of range" 2 "token 1 \(id 264\) is out of range for vocab_size 264" -- "$DSM" logits --model "$M" --ids 1,264
expect_fail "unknown preset" 2 "unknown preset 'huge'" -- "$DSM" model init --preset huge --out "$T/x"
expect_fail "unknown device" 2 "unknown device 'tpu'" -- "$DSM" logits --model "$M" --ids 1 --device tpu
expect_fail "cuda unavailable" 3 "CUDA" -- "$DSM" logits --model "$M" --ids 1 --device cuda

mk() { rm -rf "$T/$1"; cp -r "$M" "$T/$1"; echo "$T/$1"; }
d=$(mk trunc); truncate -s 1000 "$d/model.safetensors"
expect_fail "truncated safetensors" 2 "model.safetensors: header length .* exceeds|model.safetensors.*outside" -- "$DSM" logits --model "$d" --ids 1
d=$(mk tiny); printf 'abc' >"$d/model.safetensors"
expect_fail "3-byte safetensors" 2 "model.safetensors: truncated" -- "$DSM" logits --model "$d" --ids 1
d=$(mk nost); rm "$d/model.safetensors"
expect_fail "no weights" 2 "no model.safetensors or model.safetensors.index.json" -- "$DSM" logits --model "$d" --ids 1
d=$(mk offs); size=$(stat -c %s "$d/model.safetensors"); truncate -s $((size - 4)) "$d/model.safetensors"
expect_fail "offsets outside data" 2 "lie outside the data region" -- "$DSM" logits --model "$d" --ids 1
d=$(mk shape); sed -i 's/"intermediate_size": 352/"intermediate_size": 350/' "$d/config.json"
expect_fail "shape mismatch" 2 "model.layers.0.mlp.gate_proj.weight' has shape \[352, 128\] but config.json implies \[350, 128\]" -- "$DSM" logits --model "$d" --ids 1
d=$(mk arch); sed -i 's/LlamaForCausalLM/MistralForCausalLM/' "$d/config.json"
expect_fail "unknown architecture" 2 "architecture 'MistralForCausalLM' is not supported" -- "$DSM" logits --model "$d" --ids 1
d=$(mk yarn); sed -i 's/"rope_scaling": null/"rope_scaling": {"type": "yarn", "factor": 4.0}/' "$d/config.json"
expect_fail "unsupported rope_scaling" 2 "rope_scaling type 'yarn' is not supported" -- "$DSM" logits --model "$d" --ids 1
d=$(mk act); sed -i 's/"hidden_act": "silu"/"hidden_act": "gelu"/' "$d/config.json"
expect_fail "unsupported hidden_act" 2 "hidden_act 'gelu'" -- "$DSM" logits --model "$d" --ids 1
d=$(mk json); printf '{"architectures": ["LlamaForCausalLM"], "hidden_size": ' >"$d/config.json"
expect_fail "malformed config" 2 "config.json:1:.*invalid JSON" -- "$DSM" logits --model "$d" --ids 1
d=$(mk key); sed -i '/"num_hidden_layers"/d' "$d/config.json"
expect_fail "missing config key" 2 "missing required key 'num_hidden_layers'" -- "$DSM" logits --model "$d" --ids 1
d=$(mk heads); sed -i 's/"num_key_value_heads": 2/"num_key_value_heads": 3/' "$d/config.json"
expect_fail "bad head counts" 2 "not a multiple of num_key_value_heads 3" -- "$DSM" logits --model "$d" --ids 1
d=$(mk dtype); sed -i 's/"torch_dtype": "float32"/"torch_dtype": "int8"/' "$d/config.json"
expect_fail "unsupported torch_dtype" 2 "torch_dtype 'int8'" -- "$DSM" logits --model "$d" --ids 1

check_done
