"""The reliability tests' shared stack (tests/reliability/stack.py), and the fault table
printed at the end of the run (pytest captures what the fixture prints)."""

from typing import Any

from tests.reliability.stack import (
    REPORTS,
    matrix,  # noqa: F401 (a fixture, used by name)
)


def pytest_terminal_summary(terminalreporter: Any) -> None:
    if REPORTS:
        terminalreporter.section("reliability")
    for report in REPORTS:
        terminalreporter.write_line(report)
