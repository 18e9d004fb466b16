"""Observability on the running local stack, checked through a real Prometheus.

After end-to-end traffic on every channel — with a redelivered webhook, a rejected one, a
rate-limited user, a handoff, a channel API failing once, read receipts (one moving nothing),
one dead letter and one fallback reply (the engine is stopped last) —

- every function and the KafkaSource dispatcher is an ``up`` target;
- every expression of the recording rules and of every dashboard panel (cluster-only panels
  aside) returns at least one series through Prometheus' HTTP API, and every metric the alert
  rules read is exported: a dashboard showing a metric nothing exports fails here;
- no label value is a user's, chat's or message's id;
- one ``traceparent`` follows the WhatsApp message: Kafka headers of the inbound and outbound
  events, the Security Hub's and engine's call metadata, the channel API call, and the log
  lines of every function on the way, all under its trace id.
"""

from __future__ import annotations

import functools
import json
import os
import secrets
import signal
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import pytest

from shared.kafkasource import manifests
from tests.e2e.bot_support import Chat, Stack, messenger_body, poll, telegram_key
from tests.e2e.conftest import RunningStack, module_stack
from tests.unit.monitoring import dashboards_support, support

pytestmark = pytest.mark.e2e

ROOT = Path(__file__).resolve().parents[2]
USER_LIMIT = 3  # per user and minute in this stack: the fourth message of a chat is limited
SCRAPES_FOR_A_RATE = 3  # rate() needs two samples in its window; one more for the rules


@dataclass
class Traffic:
    trace_id: str
    traced: Chat
    chats: list[Chat] = field(default_factory=list)
    private_values: set[str] = field(default_factory=set)  # ids no label may carry


