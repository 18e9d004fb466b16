"""The benchmark's result lines: each compares its figure, or its ratio to the baseline, with
its target; a line without a target informs, one without a figure was not measured."""

from __future__ import annotations

import math

from tests.unit.bench.support import bench_module

report = bench_module("report")


def test_a_goal_on_the_figure() -> None:
    line = report.Line("s", "p99", 24.0, "ms", 8.7, report.at_most(25))
    assert line.verdict == "PASS"
    assert report.Line("s", "p99", 33.6, "ms", 8.7, report.at_most(25)).verdict == "FAIL"
    assert line.cells() == ["p99", "24 ms", "8.7 ms", "2.76x", "<= 25 ms", "PASS"]


def test_a_goal_on_the_ratio_to_the_baseline() -> None:
    goal = report.at_least(0.5, "ratio")
    assert report.Line("s", "req/s", 1000.0, "req/s", 2000.0, goal).verdict == "PASS"
    failing = report.Line("s", "req/s", 513.0, "req/s", 1956.0, goal)
    assert failing.verdict == "FAIL"
    assert failing.ratio is not None and math.isclose(failing.ratio, 513 / 1956)
    assert failing.to_json()["target"] == ">= 0.5x"


def test_zero_is_the_target_for_losses() -> None:
    assert report.Line("s", "lost", 0.0, "", None, report.at_most(0)).verdict == "PASS"
    lost = report.Line("s", "lost", 3.0, "", None, report.at_most(0))
    assert lost.verdict == "FAIL" and lost.cells()[4] == "0"


def test_information_and_not_measured() -> None:
    assert report.Line("s", "inserts/s", 2400.0, "ins/s").verdict == "-"
    assert report.Line("s", "p99", None, "ms", None, report.at_most(25)).verdict == "n/a"
    no_baseline = report.Line("s", "ratio", 10.0, "", None, report.at_least(0.8, "ratio"))
    assert no_baseline.verdict == "n/a"  # a ratio goal without a baseline cannot be judged


def test_the_table_aligns_and_lists_notes() -> None:
    lines = [
        report.Line("s", "a", 1234.5, "req/s", 2469.0, report.at_least(0.5, "ratio")),
        report.Line("s", "bb", 0.25, "ms", None, None, "a note"),
    ]
    text = report.lines_table(lines)
    rows = text.splitlines()
    assert rows[0].split() == ["scenario", "figure", "baseline", "ratio", "target", "result"]
    assert "1,234 req/s" in rows[2] and "0.50x" in rows[2] and rows[2].endswith("PASS")
    assert rows[-1] == "  bb: a note"
    assert report.tally(lines) == {"PASS": 1, "FAIL": 0, "n/a": 0, "-": 1}
