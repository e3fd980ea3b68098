#!/usr/bin/env bash
# test_train_dp.sh - data-parallel SFT (`dsm train sft --dp N`, common/dist.h, shm transport).
#   1. two ranks with batch 4 train the same model as one process with batch 4 x 2 accumulated
#      micro-batches (the same sequences in every step): the same losses and gradient norms,
#      weights within float rounding of each other, and both ranks' weights equal bit for bit
#      after every step (--dp-check-every 1: the run fails otherwise);
#   2. the weight check can fail: two ranks started by hand with different learning rates stop
#      at the first step with a learning rate above 0, naming both hashes;
#   3. a rank that never comes: the other stops after --dp-timeout naming it; a stale
#      rendezvous file, bad flags, nccl without a GPU: clear errors.
set -u
DSM=${DSM:?set by ctest}
T=$(mktemp -d /tmp/dsm-train-dp.XXXXXX)
trap 'rm -rf "$T"' EXIT
. "$(dirname "$0")/lib_check.sh"

"$DSM" synth sft --role generator --n 96 --difficulty 1..1 --messages >"$T/d.jsonl" &&
  "$DSM" model init --preset tiny --seed 3 --out "$T/m" 2>/dev/null || { bad "setup"; check_done; exit 1; }
C=(--model "$T/m" --data "$T/d.jsonl" --lr 3e-3 --warmup-steps 2 --steps 12 --batch-size 4 --max-len 256 --seed 5 --quiet)

# ---- 1. two ranks = one process with two accumulated micro-batches ---------------------------------
"$DSM" train sft "${C[@]}" --grad-accum 2 --threads 2 --out "$T/one" 2>"$T/one.err" || bad "single process: $(tail -3 "$T/one.err")"
if "$DSM" train sft "${C[@]}" --dp 2 --dp-check-every 1 --out "$T/two" 2>"$T/two.err"; then ok "--dp 2 ran (weights compared after every step)"
else bad "--dp 2: $(tail -5 "$T/two.err")"; fi
grep -q "data parallelism: 2 ranks on this machine, 1 thread(s) each" "$T/two.err" && ok "the launcher split the threads" || bad "launcher line: $(head -3 "$T/two.err")"
field() { sed -n 's/.*"'"$2"'": \([0-9.e+-]*\).*/\1/p' "$1" | awk '{printf "%.4f\n", $1}'; }
if [ -s "$T/two/metrics.jsonl" ] && [ "$(wc -l <"$T/two/metrics.jsonl")" = 12 ] &&
   [ "$(field "$T/one/metrics.jsonl" loss)" = "$(field "$T/two/metrics.jsonl" loss)" ] &&
   [ "$(field "$T/one/metrics.jsonl" grad_norm)" = "$(field "$T/two/metrics.jsonl" grad_norm)" ]; then
  ok "12 steps: the same loss and gradient norm at every step (4 decimals)"
else bad "metrics differ: $(paste -d' ' <(field "$T/one/metrics.jsonl" loss) <(field "$T/two/metrics.jsonl" loss) | head -12 | tr '\n' ';')"; fi
# weights: within rounding of each other (the sum of two gradients vs one accumulated in place), moved by training
cat >"$T/cmp.py" <<'EOF'
import array, json, struct, sys
def load(p):
    b = open(p, 'rb').read(); n = struct.unpack('<Q', b[:8])[0]; h = json.loads(b[8:8 + n]); out = {}
    for k, v in h.items():
        if k != '__metadata__':
            s, e = v['data_offsets']; a = array.array('f'); a.frombytes(b[8 + n + s:8 + n + e]); out[k] = a
    return out
a, b = load(sys.argv[1]), load(sys.argv[2])
print(max(abs(x - y) for k in a for x, y in zip(a[k], b[k])))
EOF
d12=$(python3 "$T/cmp.py" "$T/one/model.safetensors" "$T/two/model.safetensors")
moved=$(python3 "$T/cmp.py" "$T/one/model.safetensors" "$T/m/model.safetensors")
awk -v d="$d12" -v m="$moved" 'BEGIN { exit !(d < 2e-6 && m > 1e-3) }' && ok "weights within $d12 of the single process's (training moved them by $moved)" ||
  bad "weights: diff $d12, moved $moved"
[ -z "$(ls /dev/shm 2>/dev/null | grep dsm-dp-)" ] && ok "no rendezvous file left" || bad "left in /dev/shm: $(ls /dev/shm | grep dsm-dp-)"

# ---- 2. the weight check catches ranks that diverge ----------------------------------------------
R="$T/rdv"
rank() { "$DSM" train sft "${C[@]}" --steps 3 --threads 1 --dp-world 2 --dp-rendezvous "$R" --dp-check-every 1 --dp-timeout 60 "$@"; }
rank --dp-rank 0 --out "$T/div0" 2>"$T/div0.err" & p0=$!
rank --dp-rank 1 --out "$T/div1" --lr 1e-2 2>"$T/div1.err"; r1=$?
wait $p0; r0=$?
if [ $r0 -ne 0 ] && [ $r1 -ne 0 ] && grep -q "the ranks' weights after step 2 differ (0: [0-9a-f]*, 1: [0-9a-f]*)" "$T/div0.err"; then
  ok "ranks with different learning rates stop at step 2 (step 1 has lr 0 in warmup), both hashes named"
else bad "divergence not caught: $r0 $r1 $(tail -2 "$T/div0.err")"; fi

# ---- 3. failures ------------------------------------------------------------------------------------
expect_fail "a rank that never comes" 3 'rank 0 waited 2 s at joining for rank\(s\) 1' -- \
  "$DSM" train sft "${C[@]}" --out "$T/alone" --dp-world 2 --dp-rank 0 --dp-rendezvous "$T/alone.rdv" --dp-timeout 2
expect_fail "rank 1 without rank 0" 3 'rank 1 waited 1 s for rank 0 to create' -- \
  "$DSM" train sft "${C[@]}" --out "$T/alone1" --dp-world 2 --dp-rank 1 --dp-rendezvous "$T/none.rdv" --dp-timeout 1
: >"$T/stale.rdv"
expect_fail "a stale rendezvous file" 3 'rendezvous file .*stale.rdv exists' -- \
  "$DSM" train sft "${C[@]}" --out "$T/st" --dp-world 2 --dp-rank 0 --dp-rendezvous "$T/stale.rdv" --dp-timeout 2
expect_fail "--dp-world without a rendezvous" 2 'needs --dp-rank in 0..1 and --dp-rendezvous' -- \
  "$DSM" train sft "${C[@]}" --out "$T/x" --dp-world 2 --dp-rank 0
expect_fail "rank out of range" 2 'needs --dp-rank in 0..1' -- \
  "$DSM" train sft "${C[@]}" --out "$T/x" --dp-world 2 --dp-rank 2 --dp-rendezvous "$T/r2"
expect_fail "--dp too large" 2 '--dp and --dp-world must be in 0..64' -- "$DSM" train sft "${C[@]}" --out "$T/x" --dp 65
expect_fail "unknown transport" 2 'transport must be shm or nccl' -- \
  "$DSM" train sft "${C[@]}" --out "$T/x" --dp-world 2 --dp-rank 0 --dp-rendezvous "$T/r3" --dp-transport tcp
expect_fail "nccl on the CPU" 2 'nccl transport needs the CUDA backend with NCCL' -- \
  "$DSM" train sft "${C[@]}" --out "$T/x" --dp-world 2 --dp-rank 0 --dp-rendezvous "$T/r4" --dp-transport nccl
check_done
