"""The webhook's flood gate (shared/ingress.py): a sender past their per-minute budget, or past
the burst of a 10-second window, has their further messages published to the overflow topic,
marked, instead of the inbound topic."""

from __future__ import annotations

from shared.idempotency import sender_count_key
from shared.ingress import Ingress
from shared.models import Sender
from shared.settings import Settings
from shared.tenants import TenantDirectory
from tests.builders import inbound_message
from tests.unit.fakes import MemoryDedupe, RecordingProducer

NOW = 1_750_000_000.0
SENDER = ("whatsapp", "acme", "106540352242922", "16505551234")


def ingress(
    budget: int, burst: int = 0, clock: list[float] | None = None
) -> tuple[Ingress, RecordingProducer, MemoryDedupe]:
    producer, dedupe = RecordingProducer(), MemoryDedupe()
    settings = Settings(user_rate_limit_per_min=budget, user_burst_per_10s=burst)
    now = clock if clock is not None else [NOW]
    return (
        Ingress(settings, TenantDirectory({}), producer, dedupe, clock=lambda: now[0]),
        producer,
        dedupe,
    )


def test_messages_past_the_senders_budget_go_to_the_overflow_topic_marked() -> None:
    gate, producer, dedupe = ingress(budget=3)
    flood = [inbound_message(platform_message_id=f"wamid.{n}") for n in range(5)]

    gate.publish("whatsapp", flood[:2], ttl_s=60)  # two requests, then one batch of three
    gate.publish("whatsapp", flood[2:], ttl_s=60)

    settings = Settings()
    topics = [topic for topic, _ in producer.published]
    assert topics == [settings.inbound_topic] * 3 + [settings.overflow_topic] * 2
    assert [event.get("overflow") for _, event in producer.published] == [None] * 3 + [
        "rate_limited"
    ] * 2
    counter = sender_count_key(*SENDER, int(NOW // 60))
    assert dedupe.counts == {counter: 5}
    assert len(dedupe.marked) == 5  # every message marked once, whichever its topic


def test_other_senders_and_statuses_are_not_counted() -> None:
    gate, producer, _ = ingress(budget=1)
    first = inbound_message(platform_message_id="wamid.1")
    other = inbound_message(platform_message_id="wamid.2", sender=Sender("491700000002", "B"))

    gate.publish("whatsapp", [first, other], ttl_s=60)

    assert [topic for topic, _ in producer.published] == [Settings().inbound_topic] * 2


def test_a_redelivery_counts_nothing_and_no_budget_counts_nothing() -> None:
    gate, producer, dedupe = ingress(budget=1)
    message = inbound_message()
    gate.publish("whatsapp", [message], ttl_s=60)
    gate.publish("whatsapp", [message], ttl_s=60)  # the platform's retry: a duplicate

    assert len(producer.published) == 1 and sum(dedupe.counts.values()) == 1
    unlimited, producer, dedupe = ingress(budget=0)
    unlimited.publish("whatsapp", [message], ttl_s=60)
    assert dedupe.counts == {} and producer.published[0][0] == Settings().inbound_topic


def test_a_burst_past_the_10_second_budget_overflows_and_the_next_window_is_answered() -> None:
    clock = [NOW]
    gate, producer, dedupe = ingress(budget=20, burst=2, clock=clock)
    burst = [inbound_message(platform_message_id=f"wamid.{n}") for n in range(4)]

    gate.publish("whatsapp", burst[:3], ttl_s=60)
    clock[0] += 10  # the next 10-second window, the same minute
    gate.publish("whatsapp", burst[3:], ttl_s=60)

    inbound, overflow = Settings().inbound_topic, Settings().overflow_topic
    assert [topic for topic, _ in producer.published] == [inbound, inbound, overflow, inbound]
    minute = sender_count_key(*SENDER, int(NOW // 60))
    assert dedupe.counts == {
        minute: 4,
        sender_count_key(*SENDER, int(NOW // 10), 10): 3,
        sender_count_key(*SENDER, int(NOW // 10) + 1, 10): 1,
    }


def test_no_per_minute_budget_means_no_burst_limit_either() -> None:
    gate, producer, dedupe = ingress(budget=0, burst=1)
    gate.publish(
        "whatsapp", [inbound_message(platform_message_id=f"w.{n}") for n in range(3)], ttl_s=60
    )
    assert {topic for topic, _ in producer.published} == {Settings().inbound_topic}
    assert dedupe.counts == {}
