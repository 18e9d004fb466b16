"""The capacity model's arithmetic, on round numbers worked by hand."""

from __future__ import annotations

import math
from dataclasses import replace

import pytest

from shared.capacity.inputs import DEFAULT_RATES, FALLBACK_DEPLOYMENT
from shared.capacity.model import (
    ANALYTICS,
    AUDIT,
    DISPATCHER,
    INBOUND,
    OUTBOUND,
    PROCESSOR,
    STATUS,
    TRACKER,
    WEBHOOKS,
    Deployment,
    Figure,
    Plan,
    Rates,
    Traffic,
    events_per_s,
    handler_loads,
    instances,
    per_instance,
    plan,
    round_up,
    service_ms,
)

# 86,400 messages a day is one a second; a peak factor of 2 makes it two.
TRAFFIC = Traffic(messages_per_day=86_400, peak_factor=2, statuses_per_reply=2)


def fig(value: float) -> Figure:
    return Figure(value, "assumed: a test's")


def rates(**changes: object) -> Rates:
    return replace(DEFAULT_RATES, **changes)  # type: ignore[arg-type]


DEPLOYMENT = Deployment(
    partitions=12,
    max_scale={"whatsapp-webhook": 30, PROCESSOR: 30, DISPATCHER: 30, TRACKER: 5, AUDIT: 5,
               ANALYTICS: 3},
    container_concurrency={PROCESSOR: 8, DISPATCHER: 8, TRACKER: 8, AUDIT: 8, ANALYTICS: 4},
    target={},
    max_scale_limit=50,
)  # fmt: skip


def test_peak_rate_and_events_per_topic() -> None:
    assert TRAFFIC.peak_messages_per_s == 2
    assert events_per_s(TRAFFIC) == {INBOUND: 2, OUTBOUND: 2, STATUS: 4}


def test_each_handler_gets_the_topics_it_reads() -> None:
    loads = handler_loads({INBOUND: 2, OUTBOUND: 2, STATUS: 4})
    assert loads[PROCESSOR] == 2
    assert loads[DISPATCHER] == 2
    assert loads[TRACKER] == 4
    assert loads[AUDIT] == loads[ANALYTICS] == 8  # every topic


def test_the_dispatcher_also_waits_for_the_platform() -> None:
    r = rates(
        handler_service_ms={**DEFAULT_RATES.handler_service_ms, DISPATCHER: fig(20)},
        channel_api_ms=fig(180),
    )
    assert service_ms(r, DISPATCHER) == 200
    assert service_ms(r, PROCESSOR) == DEFAULT_RATES.handler_service_ms[PROCESSOR].value


def test_an_instance_is_limited_by_its_cpu_or_its_concurrency_whichever_first() -> None:
    cpu_bound = rates(
        handler_cpu_ms={**DEFAULT_RATES.handler_cpu_ms, PROCESSOR: fig(10)},
        handler_service_ms={**DEFAULT_RATES.handler_service_ms, PROCESSOR: fig(40)},
        cores_per_instance=fig(1),
    )
    # CPU: 1 core / 10 ms = 100/s; concurrency: 8 in flight / 40 ms = 200/s.
    assert per_instance(cpu_bound, PROCESSOR, 8) == (100, "CPU")
    waiting = rates(
        handler_cpu_ms={**DEFAULT_RATES.handler_cpu_ms, PROCESSOR: fig(1)},
        handler_service_ms={**DEFAULT_RATES.handler_service_ms, PROCESSOR: fig(100)},
    )
    assert per_instance(waiting, PROCESSOR, 8) == (80, "concurrency")


@pytest.mark.parametrize(
    ("load", "capacity", "utilization", "expected"),
    [(0, 100, 0.7, 0), (1, 100, 0.7, 1), (70, 100, 0.7, 1), (71, 100, 0.7, 2), (700, 100, 0.7, 10)],
)
def test_instances_run_at_the_planned_utilization(
    load: float, capacity: float, utilization: float, expected: int
) -> None:
    assert instances(load, capacity, utilization) == expected


def test_round_up_to_a_multiple() -> None:
    assert [round_up(n, 6) for n in (1, 6, 7, 149)] == [6, 6, 12, 150]


