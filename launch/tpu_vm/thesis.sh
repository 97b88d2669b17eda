#!/usr/bin/env bash
# Run the thesis experiment (python -m rf_jax.thesis) on every worker of a TPU VM slice.
#
# Usage: launch/tpu_vm/thesis.sh --name=NAME --zone=ZONE --preset=v5e-32
#            --root=gs://BUCKET/RUN --text_files='gs://BUCKET/CORPUS/*.jsonl'
#            [--seeds=0,1,2] [--project=PROJECT] [--dry-run] [-- TRAINER FLAGS...]
#
#   --preset      configs/thesis.py preset sized for the slice: v5e-32 or v5p-128
#   --root        every run's workdir is ROOT/seed<k>/<arm>/<run>; the report (report.md,
#                 report.json, report.png) lands in ROOT
#   --text_files  the text phases' corpus, globs the workers can read (quote the *)
#   -- ...        passed on to every run's python -m rf_jax.main, after splash attention and
#                 scanned layers (--config.model.attention=splash --config.model.scan_layers=True)
#
# Every worker runs the same driver; each training run and each evaluation is one
# multi-process JAX job over the whole slice. Output is shown here and kept in
# ~/rf_jax_logs/RUN-thesis.log (RUN: the last component of --root). If the connection drops
# or a run fails, run the same command again: finished runs and evaluations are skipped
# and an interrupted run resumes from its newest checkpoint. `--dry-run` prints the ssh
# command; for the runs, steps, tokens and FLOPs run locally:
#   python -m rf_jax.thesis --config=configs/thesis.py:PRESET --text_files=X --dry-run
# Run create.sh and setup.sh first.

set -euo pipefail
HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
# shellcheck source-path=SCRIPTDIR source=common.sh
source "$HERE/common.sh"

parse_args "name zone preset root text_files seeds project" "" 1 "$@"
require name zone preset root text_files
check_name name "$OPT_NAME"
[[ $OPT_PRESET =~ ^(v5e-32|v5p-128)$ ]] || die "--preset must be v5e-32 or v5p-128, got '$OPT_PRESET'"
[[ $OPT_ROOT == gs://* ]] || die "--root must be gs://... (every worker writes to it), got '$OPT_ROOT'"
ROOT=${OPT_ROOT%/}
RUN=$(run_name_for "$ROOT")
PROJECT=()
if [[ -n ${OPT_PROJECT:-} ]]; then PROJECT=(--project="$OPT_PROJECT"); fi
ARGS=(--config="configs/thesis.py:$OPT_PRESET" --root="$ROOT" --text_files="$OPT_TEXT_FILES")
if [[ -n ${OPT_SEEDS:-} ]]; then ARGS+=(--seeds="$OPT_SEEDS"); fi
ARGS+=(-- "${TPU_MODEL_FLAGS[@]}" ${EXTRA[@]+"${EXTRA[@]}"})

run_on_all_workers "$RUN-thesis" "$(join_cmd python -m rf_jax.thesis "${ARGS[@]}")"
