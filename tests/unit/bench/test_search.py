"""The end-to-end section's search for the highest steady rate: rising steps, then bisection."""

from __future__ import annotations

from types import SimpleNamespace
from typing import Any

import pytest

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


class Meter:
    """Usage snapshots 10 s apart: the idle stack's 0.25 cores, plus 40 ms of CPU for each
    message of the step that ran since the one before (200 ms from ``dear_from`` msg/s up)."""

    def __init__(self, driver: Driver, dear_from: float = 1000.0) -> None:
        self.driver, self.dear_from = driver, dear_from
        self.at, self.cpu_s, self.calls = 0.0, 0.0, 0

    def __call__(self) -> Any:
        if self.calls % 2:  # after a step: what its messages cost
            rate = self.driver.rates[-1]
            per_message_s = 0.2 if rate >= self.dear_from else 0.04
            self.at += 10.0
            self.cpu_s += 0.25 * 10.0 + rate * 10.0 * per_message_s
        self.calls += 1
        return endtoend.Usage(self.at, {"stack": self.cpu_s}, 0.0, 0.0, {}, {})


def test_each_step_is_costed_above_idle_and_the_ceiling_takes_the_highest_rate_held() -> None:
    driver = Driver(25)
    meter = Meter(driver)
    said: list[str] = []
    steps = endtoend.search(
        driver, options(True, 1.4), SimpleNamespace(dispatcher=None), said.append,
        usage=meter, idle_cores=0.25,
    )  # fmt: skip
    assert [s.rate for s in steps] == [20, 28, 24, 26]
    assert all(s.cost is not None for s in steps)
    assert [round(s.cost.above_idle_ms(0.25), 6) for s in steps if s.cost] == [40.0] * 4
    assert "cores busy, 40 ms of CPU per message above idle" in said[0]
    summary = steps[0].summary(0.25)
    assert summary["passed"] and summary["cpu_ms_per_message_above_idle"] == 40.0
    assert summary["cores_busy"] == pytest.approx(0.25 + 20 * 0.04)
    # The ceiling is costed at the highest rate that held (24), not at a failed one.
    assert endtoend._cost_at(steps, 24, 0.25) == (24, pytest.approx(40.0))
    assert endtoend._cost_at(steps, 26, 0.25) is None  # failed: not a rate held
    assert endtoend._cost_at(steps, 10, 0.25) is None  # the steady phase's: not a step


def test_a_dearer_rate_is_what_the_ceiling_is_costed_at() -> None:
    driver = Driver(25)
    steps = endtoend.search(
        driver, options(True, 1.4), SimpleNamespace(dispatcher=None), lambda _: None,
        usage=Meter(driver, dear_from=24), idle_cores=0.25,
    )  # fmt: skip
    assert endtoend._cost_at(steps, 24, 0.25) == (24, pytest.approx(200.0))


def test_without_usage_the_steps_are_not_costed() -> None:
    driver = Driver(25)
    steps = endtoend.search(
        driver, options(False, 1.4), SimpleNamespace(dispatcher=None), lambda _: None
    )
    assert [s.cost for s in steps] == [None, None]
    assert not any("cores_busy" in s.summary(0.25) for s in steps)
