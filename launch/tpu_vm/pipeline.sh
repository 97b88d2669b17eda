#!/usr/bin/env bash
# Run the pipeline (python -m rf_jax.pipeline) on every worker of a TPU VM slice: phases
# 1 -> 2 -> 3 and the text-first baseline, each phase starting from its parent's checkpoint.
#
# Usage: launch/tpu_vm/pipeline.sh --name=NAME --zone=ZONE --root=gs://BUCKET/RUN
#            [--only=phase2,phase3] [--preset=PRESET] [--project=PROJECT] [--dry-run]
#            [-- TRAINER FLAGS...]
#
#   --root     every phase trains in ROOT/<phase>; the side-by-side report lands in ROOT
#   --only     the phases to run (default: all, in order), e.g. --only=phase2,phase3 when
#              phase 1 is done
#   --preset   config preset given to every phase (e.g. tiny for a smoke test)
#   -- ...     passed on to every phase's python -m rf_jax.main, after splash attention and
#              scanned layers (--config.model.attention=splash --config.model.scan_layers=True)
#
# The phases are the records of rf_jax/experiments/pipeline.py, so a new phase needs no
# change here. Every worker runs the same driver; each phase is one multi-process JAX job
# over the whole slice. Output is shown here and kept in ~/rf_jax_logs/RUN-pipeline.log
# (RUN: the last component of --root). If the connection drops or a phase fails, run the
# same command again: every phase resumes from its newest checkpoint, and a finished phase
# only reports that it is finished. Run setup.sh first.

set -euo pipefail
HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
# shellcheck source-path=SCRIPTDIR source=common.sh
source "$HERE/common.sh"

parse_args "name zone root only preset project" "" 1 "$@"
require name zone root
check_name name "$OPT_NAME"
ROOT=${OPT_ROOT%/}
RUN=$(run_name_for "$ROOT")
PROJECT=()
if [[ -n ${OPT_PROJECT:-} ]]; then PROJECT=(--project="$OPT_PROJECT"); fi
ARGS=(--root="$ROOT")
if [[ -n ${OPT_ONLY:-} ]]; then ARGS+=(--only="$OPT_ONLY"); fi
if [[ -n ${OPT_PRESET:-} ]]; then ARGS+=(--preset="$OPT_PRESET"); fi
ARGS+=(-- "${TPU_MODEL_FLAGS[@]}" ${EXTRA[@]+"${EXTRA[@]}"})

run_on_all_workers "$RUN-pipeline" "$(join_cmd python -m rf_jax.pipeline "${ARGS[@]}")"
