"""CloudEvents ⇄ Kafka records in binary content mode, through ``cloudevents.kafka``."""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from cloudevents.http import CloudEvent
from cloudevents.kafka import KafkaMessage, from_binary, to_binary


def to_record(event: CloudEvent) -> KafkaMessage:
    message = to_binary(event, data_marshaller=_marshal)
    key = message.key
    return KafkaMessage(
        message.headers, key.encode() if isinstance(key, str) else key, message.value
    )


def from_record(
    headers: Sequence[tuple[str, bytes]], key: bytes | str | None, value: bytes | str
) -> Any:
    """A CloudEvent from a consumed record's parts (kafka-python gives headers as pairs)."""
    event = from_binary(KafkaMessage(dict(headers), key, value), data_unmarshaller=json.loads)
    if isinstance(event.get("partitionkey"), bytes):
        event["partitionkey"] = event["partitionkey"].decode()
    return event


def _marshal(data: Any) -> bytes:
    return json.dumps(data, separators=(",", ":"), ensure_ascii=False).encode()


@dataclass(frozen=True)
class ConsumedRecord:
    topic: str
    partition: int
    offset: int
    key: bytes | None
    headers: dict[str, bytes]
    value: bytes

    def event(self) -> Any:
        return from_record(list(self.headers.items()), self.key, self.value)


Partition = tuple[str, int]  # (topic, partition): kafka-python's TopicPartition stays in here


@dataclass(frozen=True)
class TimedRecord(ConsumedRecord):
    timestamp_ms: int = 0  # the record's create time (Knative stamps wrapped events with it)
