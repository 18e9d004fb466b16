"""The end-to-end section's search for the highest steady rate: rising steps, then bisection."""

from __future__ import annotations

from types import SimpleNamespace
from typing import Any

from tests.unit.bench.support import bench_module

endtoend = bench_module("endtoend")
openloop = bench_module("openloop")


class Driver:
    """Answers every message within 50 ms up to ``limit`` msg/s, none beyond."""

    def __init__(self, limit: float) -> None:
        self.limit = limit
        self.rates: list[float] = []

    def run(self, rate: float, seconds: float, wait_s: float) -> Any:
        self.rates.append(rate)
        phase = openloop.Phase(rate, seconds, send_seconds=seconds)
        phase.sent = [SimpleNamespace(status=200)] * int(rate * seconds)
        steady = rate <= self.limit
        phase.latencies_ms = [50.0 if steady else 5000.0] * len(phase.sent)
        return phase


def options(refine: bool, growth: float) -> Any:
    return endtoend.Options(
        steady_s=30, step_s=10, wait_s=10, idle_s=5, first_rate=20, growth=growth, max_rate=400,
        ceiling_inserts=0, refine=refine,
    )  # fmt: skip


def search(
    limit: float, refine: bool, growth: float = 1.4, passed_below: float | None = None
) -> list[float]:
    driver = Driver(limit)
    stack = SimpleNamespace(dispatcher=None)  # no dispatcher to wait quiet for
    steps = endtoend.search(
        driver, options(refine, growth), stack, lambda _: None, passed_below=passed_below
    )
    assert [p.rate for p in steps] == driver.rates
    return driver.rates


def test_rising_steps_then_two_bisections() -> None:
    assert search(23, refine=True) == [20, 28, 24, 22]
    assert search(25, refine=True) == [20, 28, 24, 26]


def test_bisection_stops_when_the_gap_is_small_or_after_two_steps() -> None:
    assert search(21, refine=True, growth=1.2) == [20, 24, 22]  # 20..22: close enough
    assert search(29, refine=True) == [20, 28, 39, 34, 31]  # two steps at most
    assert search(20, refine=True) == [20, 28, 24, 22]
    assert search(10, refine=True) == [20]  # nothing passed: nothing to bisect


def test_a_first_step_that_fails_bisects_down_to_the_steady_rate() -> None:
    assert search(17, refine=True, passed_below=10) == [20, 15, 18]
    assert search(12, refine=True, passed_below=10) == [20, 15, 12]
    assert search(23, refine=True, passed_below=10) == [20, 28, 24, 22]  # not in the way


def test_the_quick_search_does_not_bisect() -> None:
    assert search(23, refine=False) == [20, 28]
