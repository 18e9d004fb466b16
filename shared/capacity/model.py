"""The capacity model's arithmetic: traffic at peak → load per topic, function and server →
partitions, instances and ``max-scale``, and which limit is reached first. Pure: every input
is an argument (:mod:`.inputs` reads them from the benchmark and the Knative bundle).

A message is one inbound webhook, one bot turn (message-processor), one reply
(outbound-dispatcher) and the statuses the platform reports for it (status-tracker; WhatsApp
and Messenger report them, the others do not), each also seen by audit-logger and
analytics-sink. KafkaSource delivers one event per partition at a time (ordered delivery), so
a topic's throughput is at most ``partitions * 1000 / service ms`` of its slowest consumer, and
a handler never has more requests in flight than the partitions of its topics.
"""

from __future__ import annotations

import math
from collections.abc import Mapping

from shared.dataclass import dataclass, field

SECONDS_PER_DAY = 86_400
PROCESSOR, DISPATCHER, TRACKER = "message-processor", "outbound-dispatcher", "status-tracker"
AUDIT, ANALYTICS = "audit-logger", "analytics-sink"
HANDLERS = (PROCESSOR, DISPATCHER, TRACKER, AUDIT, ANALYTICS)
INBOUND, OUTBOUND, STATUS = "inbound", "outbound", "status"
# Which handlers read which topic (kafka-sources/).
CONSUMERS = {
    INBOUND: (PROCESSOR, AUDIT, ANALYTICS),
    OUTBOUND: (DISPATCHER, AUDIT, ANALYTICS),
    STATUS: (TRACKER, AUDIT, ANALYTICS),
}
WEBHOOKS = "webhooks (busiest channel)"


@dataclass(frozen=True)
class Figure:
    """A number the model uses and where it comes from: "measured …" or "assumed …"."""

    value: float
    source: str

    @property
    def measured(self) -> bool:
        return self.source.startswith("measured")


@dataclass(frozen=True)
class Traffic:
    messages_per_day: float
    peak_factor: float = 3.0  # the busiest hour's rate over the day's mean
    statuses_per_reply: float = 2.0  # delivery receipts per reply, over the channel mix
    busiest_channel_share: float = 0.6  # of all webhooks, at the busiest channel's function
    utilization: float = 0.7  # plan everything to run at this share of its capacity
    headroom: float = 1.5  # max-scale over the instances the peak needs

    @property
    def peak_messages_per_s(self) -> float:
        return self.messages_per_day / SECONDS_PER_DAY * self.peak_factor


@dataclass(frozen=True)
class Rates:
    """Per-instance rates and per-message costs (the benchmark's, or assumptions)."""

    webhook_rps: Figure  # one webhook instance (WORKERS=1), CPU-bound
    handler_cpu_ms: Mapping[str, Figure]  # CPU per event, per handler
    handler_service_ms: Mapping[str, Figure]  # time to answer one event (a partition's turn)
    channel_api_ms: Figure  # the platform's API round trip, added to the dispatcher's time
    mongodb_per_turn: Figure  # commands: processor + dispatcher + one status (round trips)
    redis_per_turn: Figure
    mongodb_per_status: Figure  # a further status's writes
    mongodb_per_audit_event: Figure
    redis_per_webhook: Figure  # ingress dedupe
    record_kib: Figure  # one Kafka record, headers included
    cores_per_instance: Figure  # the Services' CPU limit
    mongodb_ops_capacity: Figure  # what the production servers sustain
    redis_ops_capacity: Figure
    kafka_records_capacity: Figure  # produced per second, acks=all
    postgres_inserts_capacity: Figure


@dataclass(frozen=True)
class Deployment:
    """What the bundle deploys today (knative/overlays/production)."""

    partitions: int
    max_scale: Mapping[str, int]  # per Service
    container_concurrency: Mapping[str, int]
    target: Mapping[str, float]  # KPA concurrency target per instance
    max_scale_limit: int | None = None  # the cluster's (config-autoscaler), as recorded


@dataclass(frozen=True)
class FunctionPlan:
    name: str
    load_per_s: float  # requests or events at peak
    per_instance: float  # what one instance handles
    instances: int
    max_scale: int  # recommended
    deployed_max_scale: int | None
    limited_by: str  # "CPU" or "concurrency"


@dataclass(frozen=True)
class TopicPlan:
    name: str
    events_per_s: float
    slowest: str  # the consumer whose service time bounds a partition
    per_partition: float  # events per second one partition carries
    partitions: int  # needed
    recommended: int
    deployed: int


@dataclass(frozen=True)
class ServerLoad:
    name: str
    load_per_s: float
    unit: str
    capacity: float

    @property
    def utilization(self) -> float:
        return self.load_per_s / self.capacity if self.capacity else math.inf


@dataclass(frozen=True)
class Limit:
    what: str
    utilization: float  # of the deployed or assumed limit, at peak
    detail: str


