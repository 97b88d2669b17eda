#!/usr/bin/env bash
# Start the trainer on every worker of a TPU VM slice, in the background (nohup).
#
# Usage: launch/tpu_vm/run.sh --name=NAME --zone=ZONE --config=configs/phase1.py[:preset]
#            --workdir=gs://BUCKET/PATH [--run=RUN] [--project=PROJECT] [--dry-run]
#            [-- TRAINER FLAGS...]
#
#   --config   config file (relative to the repository root) with an optional :preset
#   --workdir  shared output folder; must be gs://... on a multi-host slice (every host
#              writes its part of each checkpoint). The same --workdir resumes a run.
#   --run      log name: ~/rf_jax_logs/RUN.log on each worker (default: the last component
#              of --workdir); ~/rf_jax_logs/latest.log links to it, RUN.pid holds the pid
#   -- ...     passed on to python -m rf_jax.main, e.g. -- --config.train.steps=10
#
# The trainer gets splash attention and scanned layers (--config.model.attention=splash
# --config.model.scan_layers=True) before the flags after --, which win.
# The command returns at once; follow with logs.sh. JAX finds the other workers itself
# (TPU VM metadata). To stop a run cleanly (it saves a checkpoint and exits 0):
#   gcloud compute tpus tpu-vm ssh NAME --zone=ZONE --worker=all \
#     --command='kill -TERM $(cat ~/rf_jax_logs/RUN.pid)'
# Run setup.sh first.

set -euo pipefail
HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
# shellcheck source-path=SCRIPTDIR source=common.sh
source "$HERE/common.sh"

parse_args "name zone config workdir run project" "" 1 "$@"
require name zone config workdir
check_name name "$OPT_NAME"
RUN=${OPT_RUN:-$(run_name_for "$OPT_WORKDIR")}
check_name run "$RUN"
PROJECT=()
if [[ -n ${OPT_PROJECT:-} ]]; then PROJECT=(--project="$OPT_PROJECT"); fi
if [[ $OPT_WORKDIR != gs://* ]]; then
  echo "warning: --workdir=$OPT_WORKDIR is not gs://...; each worker writes its own local copy," \
    "which only works on a single-host slice" >&2
fi

TRAIN=$(join_cmd python -m rf_jax.main --config="$OPT_CONFIG" --workdir="$OPT_WORKDIR" \
  "${TPU_MODEL_FLAGS[@]}" ${EXTRA[@]+"${EXTRA[@]}"})
REMOTE="cd ~/rf_jax && source ~/rf_jax_venv/bin/activate && mkdir -p ~/rf_jax_logs"
REMOTE+=" && ln -sfn $RUN.log ~/rf_jax_logs/latest.log"
REMOTE+=" && { nohup $TRAIN > ~/rf_jax_logs/$RUN.log 2>&1 < /dev/null"
REMOTE+=" & echo \$! > ~/rf_jax_logs/$RUN.pid; }"

run gcloud compute tpus tpu-vm ssh "$OPT_NAME" --zone="$OPT_ZONE" --worker=all \
  ${PROJECT[@]+"${PROJECT[@]}"} --command="$REMOTE"
