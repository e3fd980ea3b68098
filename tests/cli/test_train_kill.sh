#!/usr/bin/env bash
# test_train_kill.sh - kill -9 during training and during checkpoint saves, for real.
#
# `dsm train sft --save-every 1` on the tiny preset (806k parameters: a 9.3 MB checkpoint of
# weights + AdamW moments, each file fsynced, so a save takes tens of milliseconds, most of a
# step's time) over 96 records (12 steps an epoch, 30 steps: resumes cross epochs) is killed with
# SIGKILL and resumed with `--resume auto`, over and over:
#   1. KILLS kills while training, in turn during start-up, anywhere in a step, and inside a save
#      (once the run's hidden temporary checkpoint directory exists), each after a random delay;
#   2. a resume without a kill finishes the run;
#   3. KILLS_DONE kills inside the save of a finished run's resume (it re-saves its last
#      checkpoint over the existing one and rewrites the final model: the replace path);
#   4. planted leftovers: a checkpoint moved aside by an interrupted replacement is restored, the
#      temporaries of dead processes are removed, a live process's are kept.
# After every kill: the newest checkpoint-N loads (`dsm model info --check`), its step is N and N
# never goes back; every checkpoint-N that appeared has model and optimizer files byte-identical
# to checkpoint-N of an uninterrupted reference run; older checkpoints are then deleted, so the
# newest is the only one left (a save that lost it could not fall back on an older one); a run
# that got far enough to say where it resumed named exactly that checkpoint. At the end the
# model.safetensors is byte-identical (cmp) to the reference's, and no temporary file or
# directory of the killed runs is left under --out.
set -u
DSM=${DSM:?set by ctest}
T=$(mktemp -d /tmp/dsm-train-kill.XXXXXX)
pid=
trap '[ -n "$pid" ] && kill -9 "$pid" 2>/dev/null; rm -rf "$T"' EXIT
. "$(dirname "$0")/lib_check.sh"
export OMP_NUM_THREADS=2
KILLS=${DSM_KILLS:-14}
KILLS_DONE=4
STEPS=30
RANDOM=${DSM_KILL_SEED:-11}

awk 'BEGIN { for (i = 0; i < 96; i++) printf("{\"prompt\": \"%d+%d=\", \"response\": \"%d\"}\n", 10 + i % 90, 99 - i % 77, 10 + i % 90 + 99 - i % 77) }' > "$T/d.jsonl"
"$DSM" model init --preset tiny --seed 3 --out "$T/m" 2>/dev/null || { bad "model init"; check_done; exit 1; }
# train OUT [FLAGS]: execs dsm, so call it in ( ) or with & (then $! is dsm itself, not a subshell)
train() { exec "$DSM" train sft --model "$T/m" --data "$T/d.jsonl" --out "$1" --steps $STEPS --save-every 1 --batch-size 8 \
            --lr 1e-3 --warmup-steps 5 --threads 2 --seed 9 --quiet "${@:2}"; }
ms() { date +%s%3N; }
md5() { md5sum < "$1" | cut -d' ' -f1; }

# the uninterrupted reference: checksums of every checkpoint, then the checkpoints are dropped
t0=$(ms)
train "$T/ref" 2>"$T/ref.err" &
pid=$!
until [ -d "$T/ref/checkpoint-1" ] || ! kill -0 $pid 2>/dev/null; do sleep 0.005; done
first_ms=$(( $(ms) - t0 ))
wait $pid || { bad "reference run: $(tail -3 "$T/ref.err")"; check_done; exit 1; }
pid=
ref_ms=$(( $(ms) - t0 ))
step_ms=$(( (ref_ms - first_ms) / (STEPS - 1) + 1 ))
declare -A ref_model ref_optim
for n in $(seq 1 $STEPS); do
  ref_model[$n]=$(md5 "$T/ref/checkpoint-$n/model.safetensors")
  ref_optim[$n]=$(md5 "$T/ref/checkpoint-$n/optimizer.safetensors")
  rm -rf "$T/ref/checkpoint-$n"
done
echo "reference: $STEPS steps with a checkpoint after each in $ref_ms ms (start-up to checkpoint-1 $first_ms ms, then $step_ms ms a step)"
ok "reference run"

