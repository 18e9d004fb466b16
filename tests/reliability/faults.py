"""The fault matrix's machinery: steady webhooks from platforms that retry, a ledger of what
was accepted and answered, and the servers a scenario may kill.

The load is what the platforms send: a new user per message, round-robin over WhatsApp,
Telegram, Slack and Messenger, each webhook signed as the platform signs it. A sender retries a
5xx, a 429 or a refused connection with a short backoff for up to a minute, as Meta, Slack and
Telegram do; an accepted message is one that got a 2xx. The sandbox records the replies: a
message is answered when a successful channel API call reached its user, and answered twice
when two did.
"""

from __future__ import annotations

import json
import threading
import time
import uuid
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import httpx

from shared.channels import messenger, slack, telegram, whatsapp
from tests.e2e.bot_support import (
    messenger_body,
    slack_body,
    succeeded,
    telegram_body,
    unique_digits,
    whatsapp_body,
)

CHANNELS = ("whatsapp", "telegram", "slack", "messenger")
RETRY_FOR_S = 60.0
RETRY_PAUSE_S = 0.5


@dataclass
class Sent:
    tag: str
    channel: str
    recipient: str  # the chat the reply goes to
    first_at: float
    accepted_at: float | None = None
    attempts: int = 0
    statuses: list[int] = field(default_factory=list)


class Load:
    """Sends ``rate`` messages a second from a thread until stopped; every send in a thread of
    its own, so a slow or failing request does not slow the others (as platforms behave)."""

    def __init__(self, endpoints: dict[str, Any], scenario: str, rate: float) -> None:
        self.tenant = endpoints["tenant"]
        self.scenario = scenario
        self.rate = rate
        self.sent: list[Sent] = []
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._running = threading.Event()
        self._running.set()
        self._senders: list[threading.Thread] = []
        self._thread = threading.Thread(target=self._run, name=f"load-{scenario}", daemon=True)
        self._http = httpx.Client(trust_env=False, timeout=10)

    def start(self) -> Load:
        self._thread.start()
        return self

    def pause(self) -> None:
        self._running.clear()

    def resume(self) -> None:
        self._running.set()

    def stop(self) -> None:
        """No new messages; the ones in flight keep retrying until accepted or given up."""
        self._running.set()
        self._stop.set()
        self._thread.join()
        for sender in self._senders:
            sender.join(RETRY_FOR_S + 15)
        self._http.close()

    def _run(self) -> None:
        number = 0
        while not self._stop.is_set():
            if not self._running.wait(0.2):
                continue
            channel = CHANNELS[number % len(CHANNELS)]
            tag = f"fm-{self.scenario}-{number}-{uuid.uuid4().hex[:6]}"
            sender = threading.Thread(target=self._send, args=(channel, tag), daemon=True)
            sender.start()
            self._senders.append(sender)
            number += 1
            self._stop.wait(1 / self.rate)

    def _send(self, channel: str, tag: str) -> None:
        url, body, headers, recipient = self._request(channel, tag)
        record = Sent(tag, channel, recipient, time.time())
        with self._lock:
            self.sent.append(record)
        deadline = record.first_at + RETRY_FOR_S
        while time.time() < deadline:
            record.attempts += 1
            try:
                if channel == "slack":  # Slack signs a timestamp: a retry is signed again
                    url, body, headers, _ = self._request(channel, tag, body=body)
                status = self._http.post(url, content=body, headers=headers).status_code
            except httpx.HTTPError:
                status = 0
            record.statuses.append(status)
            if 200 <= status < 300:
                record.accepted_at = time.time()
                return
            if status and status < 500 and status != 429:
                return  # refused for good: the platform would not retry either
            time.sleep(RETRY_PAUSE_S)

    def _request(
        self, channel: str, tag: str, body: bytes | None = None
    ) -> tuple[str, bytes, dict[str, str], str]:
        account = self.tenant[channel]
        json_type = {"Content-Type": "application/json"}
        if channel == "whatsapp":
            user = "1555" + unique_digits(8)
            body = whatsapp_body(account["phone_number_id"], user, tag)
            signature = whatsapp.sign(account["app_secret"], body)
            headers = {**json_type, whatsapp.SIGNATURE_HEADER: signature}
            return account["webhook_url"], body, headers, user
        if channel == "telegram":
            user = unique_digits(10)
            body = telegram_body(int(user), tag)
            headers = {**json_type, telegram.SECRET_HEADER: account["secret_token"]}
            return account["webhook_url"], body, headers, user
        if channel == "slack":
            if body is None:
                user = "D0FM" + uuid.uuid4().hex[:8].upper()
                document = json.loads(
                    slack_body(account["team_id"], account["bot_user_id"], user, tag)
                )
                # A new user too, as on the other channels: one user's per-minute budget
                # would otherwise hold back the whole load's Slack messages.
                document["event"]["user"] = "U0FM" + uuid.uuid4().hex[:8].upper()
                body = json.dumps(document).encode()
            else:
                user = json.loads(body)["event"]["channel"]
            stamp = str(int(time.time()))
            signature = slack.sign(account["signing_secret"], stamp, body)
            headers = {
                **json_type,
                slack.TIMESTAMP_HEADER: stamp,
                slack.SIGNATURE_HEADER: signature,
            }
            return account["events_url"], body, headers, user
        user = unique_digits(16)
        message = {"mid": f"m_{uuid.uuid4().hex}", "text": tag}
        body = messenger_body(account["page_id"], user, message=message)
        headers = {
            **json_type,
            messenger.SIGNATURE_HEADER: messenger.sign(account["app_secret"], body),
        }
        return account["webhook_url"], body, headers, user


