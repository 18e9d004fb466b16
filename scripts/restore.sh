#!/usr/bin/env bash
# Restore a backup made by scripts/backup.sh: python -m shared.ops.backup restore.
set -euo pipefail

usage() {
  cat <<'USAGE'
Usage: scripts/restore.sh --from DIR [--uri MONGODB_URI] [--database NAME] [--force]

Verifies every file of the backup in DIR against its manifest (SHA-256 and document count)
before writing anything, then recreates each collection: its documents, inserted in batches,
and its indexes with the same names and options. Pause the event handlers first
(docs/runbooks/backup-and-recovery.md#restore).

  --from DIR         a directory written by scripts/backup.sh
  --uri URI          default: $MONGODB_URI (prefer the variable: a command line, password
                     included, is visible in the process list)
  --database NAME    default: $MONGODB_DATABASE, else chat_service
  --force            empty and replace collections that already hold documents (without it,
                     the restore refuses and changes nothing)

Prints a JSON summary. Exit status: 0 done, 1 failed (corrupt backup, a collection not empty
without --force, MongoDB unreachable, …; the message says why), 2 usage.
USAGE
}

# shellcheck source=lib/python.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib/python.sh"
run_module "shared.ops.backup restore" "$@"
