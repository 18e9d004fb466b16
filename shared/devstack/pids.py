"""Pid files, so a stack left behind (its supervisor killed with ``kill -9``) can be found.

``<dir>/stack.pid`` holds the supervisor's pid; ``<dir>/pids.json`` every child it started,
with the command line it was started with. A new run refuses to start beside a live
supervisor and stops a dead one's leftover children — only processes whose command line still
matches, so a pid the kernel has since reused for something else is left alone.
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import subprocess
import time
from pathlib import Path


class StackRunning(RuntimeError):
    pass


def _cmdline(pid: int) -> list[str] | None:
    """The command line of a live process, ``None`` if it is gone or cannot be read."""
    try:
        raw = Path(f"/proc/{pid}/cmdline").read_bytes()
    except OSError:
        return None
    return [part.decode(errors="replace") for part in raw.split(b"\0") if part] or None


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


class PidFiles:
    def __init__(self, state_dir: Path) -> None:
        self.stack_pid = state_dir / "stack.pid"
        self.children = state_dir / "pids.json"
        self._recorded: dict[str, dict[str, object]] = {}

    def claim(self) -> list[str]:
        """Make this process the dir's stack; returns notes on leftovers it stopped."""
        if self.stack_pid.exists():
            with contextlib.suppress(ValueError):
                pid = int(self.stack_pid.read_text().strip())
                command = _cmdline(pid) or []
                if pid != os.getpid() and any("shared.devstack" in part for part in command):
                    raise StackRunning(
                        f"a stack is already running from {self.stack_pid.parent} "
                        f"(pid {pid}); stop it with `kill {pid}` or use --dir"
                    )
        notes = self._stop_leftovers()
        self.stack_pid.write_text(f"{os.getpid()}\n")
        self.children.write_text("{}\n")
        return notes

    def record(self, name: str, process: subprocess.Popen[bytes]) -> None:
        # The arguments it was started with: /proc can read empty while the exec is under way.
        args = process.args
        cmdline = [str(a) for a in args] if isinstance(args, list | tuple) else [str(args)]
        self._recorded[name] = {"pid": process.pid, "cmdline": cmdline}
        self.children.write_text(json.dumps(self._recorded, indent=2) + "\n")

    def release(self) -> None:
        for path in (self.children, self.stack_pid):
            path.unlink(missing_ok=True)

    def _stop_leftovers(self) -> list[str]:
        try:
            recorded = json.loads(self.children.read_text())
        except (OSError, ValueError):
            return []
        notes = []
        for name, entry in recorded.items():
            pid = int(entry.get("pid", 0))
            if pid and _same_program(_cmdline(pid), entry.get("cmdline") or []):
                _terminate(pid)
                notes.append(f"stopped {name} (pid {pid}) left over from an earlier run")
        return notes


def _same_program(live: list[str] | None, started: list[str]) -> bool:
    """A script runs as ``interpreter script args``: match the program name and arguments."""
    if not live or not started:
        return False
    program = Path(started[0]).name
    head = len(live) - (len(started) - 1)
    return (
        head >= 1
        and live[head:] == started[1:]
        and any(Path(part).name == program for part in live[:head])
    )


def _terminate(pid: int, timeout_s: float = 5.0) -> None:
    with contextlib.suppress(ProcessLookupError):
        os.kill(pid, signal.SIGTERM)
    deadline = time.monotonic() + timeout_s
    while _alive(pid) and time.monotonic() < deadline:
        time.sleep(0.1)
    if _alive(pid):
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGKILL)
