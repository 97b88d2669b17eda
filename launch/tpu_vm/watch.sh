#!/usr/bin/env bash
# Keep a (Spot) TPU VM run alive: when the slice is preempted or fails, delete it, create
# it again, set it up and restart the run in the same workdir, which resumes from the
# newest checkpoint.
#
# Usage: launch/tpu_vm/watch.sh --name=NAME --zone=ZONE --accelerator=TYPE
#            --config=configs/phase1.py[:preset] --workdir=gs://BUCKET/PATH
#            [--interval=300] [--version=RUNTIME] [--spot] [--project=PROJECT]
#            [--run=RUN] [--repo=PATH] [--python=python3.11] [--dry-run]
#            [-- TRAINER FLAGS...]
#
#   --interval  seconds between state checks (default 300)
#   the other flags are those of create.sh, setup.sh and run.sh, passed on unchanged
#
# Every --interval seconds it reads the queued resource's state:
#   ACTIVE                          nothing to do (the run started by run.sh goes on)
#   SUSPENDED, SUSPENDING, FAILED   delete.sh, create.sh, setup.sh, run.sh (in that order)
#   not found                       create.sh, setup.sh, run.sh
#   anything else (queued, provisioning) or a failed check: wait for the next check
# It never stops by itself (Ctrl-C ends it; the slice and run are left as they are).
# With --dry-run it prints one iteration: the state check, the recovery commands of
# delete.sh, create.sh, setup.sh and run.sh (as their own --dry-run prints them), the sleep.

set -euo pipefail
HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
# shellcheck source-path=SCRIPTDIR source=common.sh
source "$HERE/common.sh"

parse_args "name zone accelerator config workdir interval version project run repo python" \
  "spot" 1 "$@"
require name zone accelerator config workdir
check_name name "$OPT_NAME"
INTERVAL=${OPT_INTERVAL:-300}
check_int interval "$INTERVAL"

BASE=(--name="$OPT_NAME" --zone="$OPT_ZONE")
if [[ -n ${OPT_PROJECT:-} ]]; then BASE+=(--project="$OPT_PROJECT"); fi
if [[ $DRY_RUN == 1 ]]; then BASE+=(--dry-run); fi
CREATE=("${BASE[@]}" --accelerator="$OPT_ACCELERATOR")
if [[ -n ${OPT_VERSION:-} ]]; then CREATE+=(--version="$OPT_VERSION"); fi
if [[ $OPT_SPOT == 1 ]]; then CREATE+=(--spot); fi
SETUP=("${BASE[@]}")
if [[ -n ${OPT_REPO:-} ]]; then SETUP+=(--repo="$OPT_REPO"); fi
if [[ -n ${OPT_PYTHON:-} ]]; then SETUP+=(--python="$OPT_PYTHON"); fi
RUNARGS=("${BASE[@]}" --config="$OPT_CONFIG" --workdir="$OPT_WORKDIR")
if [[ -n ${OPT_RUN:-} ]]; then RUNARGS+=(--run="$OPT_RUN"); fi
RUNARGS+=(-- ${EXTRA[@]+"${EXTRA[@]}"})

DESCRIBE=(gcloud compute tpus queued-resources describe "$OPT_NAME" --zone="$OPT_ZONE"
  --format='value(state.state)')
if [[ -n ${OPT_PROJECT:-} ]]; then DESCRIBE+=(--project="$OPT_PROJECT"); fi

note() { echo "$(date '+%Y-%m-%d %H:%M:%S') watch $OPT_NAME: $*" >&2; }

relaunch() { # relaunch delete|nodelete
  if [[ $1 == delete ]]; then bash "$HERE/delete.sh" "${BASE[@]}" || return 1; fi
  bash "$HERE/create.sh" "${CREATE[@]}" &&
    bash "$HERE/setup.sh" "${SETUP[@]}" &&
    bash "$HERE/run.sh" "${RUNARGS[@]}"
}

if [[ $DRY_RUN == 1 ]]; then
  run "${DESCRIBE[@]}"
  relaunch delete
  run sleep "$INTERVAL"
  exit 0
fi

note "checking every ${INTERVAL}s: $(join_cmd "${DESCRIBE[@]}")"
while :; do
  if out=$("${DESCRIBE[@]}" 2>&1); then state=$out; elif [[ $out == *NOT_FOUND* ]]; then
    state=NOT_FOUND
  else
    state="CHECK_FAILED"
    note "state check failed: ${out//$'\n'/ }"
  fi
  case $state in
    ACTIVE | CHECK_FAILED) ;;
    SUSPENDED | SUSPENDING | FAILED | NOT_FOUND)
      note "queued resource is $state: recreating it and restarting the run"
      if [[ $state == NOT_FOUND ]]; then mode=nodelete; else mode=delete; fi
      if relaunch "$mode"; then
        note "run restarted in $OPT_WORKDIR"
      else
        note "recovery failed; trying again at the next check"
      fi
      ;;
    *) note "state $state; waiting" ;;
  esac
  sleep "$INTERVAL"
done
