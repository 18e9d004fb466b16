"""Functions-framework processes for the benchmark: cold start and ``create_app`` import time.

Each function runs the way its container runs it: ``python -m functions_framework`` (gunicorn,
no ``--debug`` reloader) with ``WORKERS``/``THREADS`` from the environment, in a process group
of its own, and is stopped by pid.
"""

from __future__ import annotations

import compileall
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
from shared.web import HEALTH_PATH

HOST = "127.0.0.1"
# opentelemetry: trace export is off without OTEL_EXPORTER_OTLP_ENDPOINT, and then costs no
# import (the probe also runs one span, as a request would, before it looks).
HEAVY_MODULES = (
    "kafka",
    "pymongo",
    "grpc",
    "redis",
    "httpx",
    "opentelemetry",
    "psycopg",
    "psycopg_pool",
)
ROOT = Path(__file__).resolve().parents[2]
_MARK = "BENCH-RESULT "
# One interpreter: import functions_framework, then each function's create_app in turn, and
# after each, which heavy client modules are loaded that were not before it (the first function
# to import one is the one that does it; once none is imported by any, the answer is "none").
_IMPORT_PROBE = f"""
import json, sys, time
import functions_framework
results = {{}}
for name, source in zip(sys.argv[1::2], sys.argv[2::2]):
    before = {{m for m in {HEAVY_MODULES!r} if m in sys.modules}}
    t0 = time.perf_counter()
    functions_framework.create_app("handle", source)
    took = time.perf_counter() - t0
    if "shared.tracing" in sys.modules:  # a request's span, as a request would run one
        from shared import tracing
        with tracing.span("probe"):
            pass
    after = {{m for m in {HEAVY_MODULES!r} if m in sys.modules}}
    results[name] = {{"create_app_s": took, "heavy": sorted(after - before)}}
print({_MARK!r} + json.dumps(results))
"""


# After create_app, a health check, under `-X importtime`: the client libraries it imports
# then, each measured on top of everything the function had already loaded.
_HEALTH_PROBE = f"""
import sys
import functions_framework
app = functions_framework.create_app("handle", sys.argv[1])
sys.stderr.write({_MARK!r} + "\\n")
print({_MARK!r} + str(app.test_client().get(sys.argv[2]).status_code))
"""


class BenchError(RuntimeError):
    pass


@dataclass(frozen=True)
class Target:
    name: str
    source: Path
    probe_path: str  # any answer here: the server is up and the module imported
    ready_path: str  # the first 200 here: ready for traffic


BASELINE = Target(
    "baseline (hello)", Path(__file__).resolve().parent / "hello" / "main.py", "/", "/"
)


def compile_bytecode(targets: list[Target]) -> None:
    """Compile ``shared/`` and each target's folder to bytecode, as the image ships them (pip
    compiles the installed ``shared`` package, the Dockerfile runs ``compileall`` over
    ``functions/``), so that a launch measures what a cold start in the cluster pays.

    Without this, an editable install leaves ``shared/`` as source, and with
    ``PYTHONDONTWRITEBYTECODE=1`` in the environment (as on these machines, and in the image)
    every launch compiles it again: ~40 % of a function's import time, which the bare
    function, a single small file, hardly pays."""
    folders = {ROOT / "shared", *(target.source.parent for target in targets)}
    for folder in sorted(folders):
        if not compileall.compile_dir(folder, quiet=1):
            raise BenchError(f"could not compile {folder} to bytecode")


def function_target(name: str) -> Target:
    """A function of ``functions/``: any answer on /metrics means imported and serving."""
    return Target(name, ROOT / "functions" / name / "main.py", "/metrics", HEALTH_PATH)


def function_env(
    kafka: str, redis: str, mongodb: str, tenants: Path, threads: int
) -> dict[str, str]:
    """The environment every benchmarked function gets: the servers, the tenants file and
    ``WORKERS=1``/``THREADS`` set explicitly (as each Knative Service sets them)."""
    env = {k: v for k, v in os.environ.items() if k != "TENANTS_JSON"}  # it would win
    env.update(
        KAFKA_BROKERS=kafka,
        REDIS_URL=redis,
        MONGODB_URI=mongodb,
        TENANTS_FILE=str(tenants),
        WORKERS="1",
        THREADS=str(threads),
        PYTHONPATH=os.pathsep.join(filter(None, [str(ROOT), env.get("PYTHONPATH")])),
        PYTHONUNBUFFERED="1",
    )
    return env


