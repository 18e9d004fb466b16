"""CPU time and resident memory of our own child processes, read from ``/proc`` (Linux).

A function is a gunicorn master and its worker(s): :func:`tree` finds the workers by parent
pid, so a function's CPU is its whole process tree's and its "worker RSS" is the worker's own.
"""

from __future__ import annotations

import os
from pathlib import Path

_TICKS = os.sysconf("SC_CLK_TCK")


def _stat_fields(pid: int) -> list[str] | None:
    try:
        raw = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    # The command name (field 2) may hold spaces and parentheses: split after its last ")".
    return raw[raw.rindex(")") + 2 :].split()


def children(pid: int) -> list[int]:
    found = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            fields = _stat_fields(int(entry.name))
            if fields is not None and int(fields[1]) == pid:  # field 4: the parent's pid
                found.append(int(entry.name))
    return found


def tree(pid: int) -> list[int]:
    """``pid`` and every live descendant."""
    pids, queue = [], [pid]
    while queue:
        current = queue.pop()
        pids.append(current)
        queue.extend(children(current))
    return pids


def cpu_seconds(pid: int) -> float:
    """User + system CPU of ``pid`` and its live descendants (0 for a process that is gone)."""
    total = 0
    for member in tree(pid):
        fields = _stat_fields(member)
        if fields is not None:
            total += int(fields[11]) + int(fields[12])  # fields 14 and 15: utime, stime
    return total / _TICKS


def rss_kib(pid: int) -> int | None:
    try:
        status = Path(f"/proc/{pid}/status").read_text()
    except OSError:
        return None
    for line in status.splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    return None


def worker_rss_kib(master_pid: int) -> int | None:
    """The resident memory of a gunicorn master's (first) worker; ``None`` without one."""
    workers = sorted(children(master_pid))
    return rss_kib(workers[0]) if workers else None
