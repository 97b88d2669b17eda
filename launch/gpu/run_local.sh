#!/usr/bin/env bash
# Train on one machine with one or more GPUs: one process drives them all, data-parallel.
#
# Usage: launch/gpu/run_local.sh --config=configs/phase1.py[:preset] --workdir=DIR
#            [--gpus=N] [--python=python] [--dry-run] [-- TRAINER FLAGS...]
#
#   --gpus     use the first N GPUs (sets CUDA_VISIBLE_DEVICES=0,...,N-1); default: all
#   --python   interpreter with rf_jax installed (pip install -e ".[gpu]"); default python
#   -- ...     passed on to python -m rf_jax.main, e.g. -- --config.train.steps=10
#
# Runs python -m rf_jax.main with --config.mesh.shape='(-1,1,1)' (every GPU on the data
# axis), cuDNN's fused attention (--config.model.attention=dot_product) and scanned layers
# (--config.model.scan_layers=True); the same flags after -- win. Sets
# XLA_PYTHON_CLIENT_MEM_FRACTION=0.9 (or keeps the value already in the environment).
# The same --workdir resumes the run.

set -euo pipefail
HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
# shellcheck source-path=SCRIPTDIR source=../tpu_vm/common.sh
source "$HERE/../tpu_vm/common.sh"

parse_args "config workdir gpus python" "" 1 "$@"
require config workdir
ENVS=(XLA_PYTHON_CLIENT_MEM_FRACTION="${XLA_PYTHON_CLIENT_MEM_FRACTION:-0.9}")
if [[ -n ${OPT_GPUS:-} ]]; then
  [[ $OPT_GPUS =~ ^[1-9][0-9]*$ ]] || die "--gpus must be a positive integer, got '$OPT_GPUS'"
  devices=0
  for ((i = 1; i < OPT_GPUS; i++)); do devices+=",$i"; done
  ENVS+=(CUDA_VISIBLE_DEVICES="$devices")
fi

run env "${ENVS[@]}" "${OPT_PYTHON:-python}" -m rf_jax.main --config="$OPT_CONFIG" \
  --workdir="$OPT_WORKDIR" --config.mesh.shape='(-1,1,1)' "${GPU_MODEL_FLAGS[@]}" \
  ${EXTRA[@]+"${EXTRA[@]}"}