def deadline(seconds: float) -> float:
    return time.perf_counter() + seconds


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

    def kill(self) -> None:
        """SIGKILL to the whole group, at once: for a process measured and no longer needed
        (a graceful stop takes ~0.5 s, a dozen of them a quick run's budget)."""
        if self.proc.poll() is None:
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.killpg(self.proc.pid, signal.SIGKILL)
            self.proc.wait(timeout=5)

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
        running.kill()


@dataclass(frozen=True)
class ImportSample:
    create_app_s: float  # in one interpreter, after the functions before it: shared code warm
    heavy: tuple[str, ...]  # heavy modules its create_app loaded first


def imports(
    targets: list[Target], env: Mapping[str, str], timeout_s: float = 120.0
) -> dict[str, ImportSample]:
    """Every target's ``create_app`` in one fresh interpreter, in order."""
    args = [sys.executable, "-c", _IMPORT_PROBE]
    for target in targets:
        args += [target.name, str(target.source)]
    done = _probe(args, env, timeout_s)
    lines = [ln for ln in done.stdout.decode(errors="replace").splitlines() if ln.startswith(_MARK)]
    if done.returncode != 0 or not lines:
        err = done.stderr.decode(errors="replace")[-2000:]
        raise BenchError(f"create_app failed ({done.returncode}):\n{err}")
    data = json.loads(lines[-1][len(_MARK) :])
    return {
        name: ImportSample(float(entry["create_app_s"]), tuple(entry["heavy"]))
        for name, entry in data.items()
    }


def client_imports_ms(target: Target, env: Mapping[str, str], timeout_s: float = 60.0) -> float:
    """Milliseconds the target's first health check spends importing client libraries
    (:data:`HEAVY_MODULES`), in a fresh interpreter after its ``create_app``: the part of
    launch → healthy that no code of ours can make shorter, short of not importing them."""
    args = [sys.executable, "-X", "importtime", "-c", _HEALTH_PROBE, str(target.source)]
    done = _probe([*args, target.ready_path], env, timeout_s)
    err = done.stderr.decode(errors="replace")
    status = done.stdout.decode(errors="replace").rpartition(_MARK)[2].strip()
    if done.returncode != 0 or _MARK not in err or status != "200":
        raise BenchError(
            f"{target.name}: health probe failed (exit {done.returncode}, health {status or '-'})"
            f":\n{err[-2000:]}"
        )
    return heavy_import_us(err.split(_MARK, 1)[1].splitlines()) / 1000


def _probe(
    args: list[str], env: Mapping[str, str], timeout_s: float
) -> subprocess.CompletedProcess[bytes]:
    """One of our probe scripts in a fresh interpreter, from the repository's root."""
    return subprocess.run(  # noqa: S603 (sys.executable and our probe)
        args, cwd=ROOT, env=dict(env), capture_output=True, timeout=timeout_s, check=False
    )


def heavy_import_us(lines: list[str]) -> int:
    """The cumulative microseconds of the heavy packages in ``-X importtime`` output, each
    counted once where it is not itself inside another heavy one. A module's line comes after
    the lines of what it imported, indented two spaces deeper, so the lines are read backwards,
    parents first."""
    total = 0
    parents: list[tuple[int, bool]] = []  # (depth, inside a heavy package)
    for line in reversed(lines):
        if not line.startswith("import time:") or "[us]" in line:
            continue
        _, cumulative, name = line[len("import time:") :].split("|")
        depth = (len(name) - len(name.lstrip(" "))) // 2
        while parents and parents[-1][0] >= depth:
            parents.pop()
        inside = bool(parents) and parents[-1][1]
        heavy = name.strip().split(".")[0] in HEAVY_MODULES
        if heavy and not inside:
            total += int(cumulative)
        parents.append((depth, inside or heavy))
    return total
