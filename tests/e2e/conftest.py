"""The local stack as the developer runs it: ``python -m shared.devstack`` in a subprocess.

The stack embeds its own broker, MongoDB and reference gRPC servers (``KAFKA_BROKERS``,
``MONGODB_URI``, ``MCP_ENGINE_URL``, ``SECURITY_HUB_URL`` are removed from its environment);
``REDIS_URL`` is passed through when set. Its output is collected line by line so a test can
wait for what the event watcher prints.

``bot_stack`` is one stack for a whole test module (starting one takes seconds, and the bot
turn tests only add conversations of their own). It gets a Redis of its own unless
``REDIS_URL`` is set: the engine's circuit breaker and the rate limits live in Redis, and the
Redis every developer's machine runs may be shared with another stack stopping its engine.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest

from shared.devstack import servers
from shared.devstack.pids import PidFiles
from tests.logscan import scan_stack

ROOT = Path(__file__).resolve().parents[2]
START_TIMEOUT_S = 45.0


# Settings of the developer's shell that would make the stack use something not its own, or
# change what the tests expect (the manifests name chatbot.platform.* topics).
NOT_PASSED = (
    "KAFKA_BROKERS",
    "MONGODB_URI",
    "MONGODB_DATABASE",
    "TENANTS_JSON",
    "TENANTS_FILE",
    "MCP_ENGINE_URL",
    "SECURITY_HUB_URL",
    "FALLBACK_ENABLED",
    "TOPIC_PREFIX",
)


class RunningStack:
    def __init__(self, state_dir: Path, env: dict[str, str] | None = None) -> None:
        self.state_dir = state_dir
        inherited = {k: v for k, v in os.environ.items() if k not in NOT_PASSED}
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "shared.devstack", "--dir", str(state_dir), "--base-port", "0"],
            cwd=ROOT,
            env={**inherited, **(env or {})},
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
        )
        self.lines: list[str] = []
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()

    def _read(self) -> None:
        assert self.proc.stdout is not None
        for line in self.proc.stdout:
            self.lines.append(line.rstrip("\n"))

    @property
    def output(self) -> str:
        return "\n".join(self.lines)

    def wait_for_endpoints(self, timeout_s: float = START_TIMEOUT_S) -> dict[str, Any]:
        path = self.state_dir / "endpoints.json"
        deadline = time.monotonic() + timeout_s
        while not path.exists():
            if self.proc.poll() is not None:
                pytest.fail(f"the stack exited with {self.proc.returncode}:\n{self.output}")
            if time.monotonic() > deadline:
                pytest.fail(f"no endpoints.json after {timeout_s}s:\n{self.output}")
            time.sleep(0.1)
        document: dict[str, Any] = json.loads(path.read_text())
        return document

    def lines_with(self, *parts: str) -> list[str]:
        return [line for line in list(self.lines) if all(part in line for part in parts)]

    def wait_for_line(self, *parts: str, timeout_s: float = 10.0) -> str:
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            for line in list(self.lines):
                if all(part in line for part in parts):
                    return line
            time.sleep(0.1)
        pytest.fail(f"no output line with {parts} after {timeout_s}s:\n{self.output}")

    def kill(self) -> None:
        """Last resort after a failed test: no process of the stack may outlive it."""
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGINT)
            try:
                self.proc.wait(timeout=20)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        PidFiles(self.state_dir).claim()  # stops children a killed supervisor left behind
        PidFiles(self.state_dir).release()
        self._reader.join(timeout=5)
        # Its processes' log files, for secrets and message bodies (reported at session end).
        scan_stack(self.state_dir, f"stack {self.state_dir.parent.name}/{self.state_dir.name}")


@pytest.fixture
def running_stack(tmp_path: Path) -> Iterator[RunningStack]:
    stack = RunningStack(tmp_path / "devstack")
    try:
        yield stack
    finally:
        stack.kill()


@contextmanager
def own_redis() -> Iterator[dict[str, str]]:
    """``REDIS_URL`` for a stack: the one set in the environment, else a new server."""
    if os.environ.get("REDIS_URL"):
        yield {}
        return
    server = servers.start_redis()
    try:
        yield {"REDIS_URL": server.url}
    finally:
        server.stop()


@contextmanager
def module_stack(
    factory: pytest.TempPathFactory, env: dict[str, str] | None = None
) -> Iterator[tuple[RunningStack, dict[str, Any]]]:
    """A stack and its endpoints for the tests of one module; stopped after the last one."""
    with own_redis() as redis_env:
        stack = RunningStack(factory.mktemp("devstack"), {**redis_env, **(env or {})})
        try:
            yield stack, stack.wait_for_endpoints()
        finally:
            stack.kill()
