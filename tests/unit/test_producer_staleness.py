"""A producer whose acknowledgements keep timing out while the broker answers is replaced.

After a broker loses its state (a memory-backed broker restarted, a cluster rebuilt under the
same address) it no longer knows the producer's id, and kafka-python retries with it until
every send times out. Found by the fault matrix (tests/reliability): webhooks answered 503 for
over a minute after the broker was back.
"""

from __future__ import annotations

import socket

from shared.kafka.producers import STALE_AFTER_TIMEOUTS, _Staleness


class KafkaTimeoutError(Exception):  # the name kafka-python's exception has
    pass


def test_timeouts_in_a_row_while_the_broker_answers_mean_a_stale_producer() -> None:
    with socket.socket() as broker:
        broker.bind(("127.0.0.1", 0))
        broker.listen()
        staleness = _Staleness([f"127.0.0.1:{broker.getsockname()[1]}"])
        verdicts = [staleness.stale_after(KafkaTimeoutError()) for _ in range(STALE_AFTER_TIMEOUTS)]
    assert verdicts == [False] * (STALE_AFTER_TIMEOUTS - 1) + [True]


def test_a_success_resets_the_count_and_other_errors_do_not_count() -> None:
    with socket.socket() as broker:
        broker.bind(("127.0.0.1", 0))
        broker.listen()
        staleness = _Staleness([f"127.0.0.1:{broker.getsockname()[1]}"])
        for _ in range(STALE_AFTER_TIMEOUTS - 1):
            assert not staleness.stale_after(KafkaTimeoutError())
        staleness.succeeded()
        assert not staleness.stale_after(KafkaTimeoutError())
        assert not staleness.stale_after(ValueError())


def test_a_broker_that_is_down_is_waited_for_not_blamed_on_the_producer() -> None:
    with socket.socket() as unused:
        unused.bind(("127.0.0.1", 0))
        port = unused.getsockname()[1]
    staleness = _Staleness([f"127.0.0.1:{port}"])  # nothing listens there
    assert not any(
        staleness.stale_after(KafkaTimeoutError()) for _ in range(3 * STALE_AFTER_TIMEOUTS)
    )
