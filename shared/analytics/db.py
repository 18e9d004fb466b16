"""The PostgreSQL connection pool, made on first use, and the mapping of its outages to 503.

One :class:`psycopg_pool.ConnectionPool` per worker process (made after gunicorn forked it:
neither libpq connections nor the pool's threads survive a fork), at most
``POSTGRES_POOL_SIZE`` connections, each checked before it is handed out, so the first event
after a PostgreSQL restart gets a fresh connection instead of a 503 for a dead one. Waiting for
a connection is bounded by ``POSTGRES_TIMEOUT_S``: an outage is a 503 within that time and the
KafkaSource retries.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit

from shared.caching import per_process
from shared.errors import DependencyUnavailable, describe
from shared.settings import Settings, get_settings

if TYPE_CHECKING:
    from psycopg import Connection
    from psycopg_pool import ConnectionPool

DEPENDENCY = "postgres"
MIGRATE_HINT = "run `python -m shared.analytics migrate`"


def open_pool(settings: Settings) -> ConnectionPool:
    """A pool on ``POSTGRES_URL``; it connects in the background and on demand, not here."""
    from psycopg_pool import ConnectionPool  # lazy: keeps cold start short

    pool: ConnectionPool = ConnectionPool(
        settings.postgres_url,
        min_size=1,
        max_size=max(1, settings.postgres_pool_size),
        timeout=settings.postgres_timeout_s,
        kwargs={"autocommit": True, "connect_timeout": max(1, round(settings.postgres_timeout_s))},
        check=ConnectionPool.check_connection,
        # A pool that gave up reconnecting still makes new connections on demand; this only
        # bounds how long its background workers keep trying on their own.
        reconnect_timeout=max(30.0, settings.postgres_timeout_s),
        name="analytics",
        open=False,
    )
    pool.open(wait=False)
    return pool


@per_process
def get_pool() -> ConnectionPool:
    """The process's pool on the configured database."""
    return open_pool(get_settings())


@contextlib.contextmanager
def connection(conn_or_pool: Any) -> Iterator[Connection[Any]]:
    """A connection from a pool (returned to it afterwards), or the connection given."""
    from psycopg_pool import ConnectionPool

    if isinstance(conn_or_pool, ConnectionPool):
        with conn_or_pool.connection() as conn:
            yield conn
    else:
        yield conn_or_pool


@contextlib.contextmanager
def unavailable_as_503() -> Iterator[None]:
    """Connection-level failures (refused, lost, no connection within the pool's timeout, a
    server shutting down or read-only) and a database without the schema become
    :class:`DependencyUnavailable`: retry later, nothing was written."""
    import psycopg
    from psycopg import errors

    try:
        yield
    except (errors.UndefinedTable, errors.UndefinedColumn, errors.UndefinedFunction) as exc:
        raise DependencyUnavailable(
            f"the analytics schema is missing or old ({MIGRATE_HINT}): {describe(exc)}",
            dependency=DEPENDENCY,
        ) from exc
    except (psycopg.OperationalError, psycopg.InterfaceError, errors.ReadOnlySqlTransaction) as exc:
        # OperationalError covers psycopg_pool.PoolTimeout, AdminShutdown, CannotConnectNow and
        # serialization failures; InterfaceError a connection closed under us.
        raise DependencyUnavailable(
            f"PostgreSQL unavailable: {describe(exc)}", dependency=DEPENDENCY
        ) from exc


def reachable(pool: ConnectionPool, timeout_s: float = 2.0) -> bool:
    """One round trip on a pooled connection (the readiness check)."""
    try:
        with pool.connection(timeout=timeout_s) as conn:
            conn.execute("SELECT 1")
        return True
    except Exception:
        return False


def database_name(url: str) -> str:
    """The database a URI names, for logs and the migrate command's output (no credentials)."""
    path = urlsplit(url).path.lstrip("/")
    return path or "(default)"
