"""Classifying channel API answers: sent, retry later (429/503), or never (failed)."""

from __future__ import annotations

import email.utils
import json
import time
from collections.abc import Callable
from typing import Any

import httpx
import pytest

from shared.errors import DependencyUnavailable, RateLimited
from shared.models import Channel
from shared.outbound.api import ApiRequest, Undeliverable
from shared.outbound.send import ChannelApi

Responder = Callable[[httpx.Request], httpx.Response]


def api(responder: Responder) -> ChannelApi:
    return ChannelApi(5.0, client=httpx.Client(transport=httpx.MockTransport(responder)))


def request(channel: Channel) -> ApiRequest:
    return ApiRequest(
        channel, "POST", "https://api.example/send", {"Authorization": "Bearer t"}, {"a": 1}
    )


def answer(status: int, body: Any, headers: dict[str, str] | None = None) -> Responder:
    return lambda _: httpx.Response(status, json=body, headers=headers)


# Success shapes → the provider's message id


@pytest.mark.parametrize(
    ("channel", "body", "provider_id"),
    [
        (
            Channel("whatsapp"),
            {"messaging_product": "whatsapp", "messages": [{"id": "wamid.ABC"}]},
            "wamid.ABC",
        ),
        (
            Channel("slack"),
            {"ok": True, "channel": "C1", "ts": "1718000000.000200"},
            "1718000000.000200",
        ),
        (Channel("telegram"), {"ok": True, "result": {"message_id": 42, "chat": {"id": 5}}}, "42"),
    ],
)
def test_success_returns_the_provider_message_id(
    channel: Channel, body: dict[str, Any], provider_id: str
) -> None:
    assert api(answer(200, body)).send(request(channel)) == provider_id


def test_the_request_is_sent_as_built() -> None:
    seen: list[httpx.Request] = []

    def responder(sent: httpx.Request) -> httpx.Response:
        seen.append(sent)
        return httpx.Response(200, json={"ok": True, "ts": "1.2"})

    api(responder).send(request(Channel("slack")))

    [sent] = seen
    assert sent.method == "POST"
    assert str(sent.url) == "https://api.example/send"
    assert sent.headers["Authorization"] == "Bearer t"
    assert json.loads(sent.content) == {"a": 1}


# 429 → RateLimited with Retry-After honoured


@pytest.mark.parametrize("channel", [Channel(name) for name in ("whatsapp", "slack", "telegram")])
def test_429_with_retry_after_seconds(channel: Channel) -> None:
    with pytest.raises(RateLimited) as caught:
        api(answer(429, {}, {"Retry-After": "7"})).send(request(channel))

    assert caught.value.retry_after_s == 7


def test_429_with_retry_after_http_date() -> None:
    when = email.utils.formatdate(time.time() + 30, usegmt=True)

    with pytest.raises(RateLimited) as caught:
        api(answer(429, {}, {"Retry-After": when})).send(request(Channel("slack")))

    assert 25 <= caught.value.retry_after_s <= 31


def test_429_without_retry_after_waits_a_second() -> None:
    with pytest.raises(RateLimited) as caught:
        api(answer(429, {})).send(request(Channel("whatsapp")))

    assert caught.value.retry_after_s == 1


@pytest.mark.parametrize(("header", "expected"), [("inf", 1), ("nan", 1), ("86400", 3600)])
def test_unusable_or_huge_retry_after_is_bounded(header: str, expected: int) -> None:
    with pytest.raises(RateLimited) as caught:
        api(answer(429, {}, {"Retry-After": header})).send(request(Channel("whatsapp")))

    assert caught.value.retry_after_s == expected


def test_telegram_retry_after_parameter() -> None:
    body = {
        "ok": False,
        "error_code": 429,
        "description": "Too Many Requests: retry after 12",
        "parameters": {"retry_after": 12},
    }

    with pytest.raises(RateLimited) as caught:
        api(answer(429, body)).send(request(Channel("telegram")))

    assert caught.value.retry_after_s == 12


def test_slack_ratelimited_in_a_200_is_transient() -> None:
    with pytest.raises(RateLimited) as caught:
        api(answer(200, {"ok": False, "error": "ratelimited"}, {"Retry-After": "3"})).send(
            request(Channel("slack"))
        )

    assert caught.value.retry_after_s == 3


