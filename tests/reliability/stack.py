"""The stack the reliability tests share (the fixture ``matrix``, registered in conftest.py):
the local stack on servers the tests own (so they can kill them and start them again on the
same port), and the table of what each scenario saw."""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from shared.devstack import servers
from tests.e2e.bot_support import Stack
from tests.e2e.conftest import RunningStack
from tests.reliability.faults import Outcome, table

ROOT = Path(__file__).resolve().parents[2]
ARTIFACTS = ROOT / "test-artifacts"
# Per user: the flood test's limit. The fault matrix sends every message from a new user and
# the long conversation rotates its speakers, so neither comes near it.
USER_LIMIT_PER_MIN = 30
REPORTS: list[str] = []  # the fault table and load figures of this run (conftest.py)


@dataclass
class Matrix:
    state: Path
    servers: dict[str, servers.Server]
    running: RunningStack
    endpoints: dict[str, Any]
    outcomes: list[Outcome] = field(default_factory=list)
    dispatchers: list[subprocess.Popen[bytes]] = field(default_factory=list)

    @property
    def stack(self) -> Stack:
        return Stack(self.endpoints)

    def topics(self) -> list[str]:
        names = list(self.endpoints["topics"].values())
        return names + list(self.endpoints["dispatcher"]["dead_letter_topics"].values())

    def start_dispatcher(self) -> subprocess.Popen[bytes]:
        """Another KafkaSource dispatcher for the stack's handlers (same groups, same key)."""
        oidc = self.endpoints["eventing_oidc"]
        args = [sys.executable, "-m", "shared.kafkasource", "--manifests", "kafka-sources"]
        args += ["--brokers", self.endpoints["kafka"]["brokers"]]
        args += ["--sinks-from", str(self.state / "endpoints.json")]
        args += [f"--oidc-key={oidc['key_file']}", f"--oidc-issuer={oidc['issuer']}"]
        log = open(self.state / "logs" / f"dispatcher-{len(self.dispatchers)}.log", "ab")  # noqa: SIM115
        proc = subprocess.Popen(args, cwd=ROOT, stdout=log, stderr=subprocess.STDOUT)
        self.dispatchers.append(proc)
        return proc


@pytest.fixture(scope="module")
def matrix(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Matrix]:
    """The stack for one test module. Its MongoDB runs standalone unless the module sets
    ``MONGODB_STANDALONE = False`` (see the comment where it starts)."""
    standalone = bool(getattr(request.module, "MONGODB_STANDALONE", True))
    root = tmp_path_factory.mktemp("faults")
    logs = root / "server-logs"
    logs.mkdir()
    owned: dict[str, servers.Server] = {}
    running: RunningStack | None = None
    try:
        owned["kafka"] = servers.start_kafka(log_path=logs / "kafka.log")
        # Standalone, as `make run` runs it: with a replica set's oplog the embedded server
        # slows to ~100 inserts/s after ~10,000 writes (shared/devstack/servers.py). The fault
        # matrix (which kills it) runs it as production's is: a replica set whose acknowledged
        # writes are on disk (without --sync-on-commit one acknowledged write was lost to the
        # SIGKILL in a CI run: an answered message not stored).
        owned["mongodb"] = servers.start_mongodb(
            data_dir=root / "mongodb",
            log_path=logs / "mongo.log",
            standalone=standalone,
            durable=not standalone,
        )
        owned["redis"] = servers.start_redis(log_path=logs / "redis.log")
        for name in ("mcp-engine", "security-hub"):
            module = f"shared.refservers.{name.replace('-', '_')}"
            owned[name] = servers.start_module(name, module, None, logs / f"{name}.log", root=ROOT)
        env = {
            "KAFKA_BROKERS": owned["kafka"].url,
            "MONGODB_URI": owned["mongodb"].url,
            "REDIS_URL": owned["redis"].url,
            "MCP_ENGINE_URL": owned["mcp-engine"].url,
            "SECURITY_HUB_URL": owned["security-hub"].url,
            "USER_RATE_LIMIT_PER_MIN": str(USER_LIMIT_PER_MIN),
            "TENANT_RATE_LIMIT_PER_MIN": "0",
        }
        state = root / "devstack"
        running = RunningStack(state, env)
        endpoints = running.wait_for_endpoints(timeout_s=90)
        matrix = Matrix(state, owned, running, endpoints)
        yield matrix
        report = table(matrix.outcomes)
        if matrix.outcomes:
            REPORTS.append("fault matrix\n" + report)  # printed at the end of the run
        ARTIFACTS.mkdir(exist_ok=True)
        (ARTIFACTS / "fault-matrix.txt").write_text(report + "\n", encoding="utf-8")
    finally:
        if running is not None:
            running.kill()
        for server in owned.values():
            server.stop()
