# shellcheck shell=bash
# Sourced by the operations scripts: the repository root, the Python to run commands with
# (PYTHON, else the project's .venv, else python3 — the image has python on its PATH) and
# run_module, what every script ends with.
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
if [[ -z "${PYTHON:-}" ]]; then
  if [[ -x "$ROOT/.venv/bin/python" ]]; then PYTHON="$ROOT/.venv/bin/python"; else PYTHON=python3; fi
fi
export ROOT PYTHON

# run_module "MODULE [FIXED ARG…]" [ARG…]: -h/--help anywhere prints the calling script's
# usage(); no ARG at all prints it too and exits 2, unless ARGUMENTS_OPTIONAL=1. No cd: paths
# in the arguments are the caller's; PYTHONPATH finds the project without its venv.
run_module() {
  local -a command
  read -ra command <<<"$1"
  shift
  local argument
  for argument in "$@"; do
    case "$argument" in
      -h | --help) usage; exit 0 ;;
    esac
  done
  if [[ $# -eq 0 && "${ARGUMENTS_OPTIONAL:-0}" != 1 ]]; then
    usage >&2
    exit 2
  fi
  export PYTHONPATH="$ROOT${PYTHONPATH:+:$PYTHONPATH}"
  exec "$PYTHON" -m "${command[@]}" "$@"
}
