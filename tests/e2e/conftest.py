"""The local stack as the developer runs it: ``python -m shared.devstack`` in a subprocess.

The stack embeds its own broker and MongoDB (``KAFKA_BROKERS`` / ``MONGODB_URI`` are removed
from its environment); ``REDIS_URL`` is passed through when set. Its output is collected
line by line so a test can wait for what the event watcher prints.
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
from pathlib import Path
from typing import Any

import pytest

from shared.devstack.pids import PidFiles

ROOT = Path(__file__).resolve().parents[2]
START_TIMEOUT_S = 45.0


class RunningStack:
    def __init__(self, state_dir: Path) -> None:
        self.state_dir = state_dir
        env = {
            k: v
            for k, v in os.environ.items()
            if k not in ("KAFKA_BROKERS", "MONGODB_URI", "TENANTS_JSON", "TENANTS_FILE")
        }
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "shared.devstack", "--dir", str(state_dir), "--base-port", "0"],
            cwd=ROOT,
            env=env,
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


@pytest.fixture
def running_stack(tmp_path: Path) -> Iterator[RunningStack]:
    stack = RunningStack(tmp_path / "devstack")
    try:
        yield stack
    finally:
        stack.kill()