out="$T/run"
latest=0 during_save=0 finished_runs=0 errors_before=$fails
newest() { ls -d "$out"/checkpoint-* 2>/dev/null | sed 's/.*checkpoint-//' | sort -n | tail -1; }
# run_and_kill K MODE: start a run (resuming when there is a checkpoint) and kill -9 it:
#   start  after a random delay up to the reference's start-up time (loading, the first step)
#   step   once checkpoint-T (T = newest + 1..3, random) is in place, after a random delay up to
#          one step's time: anywhere in the next step, computing or saving
#   save   once the temporary directory of checkpoint-T exists, after a random delay up to one
#          step's time: inside that save, or just after it
# Sets rc; counts the kills that left a save behind.
sleep_ms() { sleep "$(printf '%d.%03d' $(($1 / 1000)) $(($1 % 1000)))"; }
run_and_kill() {
  local k=$1 mode=$2 resume=() target wait_for
  [ "$latest" -gt 0 ] && resume=(--resume auto)
  train "$out" "${resume[@]}" 2>"$T/err.$k" &
  pid=$!
  if [ "$mode" = start ]; then
    sleep_ms $((RANDOM % first_ms))
  else
    target=$((latest + 1 + RANDOM % 3))
    [ "$target" -gt "$STEPS" ] && target=$STEPS
    wait_for="$out/checkpoint-$target"
    [ "$mode" = save ] && wait_for="$out/.checkpoint-$target.tmp.$pid"
    for _ in $(seq 1 3000); do
      [ -e "$wait_for" ] && break
      kill -0 "$pid" 2>/dev/null || break
      sleep 0.002
    done
    sleep_ms $((RANDOM % step_ms))
  fi
  kill -9 "$pid" 2>/dev/null
  wait "$pid" 2>/dev/null; rc=$?
  compgen -G "$out/.checkpoint-*.$pid" >/dev/null && during_save=$((during_save + 1))
  if [ "$rc" -eq 0 ]; then finished_runs=$((finished_runs + 1))
  elif [ "$rc" -ne 137 ]; then bad "kill $k: run exited $rc, not by the kill: $(tail -2 "$T/err.$k")"; fi
  # the run may have logged where it resumed from: it must be the newest checkpoint
  if [ "$latest" -gt 0 ] && grep -q "resuming from" "$T/err.$k" &&
     ! grep -q "resuming from $out/checkpoint-$latest at step $latest\$" "$T/err.$k"; then
    bad "kill $k: resumed from the wrong place: $(grep "resuming from" "$T/err.$k") (newest was $latest)"
  fi
  echo "kill $k ($mode): exit $rc$(compgen -G "$out/.checkpoint-*.$pid" >/dev/null && echo ", inside a save")"
  pid=
}
# check_after K: the newest checkpoint loads, says its step, never goes back, and every checkpoint
# equals the reference's; older ones are deleted so that the newest is the only one left.
check_after() {
  local k=$1 n c
  n=$(newest)
  if [ -z "$n" ]; then [ "$latest" -gt 0 ] && bad "kill $k: no checkpoint left (had checkpoint-$latest)"; return; fi
  [ "$n" -lt "$latest" ] && bad "kill $k: newest checkpoint went back from $latest to $n"
  "$DSM" model info --model "$out/checkpoint-$n" --check >/dev/null 2>"$T/info.err" ||
    bad "kill $k: checkpoint-$n does not load: $(head -c 300 "$T/info.err")"
  grep -q "\"step\": $n,\$" "$out/checkpoint-$n/trainer_state.json" 2>/dev/null ||
    bad "kill $k: checkpoint-$n/trainer_state.json does not say step $n"
  for c in $(ls -d "$out"/checkpoint-* | sed 's/.*checkpoint-//' | sort -n); do
    [ "$(md5 "$out/checkpoint-$c/model.safetensors" 2>/dev/null)" = "${ref_model[$c]}" ] &&
      [ "$(md5 "$out/checkpoint-$c/optimizer.safetensors" 2>/dev/null)" = "${ref_optim[$c]}" ] ||
      bad "kill $k: checkpoint-$c differs from the uninterrupted run's"
    [ "$c" -lt "$n" ] && rm -rf "$out/checkpoint-$c"
  done
  latest=$n
  echo "  newest checkpoint-$n: loads, equals the reference's"
}

# 1. kills while training: during start-up, anywhere in a step, inside a save, in turn
modes=(save start step)
for k in $(seq 1 "$KILLS"); do
  run_and_kill "$k" "${modes[$((k % 3))]}"
  check_after "$k"
done
echo "$KILLS kills while training: $during_save inside a save, $finished_runs runs finished first; newest checkpoint-$latest of $STEPS"
[ "$fails" -eq "$errors_before" ] && ok "$KILLS kills, each left a loadable newest checkpoint equal to the reference's"
[ "$during_save" -ge $((KILLS / 4)) ] && ok "$during_save kills landed inside a save" || bad "only $during_save kills landed inside a save"

