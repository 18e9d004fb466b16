"""How ``make bench`` reads the round-trip counter's results and what it hands the capacity
model."""

from __future__ import annotations

from typing import Any

from tests.unit.bench.support import bench_module

run = bench_module("run")
turns = bench_module("turns")


def turn(mongodb: int, redis: int, kafka: int) -> dict[str, Any]:
    return {"total": {"mongodb": mongodb, "redis": redis, "kafka": kafka, "detail": {}}}


ROUNDTRIPS: dict[str, Any] = {
    "budget": {"mongodb": 9, "redis": 4},
    "channels": {"whatsapp": turn(9, 3, 1), "webchat": turn(8, 4, 1)},
}


def test_round_trips_are_held_to_the_issues_targets_worst_channel_first() -> None:
    mongodb, redis, kafka = turns.lines(ROUNDTRIPS)
    assert (mongodb.figure, mongodb.verdict) == (9, "FAIL")  # the target is 6, whatever budget
    assert mongodb.goal.value == 6
    assert "whatsapp 9, webchat 8" in mongodb.note and "budget: 9" in mongodb.note
    assert (redis.figure, redis.verdict) == (4, "PASS")
    assert (kafka.figure, kafka.verdict) == (1, "-")


def test_without_counts_the_round_trip_lines_are_not_measured() -> None:
    assert {line.verdict for line in turns.lines({})} == {"n/a"}


def test_the_capacity_model_gets_what_each_section_measured() -> None:
    sections = {
        "ingress": {"unique_rps": 800.0, "baseline_rps": 2000.0},
        "end_to_end": {
            "per_message": {
                "handler_cpu_ms_per_event": {"message-processor": 10.0},
                "handler_service_ms": {"message-processor": 40.0},
                "mongodb_commands": 9.5,
                "redis_commands": 7.0,
            },
            "highest_steady_rate": 45.0,
        },
        "roundtrips": ROUNDTRIPS,
    }
    inputs = run.capacity_inputs(sections)
    assert inputs["webhook_rps_per_instance"] == 800.0
    assert inputs["handler_service_ms"] == {"message-processor": 40.0}
    assert inputs["roundtrips_per_turn"] == {"mongodb": 9, "redis": 4, "kafka": 1}
    assert run.capacity_inputs({}) == {}
