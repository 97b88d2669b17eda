#!/usr/bin/env bash
# Submit a multi-node GPU training job to SLURM (launch/gpu/slurm.sbatch): one process per
# node, each driving all of that node's GPUs.
#
# Usage: launch/gpu/submit.sh --nodes=N --gpus-per-node=G --config=configs/phase1.py[:preset]
#            --workdir=DIR [--partition=P] [--account=A] [--time=24:00:00] [--dry-run]
#            [-- TRAINER FLAGS...]
#
#   --workdir    a folder every node can write (shared file system, or gs://...); the same
#                --workdir resumes the run
#   --time       wall-clock limit (default 24:00:00); a job SLURM stops at its limit gets
#                SIGTERM first, saves a checkpoint, and resumes when submitted again
#   -- ...       passed on to python -m rf_jax.main on every node
#
# sbatch runs from the repository root (this script changes to it), so relative --config and
# --workdir paths are relative to the repository root. The job inherits this shell's
# environment: activate the venv with rf_jax installed (pip install -e ".[gpu]") first.

set -euo pipefail
HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
# shellcheck source-path=SCRIPTDIR source=../tpu_vm/common.sh
source "$HERE/../tpu_vm/common.sh"

parse_args "nodes gpus-per-node config workdir partition account time" "" 1 "$@"
require nodes gpus-per-node config workdir
[[ $OPT_NODES =~ ^[1-9][0-9]*$ ]] || die "--nodes must be a positive integer, got '$OPT_NODES'"
[[ $OPT_GPUS_PER_NODE =~ ^[1-9][0-9]*$ ]] ||
  die "--gpus-per-node must be a positive integer, got '$OPT_GPUS_PER_NODE'"
TIME=${OPT_TIME:-24:00:00}

ARGS=(--nodes="$OPT_NODES" --gpus-per-node="$OPT_GPUS_PER_NODE" --ntasks-per-node=1)
if [[ -n ${OPT_PARTITION:-} ]]; then ARGS+=(--partition="$OPT_PARTITION"); fi
if [[ -n ${OPT_ACCOUNT:-} ]]; then ARGS+=(--account="$OPT_ACCOUNT"); fi
ARGS+=(--time="$TIME")

cd "$HERE/../.."
run sbatch "${ARGS[@]}" launch/gpu/slurm.sbatch "$OPT_CONFIG" "$OPT_WORKDIR" \
  ${EXTRA[@]+"${EXTRA[@]}"}