@dataclass
class Outcome:
    scenario: str
    sent: int
    accepted: int
    replied: int
    duplicates: int
    lost: int
    dead_lettered: int
    recovery_s: float | None
    stored: int

    def row(self) -> list[str]:
        recovery = "-" if self.recovery_s is None else f"{self.recovery_s:.1f} s"
        values = (self.sent, self.accepted, self.replied, self.duplicates, self.lost)
        return [self.scenario, *map(str, values), str(self.dead_lettered), recovery]


def replies_by_recipient(calls: list[dict[str, Any]]) -> Counter[tuple[str, str]]:
    from shared.devstack.replies import describe

    answered: Counter[tuple[str, str]] = Counter()
    for call in calls:
        if succeeded(call):
            answered[(call["channel"], describe(call).recipient)] += 1
    return answered


def metrics(url: str) -> Callable[..., float]:
    """One scrape of the Prometheus text at ``url``; the function returned sums the samples
    of a metric, optionally only those with the given labels (every worker's, multiprocess)."""
    from prometheus_client.parser import text_string_to_metric_families

    samples = [
        sample
        for family in text_string_to_metric_families(httpx.get(url, timeout=10).text)
        for sample in family.samples
    ]

    def total(name: str, **labels: str) -> float:
        return sum(
            sample.value
            for sample in samples
            if sample.name == name
            and all(sample.labels.get(key) == value for key, value in labels.items())
        )

    return total


def wait_until(what: str, check: Callable[[], bool], timeout_s: float) -> bool:
    deadline = time.time() + timeout_s
    while time.time() < deadline:
        if check():
            return True
        time.sleep(0.5)
    return check()


def table(outcomes: list[Outcome]) -> str:
    headers = ["scenario", "sent", "accepted", "replied", "duplicates", "lost", "dead-lettered"]
    headers.append("recovery")
    rows = [headers, *(o.row() for o in outcomes)]
    widths = [max(len(r[i]) for r in rows) for i in range(len(headers))]
    lines = []
    for row in rows:
        cells = zip(row, widths, strict=True)
        lines.append(
            "  ".join(c.ljust(w) if i == 0 else c.rjust(w) for i, (c, w) in enumerate(cells))
        )
    lines.insert(1, "  ".join("-" * w for w in widths))
    return "\n".join(lines)
