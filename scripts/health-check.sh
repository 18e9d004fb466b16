#!/usr/bin/env bash
# Is every Service up? A table, and an exit status for CI.
set -euo pipefail

usage() {
  cat <<'USAGE'
Usage: scripts/health-check.sh ENV | URL... [--in-cluster]

ENV (staging, production): every Knative Service in the overlay's namespace — Ready, and
GET <url>/api/v2/health for the public ones (--in-cluster: the cluster-local ones too).
URL...: GET <url>/api/v2/health for each. Exit status 0 when all are healthy, else 1.
USAGE
}

# shellcheck source=lib/python.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib/python.sh"
run_module "shared.ops.health" "$@"
