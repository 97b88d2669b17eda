#!/usr/bin/env bash
# Follow a run's log on one worker of a TPU VM slice (Ctrl-C to stop; the run goes on).
#
# Usage: launch/tpu_vm/logs.sh --name=NAME --zone=ZONE [--worker=0] [--run=RUN]
#            [--lines=100] [--project=PROJECT] [--dry-run]
#
#   --worker   worker index (default 0, the one that prints the metrics)
#   --run      log name given to run.sh (default: latest, the last run.sh started there);
#              pipeline.sh logs as RUN-pipeline, thesis.sh as RUN-thesis
#   --lines    lines of history to show first (default 100)

set -euo pipefail
HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
# shellcheck source-path=SCRIPTDIR source=common.sh
source "$HERE/common.sh"

parse_args "name zone worker run lines project" "" 0 "$@"
require name zone
check_name name "$OPT_NAME"
WORKER=${OPT_WORKER:-0}
RUN=${OPT_RUN:-latest}
LINES=${OPT_LINES:-100}
check_int worker "$WORKER"
check_name run "$RUN"
check_int lines "$LINES"
PROJECT=()
if [[ -n ${OPT_PROJECT:-} ]]; then PROJECT=(--project="$OPT_PROJECT"); fi

run gcloud compute tpus tpu-vm ssh "$OPT_NAME" --zone="$OPT_ZONE" --worker="$WORKER" \
  ${PROJECT[@]+"${PROJECT[@]}"} --command="tail -n $LINES -F ~/rf_jax_logs/$RUN.log"