@dataclass
class Plan:
    traffic: Traffic
    peak_messages_per_s: float
    webhook_requests_per_s: float
    topics: list[TopicPlan] = field(default_factory=list)
    functions: list[FunctionPlan] = field(default_factory=list)
    servers: list[ServerLoad] = field(default_factory=list)
    kafka_mib_per_s: float = 0.0
    max_scale_limit: int | None = None

    def limits(self) -> list[Limit]:
        """Everything with a limit, the closest to it first."""
        found = [
            Limit(f"topic {t.name}: partitions", t.partitions / t.deployed,
                  f"needs {t.partitions}, has {t.deployed}")
            for t in self.topics
        ]  # fmt: skip
        for f in self.functions:
            if self.max_scale_limit and f.max_scale > self.max_scale_limit:
                found.append(
                    Limit(f"{f.name}: the cluster's max-scale-limit",
                          f.max_scale / self.max_scale_limit,
                          f"max-scale {f.max_scale} wanted, limit {self.max_scale_limit}")
                )  # fmt: skip
            if f.deployed_max_scale:
                found.append(
                    Limit(f"{f.name}: max-scale", f.instances / f.deployed_max_scale,
                          f"instances {f.instances}, max-scale {f.deployed_max_scale}")
                )  # fmt: skip
        for s in self.servers:
            found.append(
                Limit(s.name, s.utilization,
                      f"{s.load_per_s:,.0f} {s.unit} of {s.capacity:,.0f}")
            )  # fmt: skip
        return sorted(found, key=lambda limit: -limit.utilization)


def events_per_s(traffic: Traffic) -> dict[str, float]:
    """Each topic's events at peak."""
    peak = traffic.peak_messages_per_s
    return {INBOUND: peak, OUTBOUND: peak, STATUS: peak * traffic.statuses_per_reply}


def handler_loads(topic_events: Mapping[str, float]) -> dict[str, float]:
    loads = dict.fromkeys(HANDLERS, 0.0)
    for topic, consumers in CONSUMERS.items():
        for handler in consumers:
            loads[handler] += topic_events[topic]
    return loads


def service_ms(rates: Rates, handler: str) -> float:
    """A handler's time per event in production: the dispatcher also waits for the platform."""
    own = rates.handler_service_ms[handler].value
    return own + rates.channel_api_ms.value if handler == DISPATCHER else own


def per_instance(rates: Rates, handler: str, concurrency: int) -> tuple[float, str]:
    """Events per second one instance handles: its CPU or its concurrency, whichever first."""
    by_cpu = rates.cores_per_instance.value * 1000 / rates.handler_cpu_ms[handler].value
    by_concurrency = concurrency * 1000 / service_ms(rates, handler)
    return (by_cpu, "CPU") if by_cpu <= by_concurrency else (by_concurrency, "concurrency")


def instances(load: float, capacity: float, utilization: float) -> int:
    return max(1, math.ceil(load / (capacity * utilization))) if load > 0 else 0


def round_up(value: int, step: int) -> int:
    return max(step, math.ceil(value / step) * step)


def plan(traffic: Traffic, rates: Rates, deployment: Deployment) -> Plan:
    topic_events = events_per_s(traffic)
    webhooks = traffic.peak_messages_per_s * (1 + traffic.statuses_per_reply)
    result = Plan(traffic, traffic.peak_messages_per_s, webhooks)
    result.max_scale_limit = deployment.max_scale_limit
    u = traffic.utilization

    for topic, consumers in CONSUMERS.items():
        slowest = max(consumers, key=lambda h: service_ms(rates, h))
        carried = 1000 / service_ms(rates, slowest)
        needed = max(1, math.ceil(topic_events[topic] / (carried * u)))
        result.topics.append(
            TopicPlan(topic, topic_events[topic], slowest, carried, needed,
                      max(deployment.partitions, round_up(needed, 6)), deployment.partitions)
        )  # fmt: skip

    busiest = webhooks * traffic.busiest_channel_share
    count = instances(busiest, rates.webhook_rps.value, u)
    result.functions.append(
        FunctionPlan(WEBHOOKS, busiest, rates.webhook_rps.value, count,
                     _max_scale(count, traffic), deployment.max_scale.get("whatsapp-webhook"),
                     "CPU")
    )  # fmt: skip
    for handler, load in handler_loads(topic_events).items():
        concurrency = deployment.container_concurrency.get(handler, 8)
        capacity, limited_by = per_instance(rates, handler, concurrency)
        count = instances(load, capacity, u)
        result.functions.append(
            FunctionPlan(handler, load, capacity, count, _max_scale(count, traffic),
                         deployment.max_scale.get(handler), limited_by)
        )  # fmt: skip

    peak, statuses = traffic.peak_messages_per_s, traffic.statuses_per_reply
    audited = topic_events[INBOUND] + topic_events[OUTBOUND] + topic_events[STATUS]
    mongodb = (
        peak * rates.mongodb_per_turn.value
        + peak * (statuses - 1) * rates.mongodb_per_status.value  # the turn counts one
        + audited * rates.mongodb_per_audit_event.value
    )
    redis = peak * rates.redis_per_turn.value + webhooks * rates.redis_per_webhook.value
    produced = sum(topic_events.values())
    result.kafka_mib_per_s = produced * rates.record_kib.value / 1024
    result.servers = [
        ServerLoad("MongoDB", mongodb, "commands/s", rates.mongodb_ops_capacity.value),
        ServerLoad("Redis", redis, "commands/s", rates.redis_ops_capacity.value),
        ServerLoad("Kafka", produced, "records/s produced", rates.kafka_records_capacity.value),
        ServerLoad("PostgreSQL", audited, "rows/s", rates.postgres_inserts_capacity.value),
    ]
    return result


def _max_scale(count: int, traffic: Traffic) -> int:
    return max(1, math.ceil(count * traffic.headroom))
