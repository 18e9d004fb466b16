"""A real Prometheus for the local stack: every function and the KafkaSource dispatcher scraped,
the production rule files loaded.

The production ``monitoring/prometheus/prometheus.yml`` finds pods through the Kubernetes API;
here the targets are known, so the stack writes a variant with static targets that carry the
labels the relabelling gives in a cluster (``job``, ``knative_service``, ``namespace``,
``pod``): the recording rules, alerts and dashboards read the same series either way.
Prometheus is Debian's ``prometheus`` package; without it the stack says how to get it and
goes on.
"""

from __future__ import annotations

import shutil
import time
import urllib.error
import urllib.request
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import yaml

from shared.dataclass import dataclass
from shared.devstack import servers

RULES_DIR = Path("monitoring") / "prometheus"
RULE_FILES = ("recording-rules.yml", "alert-rules.yml")
FUNCTIONS_JOB = "chat-service"  # the production config's job for the functions' pods
DISPATCHER_JOB = "chat-service-kafkasource"
NAMESPACE = "local"
SCRAPE_INTERVAL = "5s"  # short: a developer sees a message in a graph within seconds
STANDARD_PORT = 9090
INSTALL_HINT = "apt-get install -y prometheus"
_opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))


@dataclass
class PrometheusProcess:
    server: servers.Server
    config: Path

    @property
    def url(self) -> str:
        return self.server.url


def binary() -> str | None:
    return shutil.which("prometheus")


def config(
    root: Path,
    functions: Mapping[str, str],
    dispatcher_metrics: str | None,
    *,
    scrape_interval: str = SCRAPE_INTERVAL,
) -> dict[str, Any]:
    """The local scrape config: ``functions`` maps a name to its ``host:port``."""
    static = [
        {
            "targets": [address],
            "labels": {"knative_service": name, "namespace": NAMESPACE, "pod": f"{name}-local"},
        }
        for name, address in sorted(functions.items())
    ]
    jobs: list[dict[str, Any]] = [
        {"job_name": FUNCTIONS_JOB, "metrics_path": "/metrics", "static_configs": static}
    ]
    if dispatcher_metrics:
        jobs.append(
            {
                "job_name": DISPATCHER_JOB,
                "metrics_path": "/metrics",
                "static_configs": [
                    {"targets": [dispatcher_metrics], "labels": {"namespace": NAMESPACE}}
                ],
            }
        )
    return {
        "global": {
            "scrape_interval": scrape_interval,
            "evaluation_interval": scrape_interval,
            "external_labels": {"environment": NAMESPACE},
        },
        "rule_files": [str((root / RULES_DIR / name).resolve()) for name in RULE_FILES],
        "scrape_configs": jobs,
    }


def start(
    root: Path,
    state_dir: Path,
    functions: Mapping[str, str],
    dispatcher_metrics: str | None,
    log_path: Path,
    *,
    standard_ports: bool,
    timeout_s: float = 30.0,
) -> PrometheusProcess | None:
    """Prometheus on 127.0.0.1 (9090 when free and ``standard_ports``); None without the binary."""
    program = binary()
    if program is None:
        return None
    directory = state_dir / "prometheus"
    directory.mkdir(parents=True, exist_ok=True)
    config_path = directory / "prometheus.yml"
    document = config(root, functions, dispatcher_metrics)
    config_path.write_text(yaml.safe_dump(document, sort_keys=False), encoding="utf-8")
    wanted = STANDARD_PORT if standard_ports else 0
    port = wanted if wanted and not servers.port_open("127.0.0.1", wanted) else servers.free_port()
    args = [
        program,
        f"--config.file={config_path}",
        f"--storage.tsdb.path={directory / 'data'}",
        "--storage.tsdb.retention.time=1d",
        f"--web.listen-address=127.0.0.1:{port}",
        "--web.enable-lifecycle",
    ]
    proc = servers._spawn(args, log_path, cwd=directory)
    url = f"http://127.0.0.1:{port}"
    server = servers.Server("prometheus", "127.0.0.1", port, proc, url, log_path)
    try:
        _wait_ready(server, timeout_s)
    except servers.ServerError:
        server.stop()
        raise
    return PrometheusProcess(server, config_path)


def _wait_ready(server: servers.Server, timeout_s: float) -> None:
    deadline = time.monotonic() + timeout_s
    while True:
        try:
            with _opener.open(server.url + "/-/ready", timeout=1) as response:
                if response.status == 200:
                    return
        except (urllib.error.URLError, OSError):
            pass
        if not server.running:
            raise servers.ServerError(
                f"prometheus exited with code {server.proc.returncode}; log {server.log_path}"
            )
        if time.monotonic() > deadline:
            raise servers.ServerError(f"prometheus not ready after {timeout_s:.0f}s")
        time.sleep(0.2)