def test_whatsapp_throughput_error_code_is_rate_limited() -> None:
    body = {"error": {"message": "(#130429) Rate limit hit", "code": 130429}}

    with pytest.raises(RateLimited):
        api(answer(400, body)).send(request(Channel("whatsapp")))


# 5xx, connect errors, timeouts → DependencyUnavailable


@pytest.mark.parametrize("status", [500, 502, 503])
def test_5xx_is_transient(status: int) -> None:
    with pytest.raises(DependencyUnavailable) as caught:
        api(answer(status, {"error": {"message": "boom", "code": 1}})).send(
            request(Channel("whatsapp"))
        )

    assert caught.value.dependency == "whatsapp-api"


@pytest.mark.parametrize(
    "error",
    [
        httpx.ConnectError("refused"),
        httpx.ConnectTimeout("slow"),
        httpx.ReadTimeout("no answer"),
        httpx.RemoteProtocolError("dropped"),
    ],
)
def test_transport_errors_are_transient(error: httpx.TransportError) -> None:
    def responder(_: httpx.Request) -> httpx.Response:
        raise error

    with pytest.raises(DependencyUnavailable) as caught:
        api(responder).send(request(Channel("telegram")))

    assert type(error).__name__ in caught.value.message


def test_slack_internal_error_is_transient() -> None:
    with pytest.raises(DependencyUnavailable):
        api(answer(200, {"ok": False, "error": "internal_error"})).send(request(Channel("slack")))


@pytest.mark.parametrize(
    ("channel", "body"),
    [
        (Channel("whatsapp"), {"messaging_product": "whatsapp", "messages": []}),
        (Channel("slack"), {"ok": True}),
        (Channel("telegram"), {"ok": True, "result": {}}),
    ],
)
def test_2xx_without_a_message_id_is_retried_not_failed(
    channel: Channel, body: dict[str, Any]
) -> None:
    with pytest.raises(DependencyUnavailable, match="without a message id"):
        api(answer(200, body)).send(request(channel))


def test_2xx_that_is_not_json_is_retried() -> None:
    with pytest.raises(DependencyUnavailable):
        api(lambda _: httpx.Response(200, text="<html>")).send(request(Channel("whatsapp")))


# Other 4xx → Undeliverable with the provider's error


def test_whatsapp_4xx_is_permanent_with_the_graph_error() -> None:
    body = {
        "error": {
            "message": "(#131047) Re-engagement message",
            "type": "OAuthException",
            "code": 131047,
        }
    }

    with pytest.raises(Undeliverable) as caught:
        api(answer(400, body)).send(request(Channel("whatsapp")))

    assert caught.value.to_dict() == {
        "code": "131047",
        "message": "(#131047) Re-engagement message",
        "http_status": 400,
    }


def test_slack_ok_false_is_permanent() -> None:
    with pytest.raises(Undeliverable) as caught:
        api(answer(200, {"ok": False, "error": "channel_not_found"})).send(
            request(Channel("slack"))
        )

    assert caught.value.code == "channel_not_found"


def test_telegram_400_is_permanent_with_the_description() -> None:
    body = {"ok": False, "error_code": 400, "description": "Bad Request: chat not found"}

    with pytest.raises(Undeliverable) as caught:
        api(answer(400, body)).send(request(Channel("telegram")))

    assert (caught.value.code, caught.value.message) == ("400", "Bad Request: chat not found")


def test_4xx_without_a_body_is_permanent() -> None:
    with pytest.raises(Undeliverable) as caught:
        api(lambda _: httpx.Response(403)).send(request(Channel("telegram")))

    assert caught.value.code == "http_403"


def test_the_client_is_created_on_first_use_only() -> None:
    lazy = ChannelApi(2.5)

    assert lazy._client is None
    client = lazy.client()
    assert client is lazy.client()
    assert client.timeout.read == 2.5
    client.close()


def test_no_request_url_is_logged(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level("DEBUG")
    telegram = ApiRequest(
        Channel("telegram"), "POST", "https://api.example/bot123:SECRET/sendMessage", {}
    )

    api(answer(200, {"ok": True, "result": {"message_id": 1}})).send(telegram)

    assert "SECRET" not in caplog.text
