"""Kafka in binary content mode. The only package that touches kafka-python.

CloudEvents become Kafka records through ``cloudevents.kafka`` (``ce_*`` headers, JSON value,
key = the ``partitionkey`` extension = the conversation key) and come back the same way. The
producer waits for ``acks=all`` within a bound, so a webhook is acknowledged only once its
event is durable, and a broker outage becomes :class:`DependencyUnavailable` (HTTP 503).
"""

from shared.kafka.admin import ensure_topics
from shared.kafka.consumers import GroupConsumer, follow_topics, read_to_end, read_topic
from shared.kafka.producers import EventProducer, RecordProducer, brokers_reachable
from shared.kafka.records import ConsumedRecord, Partition, TimedRecord, from_record, to_record

__all__ = [
    "ConsumedRecord",
    "EventProducer",
    "GroupConsumer",
    "Partition",
    "RecordProducer",
    "TimedRecord",
    "brokers_reachable",
    "ensure_topics",
    "follow_topics",
    "from_record",
    "read_to_end",
    "read_topic",
    "to_record",
]