@pytest.fixture(scope="module")
def observed(
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[tuple[RunningStack, Stack, Traffic]]:
    support.require_binary("prometheus")
    env = {"USER_RATE_LIMIT_PER_MIN": str(USER_LIMIT)}
    with module_stack(tmp_path_factory, env) as (running, endpoints):
        stack = Stack(endpoints)
        assert endpoints["prometheus"]["url"], endpoints["prometheus"]
        assert endpoints["prometheus"]["url"] in running.output  # printed for the developer
        traffic = send_traffic(running, stack)
        wait_for_scrapes(stack)
        yield running, stack, traffic


def send_traffic(running: RunningStack, stack: Stack) -> Traffic:
    trace_id = secrets.token_hex(16)
    traceparent = f"00-{trace_id}-{secrets.token_hex(8)}-01"
    traced, body = stack.whatsapp("Hello", headers={"traceparent": traceparent})
    traffic = Traffic(trace_id, traced, [traced])
    stack.post_whatsapp(body)  # redelivered by the platform: deduplicated
    traffic.chats += [stack.slack("Hello"), stack.webchat("Hello"), stack.messenger("Hello")]
    stack.fail_next("telegram", 500)  # the first send fails, the retry is delivered
    limited = stack.telegram("Hello")
    traffic.chats.append(limited)
    for chat in traffic.chats:
        if chat.channel != "webchat":  # the widget reads its replies from the API
            stack.wait_calls(chat)
    # Twice USER_LIMIT + 2 in all: whichever minute windows they fall in, one window holds more
    # than the limit, and what is over it is stored, not answered.
    for number in range(2 * USER_LIMIT + 1):
        stack.telegram(f"message {number}", chat_id=limited.chat_id)
    handed_off = stack.telegram("Talk to a human")
    stack.wait_calls(handed_off)
    stack.telegram("Hello?", chat_id=handed_off.chat_id)  # a human's now: skipped (handoff)
    traffic.chats.append(handed_off)
    reject = stack.http.post(stack.tenant["whatsapp"]["webhook_url"], content=b"{}")
    assert reject.status_code == 401
    read_receipt(stack, traffic)
    dead_letter(stack)
    fallback(running, stack, traffic)
    for chat in traffic.chats:
        traffic.private_values |= {chat.chat_id, chat.conversation_key}
    return traffic


def read_receipt(stack: Stack, traffic: Traffic) -> None:
    [chat] = [c for c in traffic.chats if c.channel == "messenger"]
    page_id = stack.tenant["messenger"]["page_id"]
    watermark = int(time.time() * 1000)
    stack.post_messenger(messenger_body(page_id, chat.chat_id, read={"watermark": watermark}))
    # A later watermark with nothing new under it: a receipt that moves nothing (stale).
    time.sleep(1)
    later = {"watermark": watermark + 500}
    stack.post_messenger(messenger_body(page_id, chat.chat_id, read=later))


def dead_letter(stack: Stack) -> None:
    [source] = [s for s in manifests.load(ROOT / "kafka-sources") if s.name == "message-processor"]
    topic = source.delivery.dead_letter_topic
    assert topic is not None
    key = telegram_key(stack.tenant["telegram"]["bot_id"], "999")
    stack.wait_dead_lettered(topic, stack.publish_poison(key))


def fallback(running: RunningStack, stack: Stack, traffic: Traffic) -> None:
    pid = stack.endpoints["mcp_engine"]["pid"]
    os.kill(pid, signal.SIGTERM)
    running.wait_for_line(f"!!! mcp-engine (pid {pid}) exited")
    chat = stack.slack("Hello")
    traffic.chats.append(chat)
    stack.wait_calls(chat)


def prometheus(stack: Stack, path: str, **params: str) -> Any:
    response = httpx.get(
        stack.endpoints["prometheus"]["url"] + path, params=params, timeout=10, trust_env=False
    )
    assert response.status_code == 200, response.text
    document = response.json()
    assert document["status"] == "success", document
    return document["data"]


def query(stack: Stack, expr: str) -> list[dict[str, Any]]:
    data = prometheus(stack, "/api/v1/query", query=expr)
    result: list[dict[str, Any]] = data["result"] if data["resultType"] == "vector" else []
    return result


def wait_for_scrapes(stack: Stack) -> None:
    """Until the last of the traffic is scraped, then a few more scrapes for rate()."""
    for series in ("chat_engine_fallback_total", "chat_rate_limited_total"):
        poll(f"{series} in Prometheus", functools.partial(query, stack, series), timeout_s=60)
    interval = 5.0  # shared.devstack.prometheus.SCRAPE_INTERVAL
    time.sleep(interval * SCRAPES_FOR_A_RATE)


def test_every_function_and_the_dispatcher_are_up_targets(
    observed: tuple[RunningStack, Stack, Traffic],
) -> None:
    _, stack, _ = observed
    targets = prometheus(stack, "/api/v1/targets", state="active")["activeTargets"]
    health = {
        (t["labels"]["job"], t["labels"].get("knative_service", "")): t["health"] for t in targets
    }
    expected = {("chat-service", name) for name in stack.endpoints["functions"]}
    expected.add(("chat-service-kafkasource", ""))
    assert set(health) == expected
    assert set(health.values()) == {"up"}, health


def test_every_recording_rule_and_dashboard_expression_has_series(
    observed: tuple[RunningStack, Stack, Traffic],
) -> None:
    _, stack, _ = observed
    expressions = [(f"recording rule {name}", expr) for name, expr in support.rule_expressions()]
    expressions += [
        (f"dashboard {board}: {title}", expr)
        for board, title, expr in dashboards_support.panel_expressions()
    ]
    assert len(expressions) > 20
    empty = [f"{what}: {expr}" for what, expr in expressions if not query(stack, expr)]
    assert not empty, "no series for:\n" + "\n".join(empty)


def test_every_metric_the_alerts_read_is_exported(
    observed: tuple[RunningStack, Stack, Traffic],
) -> None:
    _, stack, _ = observed
    names = support.alert_metric_names()
    assert names
    missing = [
        name
        for name in sorted(names)
        if not query(stack, f'count({{__name__=~"{name}(_bucket|_count|_sum)?"}})')
    ]
    assert not missing, f"alert rules read series nothing exports: {missing}"


def test_no_label_carries_a_user_chat_or_message_id(
    observed: tuple[RunningStack, Stack, Traffic],
) -> None:
    _, stack, traffic = observed
    series = prometheus(stack, "/api/v1/series", **{"match[]": '{__name__=~"chat_.+|flask_.+"}'})
    assert series
    values = {value for labels in series for value in labels.values()}
    leaked = {v for v in values for private in traffic.private_values if private in v}
    assert not leaked
    tenants = {labels["tenant"] for labels in series if "tenant" in labels}
    assert tenants == {stack.tenant["id"]}


def test_one_trace_id_follows_the_message_through_every_hop(
    observed: tuple[RunningStack, Stack, Traffic],
) -> None:
    _, stack, traffic = observed
    trace, chat = traffic.trace_id, traffic.traced

    for topic in ("inbound", "outbound"):
        [record] = stack.records(stack.topics[topic], chat.conversation_key)
        assert record.headers["ce_traceparent"].decode().split("-")[1] == trace, topic

    [call] = stack.wait_calls(chat)
    headers = {k.lower(): v for k, v in call["headers"].items()}
    assert headers["traceparent"].split("-")[1] == trace

    for server in ("mcp_engine", "security_hub"):
        log = Path(stack.endpoints[server]["log"]).read_text(encoding="utf-8")
        assert f"traceparent=00-{trace}-" in log, server

    for function in ("whatsapp-webhook", "message-processor", "outbound-dispatcher"):
        lines = log_lines(stack, function)
        mine = [line for line in lines if line.get("correlation_id") == trace]
        assert mine, f"{function} logged nothing under trace {trace}"
        handled = [line for line in mine if line["message"] in ("event handled", "event published")]
        assert handled, function
        for line in handled:
            assert line["service"] == function
            assert line["tenant"] == stack.tenant["id"] and line["channel"] == "whatsapp"
            assert line["event_id"]


def log_lines(stack: Stack, function: str) -> list[dict[str, Any]]:
    path = Path(stack.endpoints["functions"][function]["log"])
    lines = []
    for text in path.read_text(encoding="utf-8").splitlines():
        if text.startswith("{"):
            lines.append(json.loads(text))
    return lines
