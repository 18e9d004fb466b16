"""Every Knative Service's container, started the way the image starts it, becomes healthy.

No Docker engine runs here, so the image's exact ENTRYPOINT runs from the project's venv with
the environment the staging bundle gives each Service (ConfigMap, env, Secrets), against real
Kafka, MongoDB, Redis and PostgreSQL: the manifests set everything a function needs to start
and be ready.
"""

from __future__ import annotations

import subprocess
import time
import urllib.error
import urllib.request
import uuid
from pathlib import Path

import pytest

from shared.catalog import by_name
from shared.deploy.model import CONTAINER
from shared.devstack.servers import free_port
from shared.web import HEALTH_PATH, LIVENESS_PATH
from tests.integration.bundle_support import ROOT, bundle, container_env, entry_command
from tests.integration.conftest import ANALYTICS_HASH_KEY

pytestmark = pytest.mark.integration


def status(url: str, timeout_s: float = 2.0) -> int | None:
    try:
        with urllib.request.urlopen(url, timeout=timeout_s) as response:
            return int(response.status)
    except urllib.error.HTTPError as exc:
        return exc.code
    except OSError:
        return None


def test_every_service_starts_from_the_image_entry_point_and_gets_ready(
    tmp_path: Path, kafka_brokers: str, redis_server: str, mongodb_server: str, postgres_url: str
) -> None:
    staging = bundle("staging")
    secrets = {
        ("chat-service-secrets", "redis-url"): redis_server,
        ("chat-service-secrets", "mongodb-uri"): mongodb_server,
        ("chat-service-secrets", "postgres-url"): postgres_url,
        ("chat-service-secrets", "analytics-hash-key"): ANALYTICS_HASH_KEY,
        ("chat-service-secrets", "api-jwt-secret"): "api-jwt-secret-for-tests-0123456789abcdef",
    }
    started = {}
    try:
        for doc in staging.of_kind("Service"):
            scratch = tmp_path / doc.name
            scratch.mkdir()
            port = free_port()
            env = container_env(
                doc,
                CONTAINER,
                staging,
                secrets=secrets,
                overrides={
                    "KAFKA_BROKERS": kafka_brokers,
                    "MONGODB_DATABASE": f"test_{uuid.uuid4().hex[:10]}",
                    "K_SERVICE": doc.name,  # set by Knative
                    "PORT": str(port),  # set by Knative
                },
                scratch=scratch,
            )
            assert env["FUNCTION_SOURCE"] == f"{ROOT}/functions/{doc.name}/main.py"
            log = open(scratch / "log", "wb")  # noqa: SIM115 (closed with the process)
            proc = subprocess.Popen(
                entry_command(), env=env, cwd=scratch, stdout=log, stderr=subprocess.STDOUT
            )
            started[doc.name] = (proc, port, log, scratch)
        assert set(started) == set(by_name())
        deadline = time.monotonic() + 60
        waiting = dict(started)
        while waiting and time.monotonic() < deadline:
            for name, (proc, port, _, scratch) in list(waiting.items()):
                assert proc.poll() is None, (scratch / "log").read_text()
                base = f"http://127.0.0.1:{port}"
                if status(base + HEALTH_PATH) == 200 and status(base + LIVENESS_PATH) == 200:
                    del waiting[name]
            time.sleep(0.2)
        logs = {name: (started[name][3] / "log").read_text()[-2000:] for name in waiting}
        assert not waiting, f"not ready within 60 s: {logs}"
    finally:
        for proc, _, _log, _ in started.values():
            proc.terminate()
        for proc, _, log, _ in started.values():
            try:
                proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                proc.kill()
            log.close()


def test_liveness_does_not_depend_on_dependencies(tmp_path: Path) -> None:
    """With nothing to connect to, readiness is 503 and liveness still 200."""
    staging = bundle("staging")
    doc = staging.find("Service", "message-processor")
    assert doc is not None
    port = free_port()
    nowhere = f"127.0.0.1:{free_port()}"
    env = container_env(
        doc,
        CONTAINER,
        staging,
        secrets={
            ("chat-service-secrets", "redis-url"): f"redis://{nowhere}/0",
            ("chat-service-secrets", "mongodb-uri"): f"mongodb://{nowhere}/",
        },
        overrides={"KAFKA_BROKERS": nowhere, "PORT": str(port), "K_SERVICE": doc.name},
        scratch=tmp_path,
    )
    proc = subprocess.Popen(
        entry_command(), env=env, cwd=tmp_path, stdout=subprocess.DEVNULL, stderr=subprocess.STDOUT
    )
    try:
        base = f"http://127.0.0.1:{port}"
        deadline = time.monotonic() + 30
        while status(base + LIVENESS_PATH) != 200 and time.monotonic() < deadline:
            time.sleep(0.1)
        assert status(base + LIVENESS_PATH) == 200
        # Readiness waits for MongoDB's server selection (2 s) before it answers 503.
        assert status(base + HEALTH_PATH, timeout_s=15) == 503
    finally:
        proc.terminate()
        proc.wait(timeout=10)
