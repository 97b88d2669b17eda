#!/usr/bin/env bash
# Delete a TPU VM slice and its queued resource (billing stops; the VMs' disks are lost,
# the gs:// workdirs are kept).
#
# Usage: launch/tpu_vm/delete.sh --name=NAME --zone=ZONE [--project=PROJECT] [--dry-run]

set -euo pipefail
HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
# shellcheck source-path=SCRIPTDIR source=common.sh
source "$HERE/common.sh"

parse_args "name zone project" "" 0 "$@"
require name zone
check_name name "$OPT_NAME"
PROJECT=()
if [[ -n ${OPT_PROJECT:-} ]]; then PROJECT=(--project="$OPT_PROJECT"); fi

run gcloud compute tpus queued-resources delete "$OPT_NAME" --zone="$OPT_ZONE" --force --quiet \
  ${PROJECT[@]+"${PROJECT[@]}"}
