#!/usr/bin/env bash
# Create a Cloud TPU VM slice through a queued resource and wait until it is ACTIVE.
#
# Usage: launch/tpu_vm/create.sh --name=NAME --zone=ZONE --accelerator=TYPE
#            [--version=RUNTIME] [--spot] [--project=PROJECT]
#            [--poll=30] [--timeout=0] [--dry-run]
#
#   --name         queued-resource and node name (the node id is the same)
#   --zone         e.g. us-west4-a (v5e), us-east5-b (v6e)
#   --accelerator  accelerator type, e.g. v5litepod-32 (a v5e-32 slice: 8 hosts x 4 chips)
#   --version      TPU VM runtime image; default by accelerator:
#                    v5litepod-* / v5e-*  v2-alpha-tpuv5-lite
#                    v5p-*                v2-alpha-tpuv5
#                    v6e-*                v2-alpha-tpuv6e
#                    anything else        tpu-ubuntu2204-base   (v4, v3, v2)
#   --spot         Spot capacity: cheaper, can be preempted at any time (see watch.sh)
#   --project      GCP project; default: gcloud's configured project
#   --poll         seconds between state checks while waiting (default 30)
#   --timeout      give up waiting after this many seconds (default 0: wait for ever;
#                  a queued resource may wait hours for capacity)
#   --dry-run      print the commands (the state check once) and run nothing
#
# Exits 0 once the queued resource is ACTIVE, non-zero if it becomes FAILED or SUSPENDED.

set -euo pipefail
HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
# shellcheck source-path=SCRIPTDIR source=common.sh
source "$HERE/common.sh"

parse_args "name zone accelerator version project poll timeout" "spot" 0 "$@"
require name zone accelerator
check_name name "$OPT_NAME"
POLL=${OPT_POLL:-30}
TIMEOUT=${OPT_TIMEOUT:-0}
check_int poll "$POLL"
check_int timeout "$TIMEOUT"

if [[ -n ${OPT_VERSION:-} ]]; then
  VERSION=$OPT_VERSION
else
  case $OPT_ACCELERATOR in
    v5litepod-* | v5e-*) VERSION=v2-alpha-tpuv5-lite ;;
    v5p-*) VERSION=v2-alpha-tpuv5 ;;
    v6e-*) VERSION=v2-alpha-tpuv6e ;;
    *) VERSION=tpu-ubuntu2204-base ;;
  esac
fi

PROJECT=()
if [[ -n ${OPT_PROJECT:-} ]]; then PROJECT=(--project="$OPT_PROJECT"); fi
SPOT=()
if [[ $OPT_SPOT == 1 ]]; then SPOT=(--spot); fi

run gcloud compute tpus queued-resources create "$OPT_NAME" --node-id="$OPT_NAME" \
  --zone="$OPT_ZONE" --accelerator-type="$OPT_ACCELERATOR" --runtime-version="$VERSION" \
  ${SPOT[@]+"${SPOT[@]}"} ${PROJECT[@]+"${PROJECT[@]}"}

DESCRIBE=(gcloud compute tpus queued-resources describe "$OPT_NAME" --zone="$OPT_ZONE"
  --format='value(state.state)' ${PROJECT[@]+"${PROJECT[@]}"})
if [[ $DRY_RUN == 1 ]]; then
  run "${DESCRIBE[@]}"
  exit 0
fi

echo "waiting for queued resource $OPT_NAME to become ACTIVE (checking every ${POLL}s):" >&2
printf '+ %s\n' "$(join_cmd "${DESCRIBE[@]}")" >&2
start=$SECONDS
last=""
while :; do
  # A failed check (network, API hiccup) is reported and retried, not fatal.
  state=$("${DESCRIBE[@]}") || state="(state check failed)"
  if [[ $state != "$last" ]]; then
    echo "$(date '+%H:%M:%S') $OPT_NAME: $state" >&2
    last=$state
  fi
  case $state in
    ACTIVE) exit 0 ;;
    FAILED | SUSPENDED | SUSPENDING)
      die "queued resource $OPT_NAME is $state; delete it (delete.sh) and create it again"
      ;;
  esac
  if ((TIMEOUT > 0 && SECONDS - start >= TIMEOUT)); then
    die "queued resource $OPT_NAME not ACTIVE after ${TIMEOUT}s (state: $state); it stays queued"
  fi
  sleep "$POLL"
done
