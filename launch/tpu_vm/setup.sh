#!/usr/bin/env bash
# Copy the repository to every worker of a TPU VM slice and install it (idempotent).
#
# Usage: launch/tpu_vm/setup.sh --name=NAME --zone=ZONE [--repo=PATH] [--python=python3.11]
#            [--tarball=/tmp/rf_jax-NAME.tar.gz] [--project=PROJECT] [--dry-run]
#
#   --repo     local checkout to copy (default: this repository); the working tree is copied
#              as it is, uncommitted changes included, without .git, venvs, workdirs, caches
#   --python   interpreter on the workers for ~/rf_jax_venv (default python3.11: flax 0.12 and
#              JAX >= 0.7 need Python >= 3.11; the TPU images are Ubuntu 22.04 with 3.10, so the
#              first setup apt-installs python3.11 and python3.11-venv when they are missing)
#   --tarball  local file for the archive (default /tmp/rf_jax-NAME.tar.gz)
#   --project  GCP project; default: gcloud's configured project
#   --dry-run  print the commands and run nothing
#
# On each worker: ~/rf_jax is replaced by the new copy, ~/rf_jax_venv is created only if
# it is missing, then `pip install -e ".[tpu]"` runs in ~/rf_jax. Run it again after
# changing the code: a running job keeps the files it had open.

set -euo pipefail
HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
# shellcheck source-path=SCRIPTDIR source=common.sh
source "$HERE/common.sh"

parse_args "name zone repo python tarball project" "" 0 "$@"
require name zone
check_name name "$OPT_NAME"
REPO=${OPT_REPO:-$(cd "$HERE/../.." && pwd)}
PY=${OPT_PYTHON:-python3.11}
[[ $PY =~ ^python3(\.[0-9]+)?$ ]] || die "--python must look like python3 or python3.11, got '$PY'"
TARBALL=${OPT_TARBALL:-/tmp/rf_jax-$OPT_NAME.tar.gz}
if [[ $DRY_RUN == 0 && ! -f $REPO/setup.cfg ]]; then
  die "--repo=$REPO is not an rf_jax checkout (no setup.cfg)"
fi
PROJECT=()
if [[ -n ${OPT_PROJECT:-} ]]; then PROJECT=(--project="$OPT_PROJECT"); fi

REMOTE="set -e; rm -rf ~/rf_jax.new; mkdir -p ~/rf_jax.new ~/rf_jax_logs"
REMOTE+="; tar -xzf ~/rf_jax.tar.gz -C ~/rf_jax.new; rm -rf ~/rf_jax; mv ~/rf_jax.new ~/rf_jax"
REMOTE+="; rm -f ~/rf_jax.tar.gz"
REMOTE+="; if [ ! -x ~/rf_jax_venv/bin/pip ]; then"
REMOTE+=" rm -rf ~/rf_jax_venv; if ! $PY -m venv ~/rf_jax_venv; then rm -rf ~/rf_jax_venv"
REMOTE+="; sudo apt-get -qq -o DPkg::Lock::Timeout=600 update"
REMOTE+="; sudo DEBIAN_FRONTEND=noninteractive apt-get -qq -o DPkg::Lock::Timeout=600 install -y $PY $PY-venv"
REMOTE+="; $PY -m venv ~/rf_jax_venv; fi; fi"
REMOTE+="; cd ~/rf_jax; ~/rf_jax_venv/bin/pip install -q --upgrade pip"
REMOTE+="; ~/rf_jax_venv/bin/pip install -q -e \".[tpu]\""

run tar -C "$REPO" --exclude=.git --exclude=.venv --exclude=venv --exclude=workdirs \
  --exclude=__pycache__ --exclude='*.egg-info' --exclude=.pytest_cache -czf "$TARBALL" .
run gcloud compute tpus tpu-vm scp "$TARBALL" "$OPT_NAME:rf_jax.tar.gz" --zone="$OPT_ZONE" \
  --worker=all ${PROJECT[@]+"${PROJECT[@]}"}
run gcloud compute tpus tpu-vm ssh "$OPT_NAME" --zone="$OPT_ZONE" --worker=all \
  ${PROJECT[@]+"${PROJECT[@]}"} --command="$REMOTE"
