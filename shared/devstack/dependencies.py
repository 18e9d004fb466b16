"""The servers the functions talk to: the one given by URL, else an embedded one.

``KAFKA_BROKERS`` / ``MONGODB_URI`` / ``REDIS_URL`` / ``MCP_ENGINE_URL`` / ``SECURITY_HUB_URL``
/ ``POSTGRES_URL`` name servers the developer runs; without them the stack starts Tansu,
SecantusDB and the reference gRPC servers (:mod:`shared.refservers`), for Redis first tries the
usual local server (``redis://127.0.0.1:6379``) before starting Valkey, and for PostgreSQL the
local server (127.0.0.1:5432) before starting the embedded one (:mod:`.postgres`). The channel
sandbox is always local: it stands in for the WhatsApp, Slack and Telegram APIs. Embedded
servers prefer their standard port, so tools pointed at the defaults work, and take a free one
when it is taken.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path

from shared.dataclass import dataclass
from shared.devstack import devdata, servers
from shared.devstack import postgres as postgres_servers
from shared.devstack import sandbox as channel_sandbox
from shared.devstack.functions import log_tail, port_free

LOCAL_REDIS_URL = "redis://127.0.0.1:6379/0"
KAFKA_PORT = 9092
MONGODB_PORT = 27017


MCP_ENGINE_PORT = 50051
SECURITY_HUB_PORT = 50052
SANDBOX_PORT = 8790
DEV_DATABASE = "chat_analytics_dev"


@dataclass
class Dependency:
    name: str
    url: str
    embedded: bool
    note: str
    server: servers.Server | None = None
    # Without an essential server nothing works, so the stack stops when it dies. The others
    # are reported and the stack keeps running: the bot falls back to its rules without the
    # engine, and a developer (or a test) may stop one on purpose to see exactly that.
    essential: bool = True


@contextmanager
def _explained(name: str, log_path: Path) -> Iterator[None]:
    """A server that does not come up is reported with the end of its own log."""
    try:
        yield
    except servers.ServerError as exc:
        tail = log_tail(log_path)
        message = f"embedded {name} did not start: {exc}; log {log_path}:\n{tail}"
        raise servers.ServerError(message) from exc


def _port(preferred: int, standard_ports: bool) -> int | None:
    """``None`` lets :mod:`servers` pick a free port."""
    return preferred if standard_ports and port_free(preferred) else None


def kafka(env: Mapping[str, str], log_dir: Path, standard_ports: bool) -> Dependency:
    if env.get("KAFKA_BROKERS", "").strip():
        return Dependency("kafka", env["KAFKA_BROKERS"].strip(), False, "from KAFKA_BROKERS")
    with _explained("Kafka", log_dir / "kafka.log"):
        server = servers.start_kafka(_port(KAFKA_PORT, standard_ports), log_dir / "kafka.log")
    return Dependency("kafka", server.url, True, "embedded Tansu, memory storage", server)


def mongodb(
    env: Mapping[str, str],
    state_dir: Path,
    log_dir: Path,
    standard_ports: bool,
    keep_data: bool = False,
) -> Dependency:
    """``MONGODB_URI`` as it is, else SecantusDB standalone (no oplog: :mod:`.devdata` says
    why) on a fresh data directory unless ``keep_data``."""
    if env.get("MONGODB_URI", "").strip():
        return Dependency("mongodb", env["MONGODB_URI"].strip(), False, "from MONGODB_URI")
    data_dir = state_dir / "mongodb"
    if not keep_data:
        devdata.fresh(data_dir)
    with _explained("MongoDB", log_dir / "mongodb.log"):
        port = _port(MONGODB_PORT, standard_ports)
        server = servers.start_mongodb(port, data_dir, log_dir / "mongodb.log", standalone=True)
    kept = "kept from earlier runs (--keep-data)" if keep_data else "fresh this run"
    note = f"embedded SecantusDB, data in {data_dir}, {kept}"
    return Dependency("mongodb", server.url, True, note, server)


def redis(
    env: Mapping[str, str], log_dir: Path, reachable: Callable[[str], bool] | None = None
) -> Dependency:
    if env.get("REDIS_URL", "").strip():
        return Dependency("redis", env["REDIS_URL"].strip(), False, "from REDIS_URL")
    from shared.cache import redis_reachable

    if (reachable or redis_reachable)(LOCAL_REDIS_URL):
        return Dependency("redis", LOCAL_REDIS_URL, False, "the Redis already running locally")
    with _explained("Redis", log_dir / "redis.log"):
        server = servers.start_redis(log_path=log_dir / "redis.log")
    return Dependency("redis", server.url, True, "embedded Valkey, no persistence", server)


def postgres(
    env: Mapping[str, str], state_dir: Path, log_dir: Path, standard_ports: bool
) -> Dependency:
    """The analytics store, migrated: ``POSTGRES_URL`` as it is, else a dev database on the
    local server (5432) or on an embedded one. Not essential: without it only analytics-sink
    waits (503, its events stay in Kafka)."""
    if env.get("POSTGRES_URL", "").strip():
        url = env["POSTGRES_URL"].strip()
        postgres_servers.migrated(url)
        return Dependency("postgres", url, False, "from POSTGRES_URL", essential=False)
    if postgres_servers.answers(postgres_servers.LOCAL_URL):
        url = postgres_servers.create_database(postgres_servers.LOCAL_URL, DEV_DATABASE)
        postgres_servers.migrated(url)
        note = f"the PostgreSQL already running locally, database {DEV_DATABASE}"
        return Dependency("postgres", url, False, note, essential=False)
    data_dir = state_dir / "postgres"
    with _explained("PostgreSQL", log_dir / "postgres.log"):
        port = _port(postgres_servers.PORT, standard_ports)
        server = servers.start_postgres(port, data_dir, log_dir / "postgres.log")
    url = postgres_servers.create_database(server.url, DEV_DATABASE)
    postgres_servers.migrated(url)
    note = f"embedded PostgreSQL, data in {data_dir}, database {DEV_DATABASE}"
    return Dependency("postgres", url, True, note, server, essential=False)


def mcp_engine(
    env: Mapping[str, str], root: Path, log_dir: Path, standard_ports: bool
) -> Dependency:
    note = "reference server, rules in shared/bot/default_rules.json"
    return _grpc_service(
        "mcp-engine", "MCP engine", "MCP_ENGINE_URL", MCP_ENGINE_PORT, note,
        env, root, log_dir, standard_ports,
    )  # fmt: skip


def security_hub(
    env: Mapping[str, str], root: Path, log_dir: Path, standard_ports: bool
) -> Dependency:
    note = "reference server, PII redaction, no blocklist"
    return _grpc_service(
        "security-hub", "Security Hub", "SECURITY_HUB_URL", SECURITY_HUB_PORT, note,
        env, root, log_dir, standard_ports,
    )  # fmt: skip


def _grpc_service(
    name: str,
    label: str,
    env_var: str,
    preferred_port: int,
    note: str,
    env: Mapping[str, str],
    root: Path,
    log_dir: Path,
    standard_ports: bool,
) -> Dependency:
    """The service at ``env_var`` if set, else its reference server (``shared.refservers``).
    Not essential: the stack keeps running without it (the bot falls back, or retries)."""
    url = env.get(env_var, "").strip()
    if url:
        return Dependency(name, url, False, f"from {env_var}", essential=False)
    log_path = log_dir / f"{name}.log"
    with _explained(label, log_path):
        server = servers.start_module(
            name,
            f"shared.refservers.{name.replace('-', '_')}",
            _port(preferred_port, standard_ports),
            log_path,
            root=root,
        )
    return Dependency(name, server.url, True, note, server, essential=False)


def sandbox(root: Path, log_dir: Path, standard_ports: bool) -> Dependency:
    log_path = log_dir / "sandbox.log"
    with _explained("channel sandbox", log_path):
        server = channel_sandbox.start(_port(SANDBOX_PORT, standard_ports), log_path, root)
    from shared.devstack.sandbox import apis

    note = f"{', '.join(apis())} APIs; records every call"
    return Dependency("sandbox", server.url, True, note, server, essential=False)


def ensure_topics(brokers: str, topics: list[str], timeout_s: float = 20.0) -> None:
    """Create the topics, retrying while a just-started broker finishes starting."""
    from shared.kafka import ensure_topics as create

    deadline = time.monotonic() + timeout_s
    while True:
        try:
            create(brokers.split(","), topics)
            return
        except Exception as exc:
            if time.monotonic() > deadline:
                raise servers.ServerError(
                    f"could not create topics on Kafka at {brokers}: {type(exc).__name__}: {exc}"
                ) from exc
            time.sleep(0.5)
