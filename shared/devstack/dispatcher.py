"""The local KafkaSource dispatcher (``python -m shared.kafkasource``) as a child of the stack.

It is what Knative Eventing is in a cluster: it reads ``kafka-sources/`` (topics, consumer
groups, sinks, retry/backoff, dead-letter topics) and POSTs every record to its handler as a
binary-mode CloudEvent. The stack starts it beside the functions, with their URLs as sinks on
its command line (so ``ps`` shows where it delivers) and ``--hold-until`` a file the stack
creates once every function answers its health check (the group joins overlap the functions'
start; nothing is delivered to a function still starting). It creates the topics first — the
dead-letter topics included, which a KafkaSink's controller creates in a cluster — so they
exist before the first event can need one.
"""

from __future__ import annotations

import sys
import time
from collections.abc import Mapping
from pathlib import Path

from shared.dataclass import dataclass
from shared.devstack import servers
from shared.devstack.functions import log_tail

MANIFESTS = "kafka-sources"
STARTED = "kafkasource started"  # the line each source logs once its consumer is created


@dataclass
class DispatcherProcess:
    server: servers.Server
    manifests: Path
    sinks: dict[str, str]  # KafkaSource name → the sink URL it delivers to
    dead_letter_topics: dict[str, str]  # KafkaSource name → its dead-letter topic
    topics: list[str]  # every topic the sources read
    metrics_url: str = ""  # its Prometheus endpoint

    @property
    def pid(self) -> int:
        return self.server.proc.pid


def start(
    root: Path,
    brokers: str,
    function_urls: Mapping[str, str],
    env: Mapping[str, str],
    log_path: Path,
    timeout_s: float = 20.0,
    metrics_port: int | None = None,
    extra_args: list[str] | None = None,
) -> DispatcherProcess:
    from shared.kafkasource import manifests
    from shared.kafkasource.runner import ensure_source_topics

    directory = root / MANIFESTS
    sources = [s for s in manifests.load(directory) if s.sink_service in function_urls]
    ensure_source_topics(brokers.split(","), sources)
    sinks = {s.name: function_urls[s.sink_service] for s in sources}
    args = [
        sys.executable,
        "-m",
        "shared.kafkasource",
        "--manifests",
        str(directory),
        "--brokers",
        brokers,
        *(f"--sink={s.sink_service}={function_urls[s.sink_service]}" for s in sources),
        *([f"--metrics-port={metrics_port}"] if metrics_port is not None else []),
        *(extra_args or []),
    ]
    log_offset = log_path.stat().st_size if log_path.exists() else 0  # the file is appended to
    proc = servers._spawn(args, log_path, cwd=root, env=env)
    server = servers.Server("kafkasource-dispatcher", "127.0.0.1", 0, proc, "", log_path)
    try:
        _wait_started(server, len(sources), log_offset, timeout_s)
    except servers.ServerError:
        server.stop()
        raise
    dead_letters = {
        s.name: s.delivery.dead_letter_topic for s in sources if s.delivery.dead_letter_topic
    }
    topics = sorted({topic for source in sources for topic in source.topics})
    metrics_url = f"http://127.0.0.1:{metrics_port}/metrics" if metrics_port is not None else ""
    return DispatcherProcess(server, directory, sinks, dead_letters, topics, metrics_url)


def _wait_started(server: servers.Server, sources: int, log_offset: int, timeout_s: float) -> None:
    """Until every source logged that it started; a dispatcher that exits is reported with
    its log (a broken manifest exits at once with the reason)."""
    if server.log_path is None:
        raise servers.ServerError("the KafkaSource dispatcher has no log to watch")
    deadline = time.monotonic() + timeout_s
    while True:
        with open(server.log_path, "rb") as log:
            log.seek(log_offset)
            started = log.read().decode(errors="replace").count(STARTED)
        if started >= sources:
            return
        if not server.running:
            problem = f"exited with code {server.proc.returncode}"
        elif time.monotonic() > deadline:
            problem = f"did not start its {sources} sources within {timeout_s:.0f}s"
        else:
            time.sleep(0.1)
            continue
        tail = log_tail(server.log_path)
        raise servers.ServerError(
            f"the KafkaSource dispatcher {problem}; log {server.log_path}:\n{tail}"
        )
