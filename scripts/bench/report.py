"""The benchmark's result lines: scenario, figure, baseline, ratio, target, PASS/FAIL.

A :class:`Goal` is checked against the figure itself (``p99 <= 25 ms``) or against its ratio to
the baseline measured in the same run (``>= 0.5x``). A line without a goal is information
(``-``); a line whose figure could not be measured is ``n/a``. Nothing here decides an exit
code: on a noisy 2-core machine a FAIL is a number to look at, not a broken build.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any, Literal

PASS, FAIL, INFO, NOT_MEASURED = "PASS", "FAIL", "-", "n/a"


@dataclass(frozen=True)
class Goal:
    op: Literal["<=", ">="]
    value: float
    of: Literal["figure", "ratio"] = "figure"

    def met(self, figure: float, ratio: float | None) -> bool | None:
        measured = figure if self.of == "figure" else ratio
        if measured is None or math.isnan(measured):
            return None
        return measured <= self.value if self.op == "<=" else measured >= self.value

    def text(self, unit: str) -> str:
        sign = self.op
        if self.of == "ratio":
            return f"{sign} {_number(self.value)}x"
        if self.value == 0 and self.op == "<=":
            return "0"
        return f"{sign} {_number(self.value)}{_spaced(unit)}"


def at_most(value: float, of: Literal["figure", "ratio"] = "figure") -> Goal:
    return Goal("<=", value, of)


def at_least(value: float, of: Literal["figure", "ratio"] = "figure") -> Goal:
    return Goal(">=", value, of)


@dataclass(frozen=True)
class Line:
    section: str
    scenario: str
    figure: float | None
    unit: str = ""
    baseline: float | None = None
    goal: Goal | None = None
    note: str = ""

    @property
    def ratio(self) -> float | None:
        if self.figure is None or not self.baseline:
            return None
        return self.figure / self.baseline

    @property
    def verdict(self) -> str:
        if self.figure is None:
            return NOT_MEASURED
        if self.goal is None:
            return INFO
        met = self.goal.met(self.figure, self.ratio)
        return NOT_MEASURED if met is None else (PASS if met else FAIL)

    def cells(self) -> list[str]:
        ratio = self.ratio
        return [
            self.scenario,
            "-" if self.figure is None else f"{_number(self.figure)}{_spaced(self.unit)}",
            "-" if self.baseline is None else f"{_number(self.baseline)}{_spaced(self.unit)}",
            "-" if ratio is None else f"{ratio:.2f}x",
            "-" if self.goal is None else self.goal.text(self.unit),
            self.verdict,
        ]

    def to_json(self) -> dict[str, Any]:
        ratio = self.ratio
        return {
            "section": self.section,
            "scenario": self.scenario,
            "figure": self.figure,
            "unit": self.unit,
            "baseline": self.baseline,
            "ratio": None if ratio is None else round(ratio, 3),
            "target": None if self.goal is None else self.goal.text(self.unit),
            "verdict": self.verdict,
            "note": self.note,
        }


HEADERS = ("scenario", "figure", "baseline", "ratio", "target", "result")


def table(rows: Sequence[Sequence[str]], headers: Sequence[str], numeric: Iterable[int]) -> str:
    """Columns padded to their widest cell; the ``numeric`` ones right-aligned."""
    right = set(numeric)
    widths = [max(len(h), *(len(r[i]) for r in rows)) for i, h in enumerate(headers)]

    def line(cells: Sequence[str]) -> str:
        padded = (
            c.rjust(w) if i in right else c.ljust(w)
            for i, (c, w) in enumerate(zip(cells, widths, strict=True))
        )
        return "  ".join(padded).rstrip()

    return "\n".join([line(headers), "  ".join("-" * w for w in widths), *map(line, rows)])


def lines_table(lines: Sequence[Line]) -> str:
    notes = [f"  {line.scenario}: {line.note}" for line in lines if line.note]
    text = table([line.cells() for line in lines], HEADERS, numeric=(1, 2, 3))
    return text + ("\n" + "\n".join(notes) if notes else "")


def tally(lines: Sequence[Line]) -> dict[str, int]:
    counts = {PASS: 0, FAIL: 0, NOT_MEASURED: 0, INFO: 0}
    for line in lines:
        counts[line.verdict] += 1
    return counts


def _number(value: float) -> str:
    """Three significant digits at most, no exponent, thousands separated."""
    if value == 0 or math.isnan(value):
        return "0" if value == 0 else "nan"
    magnitude = abs(value)
    if magnitude >= 100:
        return f"{value:,.0f}"
    if magnitude >= 10:
        return f"{value:.1f}".removesuffix(".0")
    if magnitude >= 1:
        return f"{value:.2f}".rstrip("0").removesuffix(".")
    return f"{value:.3f}".rstrip("0").removesuffix(".")


def _spaced(unit: str) -> str:
    return f" {unit}" if unit and unit not in ("x", "%") else unit
