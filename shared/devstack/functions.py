"""Every ``functions/<name>/main.py`` as its own functions-framework process on its own port.

Each process is started the way its container starts it (gunicorn, no ``--debug`` reloader,
``WORKERS``/``THREADS`` set explicitly) in a process group of its own, so a Ctrl-C in the
terminal reaches the stack, which stops the functions in order, not the functions directly.
"""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Mapping
from pathlib import Path

from shared.dataclass import dataclass
from shared.devstack.servers import ServerError, free_port
from shared.web import HEALTH_PATH

HOST = "127.0.0.1"
# Direct connections only: a proxy from the environment must not answer for localhost.
_opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))


class FunctionError(ServerError):
    pass


def discover(functions_dir: Path) -> list[str]:
    """Function names in sorted order: every directory holding a ``main.py``."""
    return sorted(
        path.parent.name
        for path in functions_dir.glob("*/main.py")
        if not path.parent.name.startswith((".", "_"))
    )


def port_free(port: int) -> bool:
    """Whether a server could listen on ``port`` now (connecting would miss a bound socket).

    With SO_REUSEADDR, as gunicorn binds: a port whose last connections are in TIME_WAIT (the
    function just stopped) is free, and a restarted stack keeps its ports."""
    with socket.socket() as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind((HOST, port))
        except OSError:
            return False
        return True


def assign_ports(names: list[str], base_port: int) -> dict[str, int]:
    """``base_port``, ``base_port + 1``, … in name order; a taken port (or base 0) → a free one."""
    ports: dict[str, int] = {}
    for offset, name in enumerate(names):
        wanted = base_port + offset if base_port else 0
        port = wanted if wanted and port_free(wanted) else free_port()
        while port in ports.values():
            port = free_port()
        ports[name] = port
    return ports


@dataclass
class FunctionProcess:
    name: str
    port: int
    proc: subprocess.Popen[bytes]
    log_path: Path

    @property
    def url(self) -> str:
        return f"http://{HOST}:{self.port}"

    @property
    def health_url(self) -> str:
        return self.url + HEALTH_PATH

    @property
    def pid(self) -> int:
        return self.proc.pid

    def failure(self, what: str) -> FunctionError:
        tail = log_tail(self.log_path)
        return FunctionError(f"function {self.name} {what}; log {self.log_path}:\n{tail}")

    def health_status(self) -> int | None:
        try:
            with _opener.open(self.health_url, timeout=2) as response:
                return int(response.status)
        except urllib.error.HTTPError as exc:
            return exc.code
        except (OSError, ValueError):
            return None

    def send_stop(self) -> None:
        if self.proc.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                self.proc.send_signal(signal.SIGTERM)

    def wait_stopped(self, timeout_s: float) -> None:
        """After :meth:`send_stop`; the whole group is killed if gunicorn takes too long."""
        with contextlib.suppress(subprocess.TimeoutExpired):
            self.proc.wait(timeout=max(0.1, timeout_s))
        # Worker processes share the master's group; none may outlive the stack.
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(self.proc.pid, signal.SIGKILL)
        self.proc.wait(timeout=5)


# The image's entry point (Dockerfile ENTRYPOINT, with `python` from the image's venv) and the
# variables that choose the function; a test keeps the two equal.
ENTRY_MODULE = "functions_framework"
FUNCTION_TARGET = "handle"


@dataclass(frozen=True)
class ServeCommand:
    argv: list[str]
    env: dict[str, str]


def serve_command(source: Path, port: int, host: str = HOST) -> ServeCommand:
    """How a function's container serves it: ``python -m functions_framework`` (gunicorn, no
    ``--debug`` reloader, which would double the cold start), the function chosen by
    functions-framework's own ``FUNCTION_SOURCE``/``FUNCTION_TARGET`` variables."""
    return ServeCommand(
        argv=[sys.executable, "-m", ENTRY_MODULE],
        env={
            "FUNCTION_SOURCE": str(source),
            "FUNCTION_TARGET": FUNCTION_TARGET,
            "HOST": host,
            "PORT": str(port),
        },
    )


def start(
    name: str,
    port: int,
    root: Path,
    env: Mapping[str, str],
    log_dir: Path,
    metrics_dir: Path | None = None,
) -> FunctionProcess:
    """``metrics_dir``: the function's own PROMETHEUS_MULTIPROC_DIR, as its pod has one."""
    log_path = log_dir / f"{name}.log"
    command = serve_command(root / "functions" / name / "main.py", port)
    extra = {"K_SERVICE": name}
    if metrics_dir is not None:
        extra["PROMETHEUS_MULTIPROC_DIR"] = str(metrics_dir / name)
    with open(log_path, "ab") as log:
        proc = subprocess.Popen(  # noqa: S603 (the image's entry command)
            command.argv,
            cwd=root,
            env={**env, **command.env, **extra},
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=subprocess.STDOUT,
            process_group=0,
        )
    return FunctionProcess(name, port, proc, log_path)


def wait_healthy(functions: list[FunctionProcess], timeout_s: float) -> None:
    """Until every function answers its health check with 200; the first failure raises."""
    deadline = time.monotonic() + timeout_s
    waiting = list(functions)
    last_status: dict[str, int | None] = {}
    while waiting:
        for function in list(waiting):
            if function.proc.poll() is not None:
                raise function.failure(f"exited with code {function.proc.returncode} at startup")
            status = last_status[function.name] = function.health_status()
            if status == 200:
                waiting.remove(function)
        if waiting and time.monotonic() > deadline:
            late = waiting[0]
            seen = last_status.get(late.name)
            answer = f"it answered {seen}" if seen else "it did not answer"
            raise late.failure(f"not healthy after {timeout_s:.0f}s: GET {HEALTH_PATH}, {answer}")
        if waiting:
            time.sleep(0.1)


def log_tail(path: Path, lines: int = 15) -> str:
    try:
        text = path.read_text(encoding="utf-8", errors="replace")
    except OSError:
        return ""
    return "\n".join(text.splitlines()[-lines:])
