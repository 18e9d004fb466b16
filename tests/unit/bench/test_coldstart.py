"""The order in which the cold-start benchmark launches its processes: the bare function's
launches spread over the section, so no ratio rests on one of them."""

from __future__ import annotations

from pathlib import Path

from tests.unit.bench.support import bench_module

coldstart = bench_module("coldstart")
launch = bench_module("launch")


def functions(count: int) -> list[object]:
    return [launch.Target(f"f{i}", Path(f"f{i}.py"), "/metrics", "/health") for i in range(count)]


def names(order: list[object]) -> list[str]:
    return [target.name for target in order]  # type: ignore[attr-defined]


def test_the_bare_function_comes_before_every_block_of_functions_and_at_the_end() -> None:
    order = coldstart.launch_order(functions(11), runs=1)
    base = launch.BASELINE.name
    assert coldstart.BASELINE_EVERY == 4
    assert names(order) == [
        base, "f0", "f1", "f2", "f3",
        base, "f4", "f5", "f6", "f7",
        base, "f8", "f9", "f10",
        base,
    ]  # fmt: skip


def test_every_round_launches_every_function_once_and_the_bare_function_alike() -> None:
    order = coldstart.launch_order(functions(8), runs=3)
    assert names(order).count("f5") == 3
    assert names(order).count(launch.BASELINE.name) == 3 * 3
    assert order[0] is launch.BASELINE and order[-1] is launch.BASELINE
