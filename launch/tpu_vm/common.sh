# shellcheck shell=bash
# Shared helpers for launch/tpu_vm/*.sh and launch/gpu/*.sh; sourced, never run.
#
# parse_args "VALUE FLAGS" "BOOLEAN FLAGS" ALLOW_EXTRA "$@"
#   --name=VALUE       sets OPT_NAME (dashes become underscores: --gpus-per-node -> OPT_GPUS_PER_NODE)
#   --spot             sets OPT_SPOT=1 (boolean flags; unset ones are 0)
#   --dry-run          sets DRY_RUN=1: `run` prints commands instead of running them
#   --help, -h         prints the calling script's header comment and exits 0
#   -- ARGS...         collected in EXTRA (only when ALLOW_EXTRA is 1)
# require name zone  exits 2 with "error: missing required flag --name" if one is unset.
# run CMD ARGS...    --dry-run: prints the command, shell-quoted, on one line of stdout;
#                    otherwise echoes it to stderr as "+ CMD" and runs it.
# Works with bash >= 3.2 (macOS) as well as Linux bash.

# The model settings of a launch on an accelerator, passed before the user's trainer flags (so
# a later --config.model.X=... wins): the vendor's fused attention kernel (cuDNN through
# jax.nn.dot_product_attention on GPUs, Pallas splash attention on TPUs) and scanned layers
# (one compiled block, whatever the depth). See docs/guide.md, "Accelerators".
# shellcheck disable=SC2034  # read by the scripts that source this file
GPU_MODEL_FLAGS=(--config.model.attention=dot_product --config.model.scan_layers=True)
# shellcheck disable=SC2034
TPU_MODEL_FLAGS=(--config.model.attention=splash --config.model.scan_layers=True)

die() {
  echo "error: $*" >&2
  exit 2
}

usage() {
  # The comment block after the shebang, up to the first line that is not a comment.
  awk 'NR == 1 { next } /^#/ { sub(/^# ?/, ""); print; next } { exit }' "$0"
}

# quote WORD: the word as a POSIX shell would need it (like Python's shlex.quote); a
# --flag=VALUE word keeps its "--flag=" bare and quotes only the value.
_quote_plain() {
  local w=$1 q="'"
  if [[ -n $w && $w =~ ^[A-Za-z0-9_@%+=:,./-]+$ ]]; then
    printf '%s' "$w"
  else
    printf "'%s'" "${w//$q/$q\\$q$q}"
  fi
}

quote() {
  local w=$1
  if [[ $w =~ ^[A-Za-z0-9_@%+=:,./-]+$ ]]; then
    printf '%s' "$w"
  elif [[ $w =~ ^(--?[A-Za-z0-9_.-]+=)(.*)$ ]]; then
    printf '%s' "${BASH_REMATCH[1]}"
    _quote_plain "${BASH_REMATCH[2]}"
  else
    _quote_plain "$w"
  fi
}

# join_cmd ARGS...: one line, each argument quoted, separated by single spaces (no newline).
join_cmd() {
  local sep="" w
  for w in "$@"; do
    printf '%s' "$sep"
    quote "$w"
    sep=" "
  done
}

run() {
  if [[ ${DRY_RUN:-0} == 1 ]]; then
    printf '%s\n' "$(join_cmd "$@")"
    return 0
  fi
  printf '+ %s\n' "$(join_cmd "$@")" >&2
  "$@"
}

# run_on_all_workers LOG DRIVER: DRIVER (a quoted command line) in ~/rf_jax with its venv on
# every worker of --name, in the foreground, its output also kept in ~/rf_jax_logs/LOG.log;
# pipefail makes a failing driver fail the ssh command. Uses the caller's PROJECT array.
run_on_all_workers() {
  local remote="set -o pipefail && cd ~/rf_jax && source ~/rf_jax_venv/bin/activate"
  remote+=" && mkdir -p ~/rf_jax_logs && $2 2>&1 | tee ~/rf_jax_logs/$1.log"
  run gcloud compute tpus tpu-vm ssh "$OPT_NAME" --zone="$OPT_ZONE" --worker=all \
    ${PROJECT[@]+"${PROJECT[@]}"} --command="$remote"
}

_opt_var() {
  printf 'OPT_%s' "$(printf '%s' "$1" | tr 'a-z-' 'A-Z_')"
}

parse_args() {
  local value_flags=" $1 " bool_flags=" $2 " allow_extra=$3 arg key
  shift 3
  DRY_RUN=0
  # shellcheck disable=SC2034  # EXTRA is read by the scripts that source this file
  EXTRA=()
  for key in $value_flags; do unset "$(_opt_var "$key")"; done
  for key in $bool_flags; do printf -v "$(_opt_var "$key")" '%s' 0; done
  while (($#)); do
    arg=$1
    shift
    case $arg in
      -h | --help)
        usage
        exit 0
        ;;
      --dry-run) DRY_RUN=1 ;;
      --)
        [[ $allow_extra == 1 ]] || die "this script takes no arguments after -- (see --help)"
        for arg in "$@"; do
          # rf_jax.main has no --dry-run: one after -- is a misplaced dry run, not a real run.
          [[ $arg != --dry-run ]] || die "--dry-run must come before -- (after it go trainer flags)"
        done
        # shellcheck disable=SC2034
        EXTRA=("$@")
        break
        ;;
      --*=*)
        key=${arg%%=*}
        key=${key#--}
        [[ $value_flags == *" $key "* ]] || die "unknown flag --$key (see --help)"
        printf -v "$(_opt_var "$key")" '%s' "${arg#*=}"
        ;;
      --*)
        key=${arg#--}
        if [[ $bool_flags == *" $key "* ]]; then
          printf -v "$(_opt_var "$key")" '%s' 1
        elif [[ $value_flags == *" $key "* ]]; then
          die "flag --$key needs a value: --$key=VALUE"
        else
          die "unknown flag --$key (see --help)"
        fi
        ;;
      *) die "unexpected argument '$arg' (flags are --name=value; trainer flags go after --)" ;;
    esac
  done
}

require() {
  local key var
  for key in "$@"; do
    var=$(_opt_var "$key")
    [[ -n ${!var:-} ]] || die "missing required flag --$key (see --help)"
  done
}

# check_int FLAG VALUE: VALUE must be a non-negative integer.
check_int() {
  [[ $2 =~ ^[0-9]+$ ]] || die "--$1 must be a non-negative integer, got '$2'"
}

# check_name FLAG VALUE: VALUE is used bare in remote paths and resource names.
check_name() {
  [[ $2 =~ ^[A-Za-z0-9][A-Za-z0-9_.-]*$ ]] || die "--$1 may hold only letters, digits, '_', '.', '-', got '$2'"
}

# run_name_for WORKDIR: the last path component of WORKDIR (gs://b/x/ -> x), made safe for a
# file name; the log of a TPU run is ~/rf_jax_logs/<run>.log.
run_name_for() {
  local w=${1%/}
  w=${w##*/}
  w=$(printf '%s' "$w" | tr -c 'A-Za-z0-9_.-' '_')
  printf '%s' "${w:-run}"
}
