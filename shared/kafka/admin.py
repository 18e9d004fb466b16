"""Topic administration for the local stack and the tests (production topics are provisioned)."""

from __future__ import annotations

import contextlib
from collections.abc import Sequence


def ensure_topics(brokers: Sequence[str], topics: Sequence[str], partitions: int = 3) -> None:
    """Create missing topics (local stack and tests; production topics are provisioned)."""
    from kafka.admin import KafkaAdminClient, NewTopic
    from kafka.errors import TopicAlreadyExistsError

    admin = KafkaAdminClient(bootstrap_servers=list(brokers), client_id="chat-service-admin")
    try:
        existing = set(admin.list_topics())
        missing = [t for t in topics if t not in existing]
        if missing:
            with contextlib.suppress(TopicAlreadyExistsError):  # another process won the race
                admin.create_topics(
                    [NewTopic(t, num_partitions=partitions, replication_factor=1) for t in missing]
                )
    finally:
        admin.close()
