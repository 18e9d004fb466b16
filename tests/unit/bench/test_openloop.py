"""What became of every message of a phase: answered once (its latency), lost or doubled —
matched to the sandbox's calls by recipient, each message from a new end user."""

from __future__ import annotations

from typing import Any

from shared.devstack.traffic import Webhook
from tests.unit.bench.support import bench_module

openloop = bench_module("openloop")


def sent(recipient: str, channel: str = "telegram", at: float = 100.0, status: int = 200) -> Any:
    webhook = Webhook(channel, "http://x/", b"{}", {}, recipient)
    return openloop.Sent(webhook, status, at)


def call(
    recipient: str, at: float, channel: str = "telegram", status: int = 200, text: str = "Hi"
) -> Any:
    body = {"chat_id": int(recipient), "text": text}  # a Telegram sendMessage
    return {"channel": channel, "json": body, "time": at, "status": status, "response": {}}


class FakeDriver:
    """The sandbox's side of :class:`openloop.Driver`: its calls, and clearing them."""

    def __init__(self, calls: list[dict[str, Any]]) -> None:
        self._calls = calls
        self.cleared = False

    def calls(self) -> list[dict[str, Any]]:
        return self._calls

    def clear(self) -> None:
        self.cleared = True

    def collect(self, phase: Any, wait_s: float, settle_s: float) -> Any:
        return openloop.Driver.collect(self, phase, wait_s, settle_s)


def test_each_message_is_answered_once_lost_or_doubled() -> None:
    phase = openloop.Phase(rate=10, seconds=0.3)
    phase.sent = [sent("111", at=100.0), sent("222", at=100.1), sent("333", at=100.2)]
    calls = [
        call("111", 100.040),
        call("111", 100.070, text="And a second part"),  # a reply of two parts: once
        call("222", 100.160),
        call("222", 100.900),  # the same reply again: doubled
        call("444", 100.5),  # someone else's (an earlier phase's late reply)
        call("333", 100.3, status=500),  # a failed send is no reply
    ]
    driver = FakeDriver(calls)
    driver.collect(phase, wait_s=0, settle_s=0)
    assert driver.cleared
    assert [round(ms) for ms in phase.latencies_ms] == [40, 60]
    assert (phase.lost, phase.duplicated) == (1, 1)
    assert phase.examples == ["telegram 222: the same reply sent twice", "telegram 333: no reply"]
    assert not phase.healthy(p99_limit_ms=1000)


def test_a_rejected_webhook_is_not_waited_for_but_the_phase_is_not_steady() -> None:
    phase = openloop.Phase(rate=10, seconds=0.2)
    phase.sent = [sent("111"), sent("222", status=503)]
    FakeDriver([call("111", 100.05)]).collect(phase, wait_s=0, settle_s=0)
    assert (phase.accepted, phase.rejected, phase.lost) == (1, 1, 0)
    assert not phase.healthy(p99_limit_ms=1000)


def test_percentiles_and_a_steady_phase() -> None:
    phase = openloop.Phase(rate=100, seconds=1)
    phase.sent = [sent(str(100 + i)) for i in range(100)]
    phase.latencies_ms = [float(i) for i in range(1, 101)]
    assert phase.percentile_ms(50) == 50.5
    assert phase.percentile_ms(99) == 99.01
    assert phase.healthy(p99_limit_ms=100)
    assert not phase.healthy(p99_limit_ms=50)
    assert phase.summary()["p99_ms"] == 99.0
