#!/usr/bin/env bash
# Back up the service's MongoDB database to a new directory: python -m shared.ops.backup backup.
set -euo pipefail

usage() {
  cat <<'USAGE'
Usage: scripts/backup.sh --out DIR [--uri MONGODB_URI] [--database NAME]

Copies every collection of the database (the service's own and any other, marked
"owned": false) into DIR: one gzip'd BSON file per collection and a manifest.json with each
collection's document count, SHA-256 and indexes. DIR must not exist or be empty; the backup
appears there only once it is complete.

  --out DIR          the backup directory to create
  --uri URI          default: $MONGODB_URI (prefer the variable: a command line, password
                     included, is visible in the process list)
  --database NAME    default: $MONGODB_DATABASE, else chat_service

Prints a JSON summary. Exit status: 0 done, 1 failed (MongoDB unreachable, DIR not empty, …;
the message says why), 2 usage. Check a backup with:
  .venv/bin/python -m shared.ops.backup verify --from DIR
Runbook: docs/runbooks/backup-and-recovery.md
USAGE
}

# shellcheck source=lib/python.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib/python.sh"
run_module "shared.ops.backup backup" "$@"
