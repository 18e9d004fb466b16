"""The order in which the cold-start benchmark launches its processes: the bare function's
launches spread over the section, so no ratio rests on one of them."""

from __future__ import annotations

from itertools import pairwise
from pathlib import Path

from tests.unit.bench.support import bench_module

coldstart = bench_module("coldstart")
launch = bench_module("launch")


def functions(count: int) -> list[object]:
    return [launch.Target(f"f{i}", Path(f"f{i}.py"), "/metrics", "/health") for i in range(count)]


def names(order: list[object]) -> list[str]:
    return [target.name for target in order]  # type: ignore[attr-defined]


def test_the_bare_function_comes_before_every_four_functions_and_at_the_end() -> None:
    order = coldstart.launch_order(functions(11), runs=1)
    base = launch.BASELINE.name
    assert names(order) == [
        base, "f0", "f1", "f2", "f3",
        base, "f4", "f5", "f6", "f7",
        base, "f8", "f9", "f10",
        base,
    ]  # fmt: skip


def test_rounds_launch_every_function_once_and_never_the_bare_function_twice_in_a_row() -> None:
    order = names(coldstart.launch_order(functions(8), runs=3))
    base = launch.BASELINE.name
    assert all(order.count(f"f{i}") == 3 for i in range(8))
    assert order.count(base) == 3 * 2 + 1
    assert order[0] == base and order[-1] == base
    assert all(not (a == b == base) for a, b in pairwise(order))
