#!/usr/bin/env bash
# Starts NUM_PROCESSES local CPU processes that form one JAX cluster (CPU collectives over gloo):
# a test of the multi-host path on one machine.
#
#   launch/local.sh NUM_PROCESSES CONFIG WORKDIR [extra flags for rsvlm_jax.main ...]
#   launch/local.sh 2 configs/demo.py:runlocal=True /tmp/mh
#
# Env: PYTHON (default: python), RSVLM_PORT (coordinator port; default: a free one),
#      DEVICES_PER_PROCESS (fake CPU devices per process, default 1).
# Logs: WORKDIR/logs/process_<i>.log. Exit code: the first non-zero exit code of any process.
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
  JAX_PLATFORMS=cpu XLA_FLAGS="--xla_force_host_platform_device_count=$DPP" \
    "$PY" -m rsvlm_jax.main --config="$CONFIG" --workdir="$WORKDIR" "$@" \
    > "$WORKDIR/logs/process_$i.log" 2>&1 &
  pids+=($!)
done
rc=0
for p in "${pids[@]}"; do
  if ! wait "$p"; then
    code=$?; [[ $rc -eq 0 ]] && rc=$code
    cleanup
  fi
done
echo "local cluster of $NUM processes finished with exit code $rc (logs in $WORKDIR/logs)"
exit $rc