# 2. a resume without a kill finishes the run on the reference's weights
if (train "$out" --resume auto) 2>"$T/final.err"; then ok "resume ran to step $STEPS"; else bad "final resume: $(tail -3 "$T/final.err")"; fi
[ "$latest" -eq 0 ] || grep -q "resuming from $out/checkpoint-$latest at step $latest\$" "$T/final.err" ||
  bad "the resume did not start from checkpoint-$latest: $(grep resuming "$T/final.err")"
latest=$(newest)
cmp -s "$out/model.safetensors" "$T/ref/model.safetensors" && ok "model.safetensors bit-identical to the uninterrupted run" ||
  bad "model.safetensors differs from the uninterrupted run's"
[ "$(md5 "$out/checkpoint-$STEPS/optimizer.safetensors" 2>/dev/null)" = "${ref_optim[$STEPS]}" ] && ok "final optimizer state identical" ||
  bad "final optimizer state differs"

# 3. resuming a finished run saves checkpoint-STEPS again over the existing one and rewrites the
#    final model: killed inside that replacement, both must stay complete and unchanged
before=$during_save errors_before=$fails
for k in $(seq $((KILLS + 1)) $((KILLS + KILLS_DONE))); do
  run_and_kill "$k" save
  check_after "$k"
  [ "$latest" = "$STEPS" ] || bad "kill $k: checkpoint-$STEPS is gone (newest: ${latest:-none})"
  [ ! -e "$out/model.safetensors" ] || cmp -s "$out/model.safetensors" "$T/ref/model.safetensors" ||
    bad "kill $k: the final model.safetensors changed"
done
echo "$KILLS_DONE kills while re-saving the finished run: $((during_save - before)) inside the replacement"
[ "$fails" -eq "$errors_before" ] && ok "$KILLS_DONE kills of a finished run's resume, checkpoint-$STEPS and the final model intact"
if (train "$out" --resume auto) 2>"$T/final2.err"; then ok "finished run resumes again"; else bad "resume of the finished run: $(tail -3 "$T/final2.err")"; fi
cmp -s "$out/model.safetensors" "$T/ref/model.safetensors" && ok "model.safetensors still bit-identical" || bad "model.safetensors changed"
left=$(ls -A "$out" | grep -E '^\.|\.tmp\.' | tr '\n' ' ')
[ -z "$left" ] && ok "no temporary leftovers under --out" || bad "leftovers of killed runs under --out: $left"

# 4. planted: what a kill leaves where the file system cannot swap directories atomically (the
#    previous copy moved aside, its replacement not yet renamed in) and stray temporaries of dead
#    and of live processes. The resume restores the moved copy and removes only the dead ones.
dead=$(sh -c 'echo $$')
cp -r "$out/checkpoint-$STEPS" "$out/.checkpoint-$STEPS.old.$dead" && rm -rf "$out/checkpoint-$STEPS"
mkdir "$out/.checkpoint-$((STEPS + 1)).tmp.$dead" "$out/.checkpoint-$((STEPS - 1)).tmp.$$"
echo partial > "$out/.checkpoint-$((STEPS + 1)).tmp.$dead/model.safetensors"
echo partial > "$out/model.safetensors.tmp.$dead"
if (train "$out" --resume auto) 2>"$T/plant.err"; then ok "resume with planted leftovers"; else bad "resume with planted leftovers: $(tail -3 "$T/plant.err")"; fi
grep -q "restored $out/checkpoint-$STEPS" "$T/plant.err" && grep -q "resuming from $out/checkpoint-$STEPS at step $STEPS\$" "$T/plant.err" &&
  ok "the moved-aside checkpoint-$STEPS was restored and resumed from" || bad "no restore: $(grep -E 'restored|resuming' "$T/plant.err")"
[ ! -e "$out/.checkpoint-$((STEPS + 1)).tmp.$dead" ] && [ ! -e "$out/model.safetensors.tmp.$dead" ] && [ ! -e "$out/.checkpoint-$STEPS.old.$dead" ] &&
  ok "a dead process's temporaries removed" || bad "a dead process's temporaries remain: $(ls -A "$out" | tr '\n' ' ')"
[ -d "$out/.checkpoint-$((STEPS - 1)).tmp.$$" ] && ok "a live process's temporary directory kept" || bad "a live process's temporary directory was removed"
rmdir "$out/.checkpoint-$((STEPS - 1)).tmp.$$"
cmp -s "$out/model.safetensors" "$T/ref/model.safetensors" && ok "model.safetensors still bit-identical" || bad "model.safetensors changed"
echo "total: $((KILLS + KILLS_DONE)) kills, $during_save inside a save, all recovered"
check_done
