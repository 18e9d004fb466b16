"""Topic administration: the local stack, the tests and the cluster's bootstrap Job.

:func:`ensure_topics` creates the topics that are missing and leaves the others alone: a
topic's partition count is never changed here, because adding partitions moves conversation
keys to other partitions and breaks the per-conversation order (an operator does that by hand,
with the runbook). Run twice, the second run creates nothing.
"""

from __future__ import annotations

import contextlib
from collections.abc import Mapping, Sequence

from shared.dataclass import dataclass, field


@dataclass(frozen=True)
class TopicReport:
    created: list[str] = field(default_factory=list)
    existing: dict[str, int] = field(default_factory=dict)  # topic → partitions it has
    # Existing topics with fewer partitions than asked for (reported, not changed).
    short: dict[str, int] = field(default_factory=dict)


DEFAULT_PARTITIONS = 3  # a topic created here without a count (the local stack's, the tests')


def ensure_topics(
    brokers: Sequence[str],
    topics: Sequence[str],
    partitions: int = DEFAULT_PARTITIONS,
    *,
    replication_factor: int = 1,
    configs: Mapping[str, str] | None = None,
) -> TopicReport:
    """Create the missing ``topics``; report the partitions of those that exist."""
    from kafka.admin import KafkaAdminClient, NewTopic
    from kafka.errors import TopicAlreadyExistsError

    admin = KafkaAdminClient(bootstrap_servers=list(brokers), client_id="chat-service-admin")
    try:
        before = set(admin.list_topics())
        missing = [t for t in topics if t not in before]
        created: list[str] = []
        if missing:
            new = [
                NewTopic(
                    t,
                    num_partitions=partitions,
                    replication_factor=replication_factor,
                    topic_configs=dict(configs or {}),
                )
                for t in missing
            ]
            with contextlib.suppress(TopicAlreadyExistsError):  # another process won the race
                admin.create_topics(new)
                created = missing
        present = [t for t in topics if t in before]
        counts = _partition_counts(admin, present) if present else {}
    finally:
        admin.close()
    short = {t: n for t, n in counts.items() if n < partitions}
    return TopicReport(created=created, existing=counts, short=short)


def _partition_counts(admin: object, topics: list[str]) -> dict[str, int]:
    described = admin.describe_topics(topics)  # type: ignore[attr-defined]
    # kafka-python 3 names the topic `name` (the Metadata API's field); 2.x said `topic`.
    return {
        str(entry.get("name") or entry.get("topic")): len(entry.get("partitions") or [])
        for entry in described
    }
