#!/usr/bin/env bash
# Run phases 1, 2 and 3 one after another on a TPU VM slice, each in the foreground.
#
# Usage: launch/tpu_vm/pipeline.sh --name=NAME --zone=ZONE --root=gs://BUCKET/RUN
#            [--from=1] [--project=PROJECT] [--dry-run] [-- TRAINER FLAGS...]
#
#   --root     phase N trains configs/phaseN.py in ROOT/phaseN; phase N > 1 starts from
#              the previous phase's checkpoint: --config.init_from=ROOT/phase{N-1}
#   --from     first phase to run (default 1), e.g. --from=2 when phase 1 is done
#   -- ...     passed on to every phase's python -m rf_jax.main
#
# Each phase runs over ssh on all workers and must finish (exit 0 everywhere) before the
# next one starts; its output is shown here and kept in ~/rf_jax_logs/RUN-phaseN.log
# (RUN: the last component of --root). If the connection drops or a phase fails, run the
# same command again: every phase resumes from its newest checkpoint, and a finished phase
# only reports that it is finished. Run setup.sh first.

set -euo pipefail
HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
# shellcheck source-path=SCRIPTDIR source=common.sh
source "$HERE/common.sh"

parse_args "name zone root from project" "" 1 "$@"
require name zone root
check_name name "$OPT_NAME"
ROOT=${OPT_ROOT%/}
FROM=${OPT_FROM:-1}
[[ $FROM =~ ^[123]$ ]] || die "--from must be 1, 2 or 3, got '$FROM'"
RUN=$(run_name_for "$ROOT")
PROJECT=()
if [[ -n ${OPT_PROJECT:-} ]]; then PROJECT=(--project="$OPT_PROJECT"); fi

for ((phase = FROM; phase <= 3; phase++)); do
  ARGS=(--config="configs/phase$phase.py" --workdir="$ROOT/phase$phase")
  if ((phase > 1)); then ARGS+=(--config.init_from="$ROOT/phase$((phase - 1))"); fi
  TRAIN=$(join_cmd python -m rf_jax.main "${ARGS[@]}" ${EXTRA[@]+"${EXTRA[@]}"})
  REMOTE="set -o pipefail && cd ~/rf_jax && source ~/rf_jax_venv/bin/activate"
  REMOTE+=" && mkdir -p ~/rf_jax_logs && $TRAIN 2>&1 | tee ~/rf_jax_logs/$RUN-phase$phase.log"
  run gcloud compute tpus tpu-vm ssh "$OPT_NAME" --zone="$OPT_ZONE" --worker=all \
    ${PROJECT[@]+"${PROJECT[@]}"} --command="$REMOTE"
done
