#!/usr/bin/env bash
# Starts NUM_PROCESSES local CPU processes that form one JAX cluster (CPU collectives over gloo):
# a test of the multi-host path on one machine.
#
#   launch/local.sh NUM_PROCESSES CONFIG WORKDIR [extra flags for rsvlm_jax.main ...]
#   launch/local.sh 2 configs/demo.py:runlocal=True /tmp/mh
#
# Env: PYTHON (default: python), RSVLM_PORT (coordinator port; default: a free one),
#      DEVICES_PER_PROCESS (fake CPU devices per process, default 1), LOG_TAIL (lines shown, default 20),
#      XLA_EXTRA_FLAGS (appended to each process's XLA_FLAGS).
# Logs: WORKDIR/logs/process_<i>.log. Exit code: that of the first process to fail (0 if none did); the
# failure is reported with the process index, pid and the tail of its log, and the other processes are stopped.
set -euo pipefail
if [[ $# -lt 3 ]]; then
  sed -n '2,12p' "$0"; exit 2
fi
NUM=$1; CONFIG=$2; WORKDIR=$3; shift 3
PY=${PYTHON:-python}
PORT=${RSVLM_PORT:-$("$PY" -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')}
DPP=${DEVICES_PER_PROCESS:-1}
mkdir -p "$WORKDIR/logs"
pids=()
cleanup() { kill "${pids[@]}" 2>/dev/null || true; }
trap cleanup INT TERM
for ((i = 0; i < NUM; i++)); do
  RSVLM_COORDINATOR="127.0.0.1:$PORT" RSVLM_NUM_PROCESSES="$NUM" RSVLM_PROCESS_ID="$i" \
  JAX_PLATFORMS=cpu XLA_FLAGS="--xla_force_host_platform_device_count=$DPP ${XLA_EXTRA_FLAGS:-}" \
    "$PY" -m rsvlm_jax.main --config="$CONFIG" --workdir="$WORKDIR" "$@" \
    > "$WORKDIR/logs/process_$i.log" 2>&1 &
  pids+=($!)
done
# Reap the processes as they finish (bash >= 5.1: whichever ends first; older bash: in order). The first
# failure is reported with its index, pid and log tail, and stops the others (they would wait forever for it).
declare -A index=()
for i in "${!pids[@]}"; do index[${pids[$i]}]=$i; done
rc=0
while ((${#index[@]})); do
  done_pid="" code=0
  if ((BASH_VERSINFO[0] * 100 + BASH_VERSINFO[1] >= 501)); then
    wait -n -p done_pid "${!index[@]}" || code=$?
  else
    done_pid=${pids[NUM - ${#index[@]}]}; wait "$done_pid" || code=$?
  fi
  [[ -n $done_pid ]] || continue  # wait interrupted by a signal (the trap has stopped the processes).
  i=${index[$done_pid]}; unset "index[$done_pid]"
  if ((code != 0 && rc == 0)); then
    rc=$code
    echo "process $i (pid $done_pid) failed with exit code $code; last lines of $WORKDIR/logs/process_$i.log:" >&2
    tail -n "${LOG_TAIL:-20}" "$WORKDIR/logs/process_$i.log" | sed 's/^/  | /' >&2
    cleanup
  elif ((code != 0)); then
    echo "process $i (pid $done_pid) exited with code $code" >&2
  fi
done
echo "local cluster of $NUM processes finished with exit code $rc (logs in $WORKDIR/logs)"
exit $rc
