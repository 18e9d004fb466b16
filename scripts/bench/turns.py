"""Round trips per bot turn: the call site of ``scripts/bench/roundtrips.py``'s ``section(...)``.

``roundtrips.py`` belongs to the round-trip counting (``shared/perf``); this module only runs
it and turns its result into the benchmark's lines, held to issue 11's targets. It runs in a
child process, started while the end-to-end stack starts: it counts and never times, and its
own environment changes (it sets the settings it counts with) stay in that process.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

from launch import ROOT
from report import Line, at_most

SECTION = "round trips"
HERE = Path(__file__).resolve().parent
# Issue 11's targets; roundtrips.py prints its own budget beside them (what a turn needs
# without giving up a delivery guarantee).
TARGETS = {"mongodb": 6, "redis": 4}
KINDS = (("mongodb", "MongoDB"), ("redis", "Redis"), ("kafka", "Kafka"))
_MARK = "BENCH-ROUNDTRIPS "
# ---- the call site -------------------------------------------------------------------------
_CALL = f"""
import json, sys
import roundtrips
result = roundtrips.section(sys.argv[1], sys.argv[2], sys.argv[3])
print({_MARK!r} + json.dumps(result), flush=True)
"""


class Pending:
    """``roundtrips.section(kafka_brokers, redis_url, mongodb_uri)`` running in a child."""

    def __init__(self, kafka: str, redis: str, mongodb: str, work: Path) -> None:
        self.output = work / "roundtrips.out"
        self.proc: subprocess.Popen[bytes] | None = None
        self.missing = not (HERE / "roundtrips.py").exists()
        if self.missing:
            return
        path = os.pathsep.join(filter(None, [str(HERE), str(ROOT), os.environ.get("PYTHONPATH")]))
        with open(self.output, "wb") as out:
            self.proc = subprocess.Popen(  # noqa: S603 (sys.executable, our own code)
                [sys.executable, "-c", _CALL, kafka, redis, mongodb],
                cwd=ROOT,
                env={**os.environ, "PYTHONPATH": path},
                stdin=subprocess.DEVNULL,
                stdout=out,
                stderr=subprocess.STDOUT,
            )

    def wait(self, timeout_s: float = 300) -> None:
        if self.proc is not None:
            self.proc.wait(timeout=timeout_s)

    def section(self) -> tuple[list[Line], dict[str, Any]]:
        """Its own table as it printed it, then the lines."""
        if self.missing:
            raise RuntimeError("scripts/bench/roundtrips.py is not here: nothing counts them")
        self.wait()
        text = self.output.read_text(encoding="utf-8", errors="replace")
        printed = [ln for ln in text.splitlines() if not ln.startswith(_MARK)]
        found = [ln for ln in text.splitlines() if ln.startswith(_MARK)]
        print("\n".join(printed).rstrip())
        if not found:
            code = self.proc.returncode if self.proc is not None else None
            raise RuntimeError(f"roundtrips.py exited with {code} and no result")
        result: dict[str, Any] = json.loads(found[-1][len(_MARK) :])
        return lines(result), result


def lines(result: dict[str, Any]) -> list[Line]:
    """One line per kind: the most any channel's turn takes (each channel's own in the note)."""
    budget: dict[str, Any] = result.get("budget") or {}
    turns: dict[str, Any] = result.get("channels") or {}
    found = []
    for kind, label in KINDS:
        counts = {ch: turn["total"][kind] for ch, turn in turns.items() if kind in turn["total"]}
        worst = max(counts.values(), default=None)
        note = ", ".join(f"{ch} {n}" for ch, n in counts.items())
        if kind in budget:
            note += f" (roundtrips.py's budget: {budget[kind]})"
        found.append(
            Line(
                SECTION,
                f"{label} round trips per turn (worst channel)",
                None if worst is None else float(worst),
                "",
                None,
                at_most(TARGETS[kind]) if kind in TARGETS else None,
                note,
            )
        )
    return found


def per_turn(result: dict[str, Any]) -> dict[str, int]:
    """The most each kind takes over the channels: what the capacity model plans with."""
    turns: dict[str, Any] = result.get("channels") or {}
    return {
        kind: max(turn["total"][kind] for turn in turns.values())
        for kind, _ in KINDS
        if turns and all(kind in turn["total"] for turn in turns.values())
    }
