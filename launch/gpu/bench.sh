#!/usr/bin/env bash
# Benchmark the trainer on one GPU: python -m rf_jax.bench with cuDNN's fused attention and
# scanned layers, for the accelerator preset by default.
#
# Usage: launch/gpu/bench.sh [--config=configs/phase1.py:bench125m]
#            [--only=train,sampler,rl,layers,attention] [--gpu=0] [--python=python]
#            [--dry-run] [-- BENCH FLAGS...]
#
#   --config   config file (relative to the repository root) with an optional :preset
#   --only     the benchmarks to run (python -m rf_jax.bench --help lists them)
#   --gpu      the GPU to use (sets CUDA_VISIBLE_DEVICES); default 0
#   --python   interpreter with rf_jax installed (pip install -e ".[gpu]"); default python
#   -- ...     passed on to python -m rf_jax.bench, e.g. -- --batch=64 --set=train.batch_size=16
#
# Runs from the repository root with --set=model.attention=dot_product
# --set=model.scan_layers=True (later --set flags after -- win) and
# XLA_PYTHON_CLIENT_MEM_FRACTION=0.9 (or the value already in the environment). It prints
# MFU against the chip's dense bf16 peak, tokens/s, compile time, temporary memory and the
# trainer / hand-written step ratio (train), decoding tokens/s (sampler), one RL step
# (rl), compile time against depth (layers) and the attention kernels (attention). Keep
# the output: `launch/gpu/bench.sh | tee bench.txt`.

set -euo pipefail
HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
# shellcheck source-path=SCRIPTDIR source=../tpu_vm/common.sh
source "$HERE/../tpu_vm/common.sh"

parse_args "config only gpu python" "" 1 "$@"
GPU=${OPT_GPU:-0}
[[ $GPU =~ ^[0-9]+$ ]] || die "--gpu must be a GPU index (0, 1, ...), got '$GPU'"
SETS=()
for flag in "${GPU_MODEL_FLAGS[@]}"; do SETS+=(--set="${flag#--config.}"); done

cd "$HERE/../.."
run env XLA_PYTHON_CLIENT_MEM_FRACTION="${XLA_PYTHON_CLIENT_MEM_FRACTION:-0.9}" \
  CUDA_VISIBLE_DEVICES="$GPU" "${OPT_PYTHON:-python}" -m rf_jax.bench \
  --config="${OPT_CONFIG:-configs/phase1.py:bench125m}" \
  --only="${OPT_ONLY:-train,sampler,rl,layers,attention}" "${SETS[@]}" ${EXTRA[@]+"${EXTRA[@]}"}
