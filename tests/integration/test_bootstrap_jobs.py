"""The bootstrap Jobs of the bundle, run as the cluster runs them, against real servers:
idempotent (the second run changes nothing)."""

from __future__ import annotations

import json
import subprocess
import uuid
from pathlib import Path
from typing import Any

import pytest

from tests.integration.bundle_support import bundle, container_env, entry_command, expand

pytestmark = pytest.mark.integration
CONTAINER = "spec.template.spec.containers.0"


def run_job(name: str, overrides: dict[str, str], secrets: dict[Any, str], tmp: Path) -> Any:
    staging = bundle("staging")
    job = staging.find("Job", name)
    assert job is not None
    env = container_env(job, CONTAINER, staging, secrets=secrets, overrides=overrides, scratch=tmp)
    box = job.body["spec"]["template"]["spec"]["containers"][0]
    argv = expand([*box["command"], *box.get("args", [])], env)
    assert argv[0] == "python"
    argv[0] = entry_command()[0]  # the venv's interpreter for the image's

    result = subprocess.run(argv, env=env, cwd=tmp, capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr
    return json.loads(result.stdout)


def test_create_topics_job_creates_each_topic_once(kafka_brokers: str, tmp_path: Path) -> None:
    prefix = f"chatbot.t{uuid.uuid4().hex[:8]}"
    overrides = {"KAFKA_BROKERS": kafka_brokers, "TOPIC_PREFIX": prefix}
    first = run_job("chat-service-create-topics", overrides, {}, tmp_path)
    topics = [f"{prefix}.{suffix}" for suffix in
              ("messages.inbound", "messages.overflow", "messages.outbound", "messages.status",
               "audit")]  # fmt: skip
    assert first["created"] == topics
    second = run_job("chat-service-create-topics", overrides, {}, tmp_path)
    assert second["created"] == []
    # Staging asks for 3 partitions (chat-service-bootstrap); the topics have them.
    assert second["existing"] == dict.fromkeys(topics, 3)


def test_mongodb_indexes_job_creates_each_index_once(mongodb_server: str, tmp_path: Path) -> None:
    overrides = {"MONGODB_DATABASE": f"test_{uuid.uuid4().hex[:10]}"}
    secrets = {("chat-service-secrets", "mongodb-uri"): mongodb_server}
    first = run_job("chat-service-mongodb-indexes", overrides, secrets, tmp_path)
    assert "messages.tenant_channel_message_id_unique" in first["created"]
    assert "audit.recorded_at_ttl" in first["created"]
    second = run_job("chat-service-mongodb-indexes", overrides, secrets, tmp_path)
    assert second["created"] == []
    assert second["indexes"] == first["indexes"]


def test_analytics_migrate_job_applies_each_migration_once(
    postgres_server: str, tmp_path: Path
) -> None:
    from shared.devstack import postgres

    name = f"test_{uuid.uuid4().hex[:10]}"
    secrets = {
        ("chat-service-secrets", "postgres-url"): postgres.create_database(postgres_server, name)
    }
    try:
        first = run_job("chat-service-analytics-migrate", {}, secrets, tmp_path)
        assert first == {
            "database": name,
            "applied": ["0001_facts", "0002_reporting_views"],
            "schema_version": "0002",
        }
        second = run_job("chat-service-analytics-migrate", {}, secrets, tmp_path)
        assert second == {"database": name, "applied": [], "schema_version": "0002"}
    finally:
        postgres.drop_database(postgres_server, name)
