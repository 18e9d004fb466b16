"""PostgreSQL for the local stack and the tests: the server at ``POSTGRES_URL``, else the one
answering on 127.0.0.1:5432 (trust auth, user ``postgres``), else an embedded one
(:func:`shared.devstack.servers.start_postgres`); and databases of their own on it.

``POSTGRES_URL`` names a database the caller may use as it is (the local stack migrates it);
the tests only use its server, to create a fresh database per run.
"""

from __future__ import annotations

import contextlib
import json
import secrets
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit, urlunsplit

LOCAL_URL = "postgresql://postgres@127.0.0.1:5432/postgres"
PORT = 5432


def answers(url: str, timeout_s: int = 2) -> bool:
    """A connection with these credentials succeeds."""
    import psycopg

    try:
        with psycopg.connect(url, connect_timeout=timeout_s):
            return True
    except psycopg.Error:
        return False


def with_database(url: str, name: str) -> str:
    """``url`` naming the database ``name`` instead of its own."""
    parts = urlsplit(url)
    return urlunsplit(parts._replace(path=f"/{name}"))


def create_database(url: str, name: str) -> str:
    """Create ``name`` on the server of ``url`` unless it exists; its URL."""
    import psycopg
    from psycopg import sql

    with psycopg.connect(_maintenance(url), autocommit=True) as conn:
        exists = conn.execute("SELECT 1 FROM pg_database WHERE datname = %s", (name,)).fetchone()
        if not exists:
            conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
    return with_database(url, name)


def drop_database(url: str, name: str) -> None:
    """Drop ``name``, disconnecting whoever is still connected to it (PostgreSQL ≥ 13)."""
    import psycopg
    from psycopg import sql

    with psycopg.connect(_maintenance(url), autocommit=True) as conn:
        statement = sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)")
        conn.execute(statement.format(sql.Identifier(name)))


def migrated(url: str) -> dict[str, object]:
    """Apply the analytics migrations to the database of ``url``."""
    import psycopg

    from shared.analytics.migrate import migrate

    with psycopg.connect(url, autocommit=True) as conn:
        return migrate(conn)


@contextlib.contextmanager
def scratch_database(url: str, name: str) -> Iterator[str]:
    """A database made for the block (migrated) and dropped after it."""
    database_url = create_database(url, name)
    try:
        migrated(database_url)
        yield database_url
    finally:
        drop_database(url, name)


def _maintenance(url: str) -> str:
    """The server's ``postgres`` database: where databases are created and dropped from."""
    return with_database(url, "postgres")


def hash_key(state_dir: Path) -> str:
    """The stack's ``ANALYTICS_HASH_KEY``, made on the first run and kept (owner-only) in
    ``<state dir>/analytics.json``, so the dev database's hashes stay comparable across runs."""
    path = state_dir / "analytics.json"
    if path.exists():
        document: dict[str, Any] = json.loads(path.read_text(encoding="utf-8"))
        return str(document["hash_key"])
    value = secrets.token_urlsafe(48)
    path.touch(mode=0o600, exist_ok=True)
    path.write_text(json.dumps({"hash_key": value}) + "\n", encoding="utf-8")
    return value
