"""``/metrics`` under several gunicorn workers: whichever worker answers the scrape, it reports
what every worker counted (prometheus_client's multiprocess mode, in the image's
PROMETHEUS_MULTIPROC_DIR on the pod's /tmp emptyDir)."""

from __future__ import annotations

import subprocess
import time
import urllib.error
import urllib.request
from pathlib import Path

import pytest
from prometheus_client.parser import text_string_to_metric_families

from shared.deploy.model import CONTAINER
from shared.devstack.servers import free_port
from shared.web import LIVENESS_PATH
from tests.integration.bundle_support import bundle, container_env, entry_command, image_env

pytestmark = pytest.mark.integration

WORKERS = 3
LIVENESS_CALLS = 30
BAD_WEBHOOKS = 12


def request(url: str, data: bytes | None = None) -> int | None:
    req = urllib.request.Request(url, data=data, method="POST" if data is not None else "GET")
    if data is not None:
        req.add_header("Content-Type", "application/json")
        req.add_header("X-Hub-Signature-256", "sha256=" + "0" * 64)
    try:
        with urllib.request.urlopen(req, timeout=5) as response:
            return int(response.status)
    except urllib.error.HTTPError as exc:
        return exc.code
    except OSError:  # not listening yet
        return None


def sample(text: str, name: str, labels: dict[str, str]) -> float:
    """The sum of ``name``'s samples whose labels include ``labels``."""
    total = 0.0
    for family in text_string_to_metric_families(text):
        for s in family.samples:
            if s.name == name and labels.items() <= s.labels.items():
                total += s.value
    return total


def test_every_scrape_reports_what_all_workers_counted(
    tmp_path: Path, kafka_brokers: str, redis_server: str, mongodb_server: str
) -> None:
    assert image_env()["PROMETHEUS_MULTIPROC_DIR"].startswith("/tmp/")
    staging = bundle("staging")
    doc = staging.find("Service", "whatsapp-webhook")
    assert doc is not None
    port = free_port()
    env = container_env(
        doc,
        CONTAINER,
        staging,
        secrets={
            ("chat-service-secrets", "redis-url"): redis_server,
            ("chat-service-secrets", "mongodb-uri"): mongodb_server,
        },
        overrides={
            "KAFKA_BROKERS": kafka_brokers,
            "PORT": str(port),
            "K_SERVICE": doc.name,
            "WORKERS": str(WORKERS),
        },
        scratch=tmp_path,
    )
    metrics_dir = Path(env["PROMETHEUS_MULTIPROC_DIR"])
    metrics_dir.mkdir(parents=True)
    (metrics_dir / "counter_1.db").write_bytes(b"left over from a crashed container")
    log = open(tmp_path / "log", "wb")  # noqa: SIM115 (closed below)
    proc = subprocess.Popen(entry_command(), env=env, cwd=tmp_path, stdout=log, stderr=log)
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 30
        while request(base + LIVENESS_PATH) != 200:
            assert proc.poll() is None, (tmp_path / "log").read_text()
            assert time.monotonic() < deadline, (tmp_path / "log").read_text()
            time.sleep(0.1)
        for _ in range(LIVENESS_CALLS - 1):
            assert request(base + LIVENESS_PATH) == 200
        for _ in range(BAD_WEBHOOKS):
            assert request(base + "/", b'{"object": "whatsapp_business_account"}') == 401

        files = {p.name for p in metrics_dir.glob("*.db")}
        assert "counter_1.db" not in files  # the stale file was cleared at start
        pids = {name.rsplit("_", 1)[-1] for name in files}
        assert len(pids) >= 2, f"one worker answered everything: {files}"
        for _ in range(2 * WORKERS):  # several scrapes: each may reach another worker
            with urllib.request.urlopen(base + "/metrics", timeout=5) as response:
                text = response.read().decode()
            live = {"service": "whatsapp-webhook", "url_rule": LIVENESS_PATH, "status": "200"}
            assert sample(text, "flask_http_request_duration_seconds_count", live) == (
                LIVENESS_CALLS
            )
            rejected = {"channel": "whatsapp", "outcome": "rejected"}
            assert sample(text, "chat_ingress_requests_total", rejected) == BAD_WEBHOOKS
    finally:
        proc.terminate()
        proc.wait(timeout=10)
        log.close()
