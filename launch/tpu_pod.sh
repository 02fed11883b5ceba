#!/usr/bin/env bash
# Runs rsvlm_jax on every worker of a Cloud TPU VM pod slice (one process per host; JAX auto-detects
# the cluster on TPU VMs, so no coordinator flags are needed).
#
#   launch/tpu_pod.sh TPU_NAME ZONE CONFIG WORKDIR [extra flags ...]
#   launch/tpu_pod.sh my-v5e-64 us-west4-a configs/rs_gpt4v_b16.py gs://bucket/runs/b16
#
# Env: PROJECT (gcloud project; default: gcloud's), REPO_URL (git URL to clone on the workers; default:
# this checkout's origin), BRANCH (default: current branch), SETUP=0 to skip the per-worker install.
# WORKDIR and data_dir should be on storage every worker sees (a gs:// bucket or a shared filesystem).
set -euo pipefail
if [[ $# -lt 4 ]]; then sed -n '2,11p' "$0"; exit 2; fi
TPU=$1; ZONE=$2; CONFIG=$3; WORKDIR=$4; shift 4
REPO_URL=${REPO_URL:-$(git config --get remote.origin.url)}
BRANCH=${BRANCH:-$(git rev-parse --abbrev-ref HEAD)}
PROJECT_FLAG=${PROJECT:+--project=$PROJECT}
EXTRA=$(printf ' %q' "$@")
SETUP_CMD="true"
if [[ "${SETUP:-1}" == "1" ]]; then
  SETUP_CMD="(test -d rsvlm_jax || git clone -b $BRANCH $REPO_URL rsvlm_jax) && cd rsvlm_jax && git fetch -q && git checkout -q $BRANCH && git pull -q && python3 -m venv .venv && .venv/bin/pip install -q -c constraints.txt -e . 'jax[tpu]' && cd .."
fi
gcloud compute tpus tpu-vm ssh "$TPU" --zone="$ZONE" $PROJECT_FLAG --worker=all --command="
  set -e; $SETUP_CMD; cd rsvlm_jax &&
  RSVLM_DISTRIBUTED_AUTO=1 .venv/bin/python -m rsvlm_jax.main --config=$CONFIG --workdir=$WORKDIR $EXTRA 2>&1 | tee -a \$HOME/rsvlm_\$(hostname).log"
