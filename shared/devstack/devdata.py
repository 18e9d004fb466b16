"""Keeping the local stack's embedded MongoDB fast: a fresh database every run, and a warning
when data kept with ``--keep-data`` grows past what the embedded server handles well.

Measured on 2 cores (SecantusDB 0.7.0b3, see :func:`shared.devstack.servers.start_mongodb`):
run as a replica set, its inserts fall from ~2,000/s to ~50-130/s once ~10,000 writes sit in
its oplog, and a persisted oplog keeps a restarted server slow (~350/s); the stack therefore
runs it standalone (no oplog), where inserts hold 1,000-1,500/s up to ~150,000 documents and
then decline slowly (~950/s at 230,000). So:

- ``make run`` starts from an empty data directory unless ``--keep-data`` (dev data is made
  by the stack's own traffic; the dev tenant's secrets live in ``tenants.json``, not here);
- with ``--keep-data`` the stack counts the documents at start and every few minutes, and
  warns once past :data:`WARN_DOCUMENTS`, or when the data holds an oplog of more than
  :data:`WARN_OPLOG_ENTRIES` entries (a directory written by a replica-set server).
"""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import Any

from shared.dataclass import dataclass

WARN_DOCUMENTS = 150_000
WARN_OPLOG_ENTRIES = 8_000
SYSTEM_DATABASES = frozenset({"admin", "config", "local"})


@dataclass(frozen=True)
class DataSize:
    documents: int  # in every database but the system ones
    oplog_entries: int

    def warning(self) -> str | None:
        """What to tell the developer, or ``None`` while the embedded server stays fast."""
        if self.oplog_entries > WARN_OPLOG_ENTRIES:
            return (
                f"the embedded MongoDB's data holds an oplog of {self.oplog_entries:,} entries "
                f"(over {WARN_OPLOG_ENTRIES:,}, written by an earlier replica-set run): every "
                "write is several times slower. Start once without --keep-data for a fresh "
                "database."
            )
        if self.documents > WARN_DOCUMENTS:
            return (
                f"the embedded MongoDB holds {self.documents:,} documents (over "
                f"{WARN_DOCUMENTS:,}): past this size its writes slow down and every reply "
                "takes longer. Start without --keep-data for a fresh database."
            )
        return None


def fresh(data_dir: Path) -> bool:
    """Empty ``data_dir`` for a new database; whether there was anything to remove."""
    existed = data_dir.exists() and any(data_dir.iterdir())
    shutil.rmtree(data_dir, ignore_errors=True)
    data_dir.mkdir(parents=True, exist_ok=True)
    return existed


def measure(uri: str, timeout_s: float = 3.0) -> DataSize:
    """Documents and oplog entries on the server at ``uri`` (counts from collection metadata,
    cheap even on a large database)."""
    from pymongo import MongoClient

    client: MongoClient[dict[str, Any]] = MongoClient(
        uri, serverSelectionTimeoutMS=int(timeout_s * 1000), directConnection=True
    )
    try:
        documents = 0
        for name in client.list_database_names():
            if name in SYSTEM_DATABASES:
                continue
            database = client[name]
            for collection in database.list_collection_names():
                if not collection.startswith("system."):
                    documents += database[collection].estimated_document_count()
        local = client["local"]
        oplog = "oplog.rs" in local.list_collection_names()
        entries = local["oplog.rs"].estimated_document_count() if oplog else 0
        return DataSize(documents, entries)
    finally:
        client.close()
