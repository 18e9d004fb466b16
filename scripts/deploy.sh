#!/usr/bin/env bash
# Deploy an overlay of knative/ to its namespace, or leave the cluster as it was.
set -euo pipefail

usage() {
  cat <<'USAGE'
Usage: scripts/deploy.sh ENV [--timeout SECONDS]

Deploys knative/overlays/ENV (staging, production): renders and validates the bundle, runs the
bootstrap Jobs (topics, MongoDB indexes) and waits for them, applies it, waits for every
Service (kn service wait / describe) and runs the health check. On a failure every Service is
rolled back to the revision it was on, and the exit status is 1.

  DRY_RUN=1   print every command that would change the cluster instead of running it
  FORCE=1     production without the typed confirmation (CI)
  KUBECTL, KN the executables (default: kubectl and kn on the PATH)
USAGE
}

# shellcheck source=lib/python.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib/python.sh"
run_module "shared.ops.deploy" "$@"