def test_partitions_follow_the_slowest_consumer_of_each_topic() -> None:
    r = rates(
        handler_service_ms={
            PROCESSOR: fig(100), DISPATCHER: fig(50), TRACKER: fig(10), AUDIT: fig(10),
            ANALYTICS: fig(20),
        },
        channel_api_ms=fig(150),
    )  # fmt: skip
    traffic = Traffic(messages_per_day=86_400 * 70, peak_factor=1, statuses_per_reply=1)
    topics = {t.name: t for t in plan(traffic, r, DEPLOYMENT).topics}
    # inbound: 70/s; the processor carries 10/s per partition; at 70 % → 10 partitions.
    assert topics[INBOUND].slowest == PROCESSOR
    assert topics[INBOUND].per_partition == 10
    assert topics[INBOUND].partitions == 10
    assert topics[INBOUND].recommended == 12  # never below what is deployed
    # outbound: the dispatcher's 50 + 150 ms → 5/s per partition → 70 / 3.5 = 20 → 24.
    assert topics[OUTBOUND].partitions == 20
    assert topics[OUTBOUND].recommended == 24
    # status: analytics-sink's 20 ms is the slowest → 50/s → 70 / 35 = 2.
    assert topics[STATUS].slowest == ANALYTICS
    assert topics[STATUS].partitions == 2


def test_server_loads_per_message() -> None:
    r = rates(
        mongodb_per_turn=fig(9),
        mongodb_per_status=fig(1),
        mongodb_per_audit_event=fig(1),
        redis_per_turn=fig(4),
        redis_per_webhook=fig(2),
        record_kib=fig(1),
    )
    result = plan(TRAFFIC, r, DEPLOYMENT)  # 2 messages/s, 2 statuses per reply
    servers = {s.name: s.load_per_s for s in result.servers}
    # MongoDB: 2 x 9 per turn + 2 x (2 - 1) further statuses + 8 audited events.
    assert servers["MongoDB"] == 2 * 9 + 2 * 1 + 8
    # Redis: 2 x 4 per turn + 6 webhooks (message + 2 statuses, 2/s) x 2.
    assert servers["Redis"] == 2 * 4 + 6 * 2
    assert servers["Kafka"] == 8  # inbound 2 + outbound 2 + status 4
    assert servers["PostgreSQL"] == 8
    assert result.kafka_mib_per_s == pytest.approx(8 / 1024)
    assert result.webhook_requests_per_s == 6


def test_the_busiest_webhook_gets_its_share() -> None:
    r = rates(webhook_rps=fig(100))
    traffic = Traffic(messages_per_day=86_400 * 100, peak_factor=1, statuses_per_reply=0,
                      busiest_channel_share=0.5, utilization=0.5)  # fmt: skip
    [webhooks] = [f for f in plan(traffic, r, DEPLOYMENT).functions if f.name == WEBHOOKS]
    assert webhooks.load_per_s == 50
    assert webhooks.instances == 1  # 50 / (100 x 0.5)
    assert webhooks.max_scale == math.ceil(1 * traffic.headroom)


def test_limits_come_closest_first_and_name_the_cluster_limit() -> None:
    result = plan(Traffic(messages_per_day=50_000_000), DEFAULT_RATES, DEPLOYMENT)
    limits = result.limits()
    assert [x.utilization for x in limits] == sorted((x.utilization for x in limits), reverse=True)
    assert limits[0].utilization > 1  # 50 M a day does not fit today's deployment
    assert any("max-scale-limit" in x.what for x in limits)


def test_a_small_day_fits_what_is_deployed() -> None:
    result: Plan = plan(Traffic(messages_per_day=100_000), DEFAULT_RATES, FALLBACK_DEPLOYMENT)
    assert all(limit.utilization < 1 for limit in result.limits())


def test_the_models_consumers_are_the_kafkasource_manifests() -> None:
    # kafka-sources/ is the one source of which handler reads which topic; the model's copy
    # (it stays a pure function of its arguments) must say the same.
    from pathlib import Path

    from shared.capacity.model import CONSUMERS
    from shared.kafkasource import manifests

    suffixes = {".messages.inbound": INBOUND, ".messages.outbound": OUTBOUND}
    suffixes[".messages.status"] = STATUS
    readers: dict[str, set[str]] = {topic: set() for topic in CONSUMERS}
    root = Path(__file__).resolve().parents[3]
    for source in manifests.load(root / "kafka-sources"):
        for topic in source.topics:
            kind = next((k for s, k in suffixes.items() if topic.endswith(s)), None)
            if kind is not None:
                readers[kind].add(source.name)
    assert readers == {topic: set(names) for topic, names in CONSUMERS.items()}
