"""A per-process object is made once, even when the first calls come at once."""

from __future__ import annotations

import threading
import time

from shared.caching import clear_all, per_process

made: list[int] = []


@per_process
def slow_client() -> int:
    made.append(1)
    time.sleep(0.05)  # long enough for every thread to miss the cache at the same time
    return len(made)


def test_concurrent_first_calls_make_one_object() -> None:
    made.clear()
    slow_client.cache_clear()
    start = threading.Barrier(8)
    got: list[int] = []

    def call() -> None:
        start.wait()
        got.append(slow_client())

    threads = [threading.Thread(target=call) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()

    assert made == [1] and got == [1] * 8
    assert slow_client.cache_info().currsize == 1
    clear_all()
    assert slow_client.cache_info().currsize == 0
    assert slow_client() == 2  # made again from the (changed) environment
