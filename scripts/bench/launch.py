"""Functions-framework processes for the benchmark: cold start and ``create_app`` import time.

Each function runs the way its container runs it: ``python -m functions_framework`` (gunicorn,
no ``--debug`` reloader) with ``WORKERS``/``THREADS`` from the environment, in a process group
of its own, and is stopped by pid.
"""

from __future__ import annotations

import contextlib
import http.client
import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path

from shared.devstack.functions import log_tail, serve_command

HOST = "127.0.0.1"
# opentelemetry: trace export is off without OTEL_EXPORTER_OTLP_ENDPOINT, and then costs no
# import (the probe also runs one span, as a request would, before it looks).
HEAVY_MODULES = ("kafka", "pymongo", "grpc", "redis", "httpx", "opentelemetry")
ROOT = Path(__file__).resolve().parents[2]
_MARK = "BENCH-RESULT "
# Run in a fresh interpreter: import functions_framework, then time create_app alone.
_IMPORT_PROBE = f"""
import json, sys, time
t0 = time.perf_counter()
import functions_framework
t1 = time.perf_counter()
functions_framework.create_app("handle", sys.argv[1])
t2 = time.perf_counter()
if "shared" in sys.modules:  # not the baseline
    from shared import tracing
    with tracing.span("probe"):
        pass
heavy = [m for m in {HEAVY_MODULES!r} if m in sys.modules]
print({_MARK!r} + json.dumps({{"framework_s": t1 - t0, "create_app_s": t2 - t1, "heavy": heavy}}))
"""


class BenchError(RuntimeError):
    pass


@dataclass(frozen=True)
class Target:
    name: str
    source: Path
    probe_path: str  # any answer here: the server is up and the module imported
    ready_path: str  # the first 200 here: ready for traffic


@dataclass
class Running:
    target: Target
    port: int
    proc: subprocess.Popen[bytes]
    log_path: Path

    @property
    def url(self) -> str:
        return f"http://{HOST}:{self.port}"

    def failure(self, what: str) -> BenchError:
        tail = log_tail(self.log_path)
        return BenchError(f"{self.target.name} {what}; log {self.log_path}:\n{tail}")

    def stop(self, timeout_s: float = 5.0) -> None:
        """SIGTERM to gunicorn's master; its whole group is killed if it does not exit."""
        if self.proc.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout=timeout_s)
            except subprocess.TimeoutExpired:
                # Not reaped yet, so the group id (= our pid, process_group=0) is still ours.
                with contextlib.suppress(ProcessLookupError, PermissionError):
                    os.killpg(self.proc.pid, signal.SIGKILL)
                self.proc.wait(timeout=timeout_s)


def start(target: Target, port: int, env: Mapping[str, str], log_dir: Path) -> Running:
    log_path = log_dir / f"{target.name}.log"
    command = serve_command(target.source, port)
    with open(log_path, "ab") as log:
        proc = subprocess.Popen(  # noqa: S603 (our own command line, no shell)
            command.argv,
            cwd=ROOT,
            env={**env, **command.env, "K_SERVICE": target.name},
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=subprocess.STDOUT,
            process_group=0,
        )
    return Running(target, port, proc, log_path)


def get_status(port: int, path: str, timeout_s: float) -> int | None:
    """The status of ``GET path``; ``None`` while nothing answers. No proxy, no keep-alive."""
    conn = http.client.HTTPConnection(HOST, port, timeout=timeout_s)
    try:
        conn.request("GET", path)
        response = conn.getresponse()
        response.read()
        return response.status
    except OSError:
        return None
    finally:
        conn.close()


def wait_for(running: Running, path: str, accept: Callable[[int], bool], deadline: float) -> float:
    """``perf_counter()`` when ``GET path`` first answers with an accepted status."""
    seen: int | None = None
    while time.perf_counter() < deadline:
        if running.proc.poll() is not None:
            raise running.failure(f"exited with code {running.proc.returncode} at startup")
        seen = get_status(running.port, path, timeout_s=10.0)
        if seen is not None and accept(seen):
            return time.perf_counter()
        time.sleep(0.005)
    raise running.failure(f"no accepted answer on GET {path} in time (last: {seen})")


def cold_start(
    target: Target, port: int, env: Mapping[str, str], log_dir: Path, timeout_s: float = 30.0
) -> tuple[float, float]:
    """Seconds from launch to the first answer on the probe path, and to the first ready 200."""
    t0 = time.perf_counter()
    running = start(target, port, env, log_dir)
    try:
        deadline = t0 + timeout_s
        first = wait_for(running, target.probe_path, lambda _: True, deadline)
        ready = wait_for(running, target.ready_path, lambda status: status == 200, deadline)
        return first - t0, ready - t0
    finally:
        running.stop()


@dataclass(frozen=True)
class ImportSample:
    create_app_s: float
    process_s: float  # interpreter start → exit, as the parent saw it
    heavy: tuple[str, ...]


def import_time(target: Target, env: Mapping[str, str], timeout_s: float = 60.0) -> ImportSample:
    args = [sys.executable, "-c", _IMPORT_PROBE, str(target.source)]
    t0 = time.perf_counter()
    done = subprocess.run(  # noqa: S603 (sys.executable and our probe)
        args,
        cwd=ROOT,
        env={**env, "K_SERVICE": target.name},
        capture_output=True,
        timeout=timeout_s,
        check=False,
    )
    process_s = time.perf_counter() - t0
    lines = [ln for ln in done.stdout.decode(errors="replace").splitlines() if ln.startswith(_MARK)]
    if done.returncode != 0 or not lines:
        err = done.stderr.decode(errors="replace")[-2000:]
        raise BenchError(f"create_app for {target.name} failed ({done.returncode}):\n{err}")
    data = json.loads(lines[-1][len(_MARK) :])
    return ImportSample(float(data["create_app_s"]), process_s, tuple(data["heavy"]))
