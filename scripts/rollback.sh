#!/usr/bin/env bash
# Send all of a Service's traffic back to a ready revision, and verify it.
set -euo pipefail

usage() {
  cat <<'USAGE'
Usage: scripts/rollback.sh SERVICE [REVISION] [-n NAMESPACE]

Routes 100 % of SERVICE's traffic to REVISION, or to the newest ready revision older than the
one serving most traffic now (kn service update SERVICE --traffic REVISION=100), then checks
that the Service is Ready with all traffic there. Namespace: -n, else NAMESPACE, else
chat-service. DRY_RUN=1 prints the change instead of making it.
USAGE
}

# shellcheck source=lib/python.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib/python.sh"
run_module "shared.ops.rollback" "$@"
