#!/usr/bin/env bash
# One table-sweep worker (tools/table_sweep/README.md): runs queue jobs, one at a time, until the queue is empty,
# no job fits before $STATE/DEADLINE, or $STATE/STOP exists. Start one per core:
#   NAME=A setsid nohup bash tools/table_sweep/worker.sh >/dev/null 2>&1 &
set -uf                              # -f: a job line is split on spaces, never glob-expanded
MAIN=$(cd "$(dirname "$0")/../.." && pwd)
WT=${WT:-$MAIN/../wt_head}           # the git worktree at the table's commit
STATE=${STATE:-$MAIN/../sweep_v3}    # queue.txt, DEADLINE, STOP, logs
Q=$STATE/queue.txt; LOG=$STATE/log_$NAME.txt; OUT=$STATE/job_$NAME.out
KIND=${KIND:-AuthenticAMD True}      # the table's CPU kind: vendor and native bf16 (bench.report's cpu_kind)
SWEEP=${SWEEP:-table1_v3_sweep}      # the table's sweep folder under results/DATASET/runs/
stamp() { date -u +%FT%T; }
here=$(cd "$WT" && .venv/bin/python -c 'import torch; from bench.engine.machine import cpu_vendor, native_bf16_cpu as b; print(cpu_vendor(), b(), "cuda" if torch.cuda.is_available() else "")' | xargs)
if [ "$here" != "$KIND" ]; then   # a record of another kind (or a GPU's) joins no table: stop before training
  echo "$(stamp) this machine is '$here', the table's kind is '$KIND': not starting" >> "$LOG"; exit 1
fi
while true; do
  [ -e "$STATE/STOP" ] && { echo "$(stamp) stop file" >> "$LOG"; exit 0; }
  line=$(flock "$Q.lock" python3 "$MAIN/tools/table_sweep/pop_job.py" "$Q" "$STATE/DEADLINE")
  [ -z "$line" ] && { echo "$(stamp) nothing fits" >> "$LOG"; exit 0; }
  set -- $line; ds=$1; label=$2; seed=$3; shift 4; overrides="$*"
  echo "$(stamp) start $line" >> "$LOG"
  if [ "$label" = confirm ]; then       # a tuned file's confirmation, at main's code
    (cd "$MAIN" && .venv/bin/python -m bench.tuning.confirm dataset="$ds" $overrides train.threads=1 train.progress=false) > "$OUT" 2>&1
  else
    [ -z "$overrides" ] && overrides="model=$label increc=off,na,na_permuted seeds=10"   # a paper backbone
    tuned=$MAIN/tuned/$ds/$label.yaml
    if ! grep -q '^confirmation:' "$tuned"; then
      echo "$line" >> "$STATE/queue_refused.txt"; echo "$(stamp) refused (tuned file unconfirmed) $line" >> "$LOG"; continue
    fi
    cp "$tuned" "$WT/tuned/$ds/"        # main's confirmed values, not the worktree commit's
    (cd "$WT" && .venv/bin/python -m bench -m experiment=table1 dataset="$ds" train.threads=1 $overrides seed="$seed" \
        hydra.sweep.dir="results/$ds/runs/$SWEEP") > "$OUT" 2>&1
  fi
  rc=$?                              # the job's exit status (a command substitution would reset $?)
  echo "$(stamp) end rc=$rc $line" >> "$LOG"
  if [ "$rc" != 0 ]; then echo "$line" >> "$STATE/queue_failed.txt"; cp "$OUT" "$STATE/failed_${NAME}_${ds}_${label}_${seed}.out"; fi
done
