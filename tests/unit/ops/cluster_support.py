"""A stub cluster for the operations scripts: ``kubectl``/``kn`` stand-ins first on the PATH
(tests/stubs/cluster.py), a state file they share, a log of every call, a health endpoint for
the public Services and a scripted Prometheus HTTP API."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import threading
import urllib.parse
from collections.abc import Callable, Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[3]
STUB = ROOT / "tests" / "stubs" / "cluster.py"
FUNCTIONS = sorted(p.parent.name for p in (ROOT / "functions").glob("*/main.py"))
HANDLERS = {
    "message-processor",
    "outbound-dispatcher",
    "status-tracker",
    "audit-logger",
    "analytics-sink",
}


class Endpoint:
    """An HTTP server on a free port answering GET requests with ``answer(path)``."""

    def __init__(self, answer: Callable[[str], tuple[int, Any]]) -> None:
        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                status, body = answer(self.path)
                payload = json.dumps(body).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(payload)))
                self.end_headers()
                self.wfile.write(payload)

            def log_message(self, format: str, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_port}"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


class StubCluster:
    def __init__(self, tmp: Path) -> None:
        self.tmp = tmp
        self.unhealthy: set[str] = set()
        self.health = Endpoint(self._health)
        bin_dir = tmp / "bin"
        bin_dir.mkdir()
        for tool in ("kubectl", "kn"):  # the stub answers as the tool it is called as
            wrapper = bin_dir / tool
            wrapper.write_text(
                f'#!/bin/sh\nSTUB_TOOL={tool} exec "{sys.executable}" "{STUB}" "$@"\n'
            )
            wrapper.chmod(0o755)
        self.log = tmp / "calls.jsonl"
        self.state_path = tmp / "state.json"
        self.env = {
            **os.environ,
            "PATH": f"{bin_dir}{os.pathsep}{os.environ['PATH']}",
            "STUB_LOG": str(self.log),
            "STUB_STATE": str(self.state_path),
            "STUB_REAL_KUBECTL": str(Path(sys.executable).parent / "kubectl"),
            "PYTHON": sys.executable,
        }
        for name in ("KUBECTL", "KN", "DRY_RUN", "FORCE", "NAMESPACE"):
            self.env.pop(name, None)
        self.state: dict[str, Any] = {
            "services": {name: self._service(name) for name in FUNCTIONS},
            "jobs_complete": True,
        }
        self.save()

    def _service(self, name: str) -> dict[str, Any]:
        first = f"{name}-00001"
        return {
            "revisions": [{"name": first, "created": "2026-11-30T00:00:00Z", "ready": True}],
            "traffic": {first: 100},
            "url": f"{self.health.url}/{name}",
            "visibility": "cluster-local" if name in HANDLERS else "public",
            "next_ready": True,
        }

    def _health(self, path: str) -> tuple[int, Any]:
        name = path.strip("/").split("/")[0]
        if name in self.unhealthy:
            return 503, {"status": "unavailable", "service": name}
        return 200, {"status": "ok", "service": name}

    def save(self) -> None:
        self.state_path.write_text(json.dumps(self.state), encoding="utf-8")

    def load(self) -> dict[str, Any]:
        self.state = json.loads(self.state_path.read_text(encoding="utf-8"))
        return self.state

    def add_revision(self, service: str, ready: bool = True, traffic: bool = False) -> str:
        revisions = self.state["services"][service]["revisions"]
        name = f"{service}-{len(revisions) + 1:05d}"
        revisions.append(
            {"name": name, "created": f"2026-12-01T00:{len(revisions):02d}:00Z", "ready": ready}
        )
        if traffic:
            self.state["services"][service]["traffic"] = {name: 100}
        self.save()
        return name

    def calls(self) -> list[dict[str, Any]]:
        if not self.log.exists():
            return []
        return [json.loads(line) for line in self.log.read_text().splitlines()]

    def commands(self) -> list[str]:
        return [" ".join([c["tool"], *c["argv"]]) for c in self.calls()]

    def run(self, script: str, *args: str, **env: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [str(ROOT / "scripts" / script), *args],
            env={**self.env, **env},
            capture_output=True,
            text=True,
            stdin=subprocess.DEVNULL,
            timeout=120,
            check=False,
        )

    def close(self) -> None:
        self.health.close()


def prometheus(values: Callable[[str, str], float | None]) -> Endpoint:
    """A Prometheus HTTP API whose instant queries answer ``values(metric, revision)``:
    metric is "requests", "errors" or "p95" as read from the query."""

    def answer(path: str) -> tuple[int, Any]:
        query = urllib.parse.parse_qs(urllib.parse.urlsplit(path).query)["query"][0]
        revision = query.split('revision_name="')[1].split('"')[0]
        metric = (
            "p95" if "histogram_quantile" in query
            else "errors" if "5xx" in query
            else "requests"
        )  # fmt: skip
        value = values(metric, revision)
        result = [] if value is None else [{"metric": {}, "value": [0, str(value)]}]
        return 200, {"status": "success", "data": {"resultType": "vector", "result": result}}

    return Endpoint(answer)


def stub_cluster(tmp: Path) -> Iterator[StubCluster]:
    cluster = StubCluster(tmp)
    yield cluster
    cluster.close()
