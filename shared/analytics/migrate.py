"""Versioned SQL migrations of the analytics store (``migrations/NNNN_name.sql``, package data).

Applied in order by :func:`migrate` (``python -m shared.analytics migrate``, the bootstrap Job
``chat-service-analytics-migrate``, the local stack): each file in a transaction of its own,
recorded in ``schema_migrations`` with a checksum of its text. A second run applies nothing.
A session advisory lock makes concurrent runs (two Jobs, a Job and a developer) take turns. A
migration changed after it was applied is refused: write a new one instead.
"""

from __future__ import annotations

import hashlib
import re
from importlib import resources
from typing import Any

from shared.dataclass import dataclass

# pg_advisory_lock key: "chat-service analytics migrations" as a stable 63-bit number.
LOCK_KEY = int.from_bytes(hashlib.sha256(b"chat-service analytics migrations").digest()[:8]) >> 1
FILE_NAME = re.compile(r"^(\d{4})_[a-z0-9_]+\.sql$")


class MigrationError(RuntimeError):
    pass


@dataclass(frozen=True)
class Migration:
    version: str  # "0001"
    name: str  # "0001_facts"
    sql: str

    @property
    def checksum(self) -> str:
        return hashlib.sha256(self.sql.encode("utf-8")).hexdigest()


def migrations() -> list[Migration]:
    """Every migration shipped with the package, in version order."""
    found = []
    for entry in resources.files("shared.analytics").joinpath("migrations").iterdir():
        match = FILE_NAME.match(entry.name)
        if match is None:
            continue
        found.append(
            Migration(match.group(1), entry.name.removesuffix(".sql"), entry.read_text("utf-8"))
        )
    found.sort(key=lambda m: m.version)
    versions = [m.version for m in found]
    if len(set(versions)) != len(versions):
        raise MigrationError(f"two migrations share a version: {versions}")
    return found


def migrate(conn: Any) -> dict[str, Any]:
    """Apply what is not applied yet on ``conn`` (a psycopg connection in autocommit mode):
    ``{"applied": [names this run applied], "schema_version": "NNNN"}``."""
    wanted = migrations()
    conn.execute("SELECT pg_advisory_lock(%s)", (LOCK_KEY,))
    try:
        conn.execute(
            "CREATE TABLE IF NOT EXISTS schema_migrations ("
            " version text PRIMARY KEY, name text NOT NULL, checksum text NOT NULL,"
            " applied_at timestamptz NOT NULL DEFAULT now())"
        )
        rows = conn.execute("SELECT version, name, checksum FROM schema_migrations").fetchall()
        done = {version: (name, checksum) for version, name, checksum in rows}
        unknown = sorted(set(done) - {m.version for m in wanted})
        if unknown:  # a newer release migrated this database: this one may not fit it
            raise MigrationError(f"the database has migrations this release lacks: {unknown}")
        applied = []
        for migration in wanted:
            if migration.version in done:
                name, checksum = done[migration.version]
                if (name, checksum) != (migration.name, migration.checksum):
                    raise MigrationError(
                        f"migration {migration.name} differs from the {name} applied: "
                        "applied migrations are never edited, add a new one"
                    )
                continue
            with conn.transaction():
                conn.execute(migration.sql)
                conn.execute(
                    "INSERT INTO schema_migrations (version, name, checksum) VALUES (%s, %s, %s)",
                    (migration.version, migration.name, migration.checksum),
                )
            applied.append(migration.name)
    finally:
        conn.execute("SELECT pg_advisory_unlock(%s)", (LOCK_KEY,))
    return {"applied": applied, "schema_version": wanted[-1].version if wanted else None}
