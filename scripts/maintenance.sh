#!/usr/bin/env bash
# What needs a person: indexes, audit retention, dead letters. Exit 1 when anything does.
set -euo pipefail

usage() {
  cat <<'USAGE'
Usage: scripts/maintenance.sh [--json]

Checks, with the environment's settings (MONGODB_URI, MONGODB_DATABASE, KAFKA_BROKERS,
TOPIC_PREFIX, AUDIT_RETENTION_DAYS):
  indexes        every declared MongoDB index exists as declared, and no undeclared one
  audit          the audit TTL index keeps AUDIT_RETENTION_DAYS, nothing older is left
  dead letters   every dead-letter topic's count, by error code
Exit status 0 when nothing needs a person, 1 when something does (or a check could not run).
USAGE
}

# shellcheck source=lib/python.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib/python.sh"
ARGUMENTS_OPTIONAL=1 run_module "shared.ops.maintenance" "$@"
