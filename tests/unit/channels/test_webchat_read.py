"""Web chat's read side without a server: cursors, how stored and live messages look to the
widget, and the query parameters. Paging on a real MongoDB is in
tests/integration/test_webchat_read.py."""

from __future__ import annotations

import base64
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from shared.channels.webchat.read import (
    Cursor,
    Page,
    from_document,
    from_reply,
    milliseconds,
    optional_cursor,
    parse_limit,
    rfc3339_ms,
)
from shared.errors import InvalidParameter
from shared.models import Author, Channel, OutboundMessage, QuickReply
from shared.store.messages import outbound_document

KEY = "acme:webchat:site-acme/c1"
AT = datetime(2025, 6, 15, 15, 6, 40, 123456, tzinfo=UTC)


def reply(created_at: str = "2025-06-15T15:06:40.123456Z") -> OutboundMessage:
    return OutboundMessage(
        tenant_id="acme",
        channel=Channel("webchat"),
        account_id="site-acme",
        chat_id="c1",
        message_id="out-1",
        text="Hello!",
        author=Author.BOT,
        created_at=created_at,
        quick_replies=(QuickReply("faq_hours", "Opening hours"),),
    )


def stored(document: dict[str, Any]) -> dict[str, Any]:
    """A document as MongoDB hands it back: dates kept to the millisecond."""
    at = document["created_at"]
    return {**document, "created_at": at.replace(microsecond=at.microsecond // 1000 * 1000)}


def test_a_cursor_round_trips_and_is_opaque_url_safe_text() -> None:
    cursor = Cursor(1_750_000_000_123, "dev|abc/def:1")
    encoded = cursor.encode()
    assert Cursor.decode(encoded) == cursor
    assert "=" not in encoded and "+" not in encoded and "/" not in encoded


def test_cursors_order_as_mongodb_sorts_created_at_then_id() -> None:
    assert Cursor(1, "b") < Cursor(2, "a")
    assert Cursor(2, "a") < Cursor(2, "b")


@pytest.mark.parametrize(
    "garbage",
    [
        "!!!",
        "bm90IGEgY3Vyc29y",  # "not a cursor"
        base64.urlsafe_b64encode(b"2:1750000000000:x").decode(),  # another version
        base64.urlsafe_b64encode(b"1:12a:x").decode(),
        base64.urlsafe_b64encode(b"1:\xc2\xb2:x").decode(),  # a digit int() refuses
        base64.urlsafe_b64encode(b"1:" + b"9" * 30 + b":x").decode(),  # past any date
        base64.urlsafe_b64encode(b"1:" + b"9" * 15 + b":x").decode(),  # past a datetime's
        base64.urlsafe_b64encode(b"1:1750000000000:").decode(),  # no id
        base64.urlsafe_b64encode(b"\xff\xfe").decode(),
    ],
)
def test_anything_else_is_a_400_naming_the_parameter(garbage: str) -> None:
    with pytest.raises(InvalidParameter) as info:
        Cursor.decode(garbage, "last_event_id")
    assert info.value.parameter == "last_event_id"


def test_no_cursor_means_from_the_start() -> None:
    assert optional_cursor(None) is None
    assert optional_cursor("") is None


def test_milliseconds_round_down_as_bson_stores_a_date() -> None:
    assert milliseconds(AT) == 1_750_000_000_123
    assert milliseconds(AT.replace(tzinfo=None)) == 1_750_000_000_123  # naive is UTC
    assert rfc3339_ms(1_750_000_000_123) == "2025-06-15T15:06:40.123Z"
    assert rfc3339_ms(1_750_000_000_000) == "2025-06-15T15:06:40.000Z"


def test_a_stored_reply_and_the_same_reply_live_are_one_message() -> None:
    message = reply()
    from_storage = from_document(stored(outbound_document(message, AT)))
    live = from_reply(message.to_dict(), KEY)

    assert live is not None
    assert live.cursor == from_storage.cursor  # the stream dedupes on it; positions agree
    assert (
        live.body
        == from_storage.body
        == {
            "id": "out-1",
            "cursor": Cursor(1_750_000_000_123, "out-1").encode(),
            "direction": "outbound",
            "author": "bot",
            "text": "Hello!",
            "quick_replies": [{"id": "faq_hours", "title": "Opening hours"}],
            "created_at": "2025-06-15T15:06:40.123Z",
        }
    )


def test_the_visitors_own_message_carries_its_client_id() -> None:
    document = {
        "_id": "evt-1",
        "direction": "inbound",
        "text": "Hello",
        "created_at": AT,
        "raw": {"client_message_id": "m-1"},
        "sender": {"id": "v1"},
    }

    body = from_document(stored(document)).body

    assert body["author"] == "visitor"
    assert body["client_message_id"] == "m-1"
    assert body["quick_replies"] == []
    assert set(body) == {
        "id",
        "cursor",
        "direction",
        "author",
        "text",
        "quick_replies",
        "created_at",
        "client_message_id",
    }


def test_an_agents_reply_says_so() -> None:
    document = stored(outbound_document(reply(), AT)) | {"author": "agent", "quick_replies": None}
    assert from_document(document).body["author"] == "agent"
    assert from_document(document).body["quick_replies"] == []


@pytest.mark.parametrize(
    "change",
    [
        {"conversation_key": "acme:webchat:site-acme/other"},
        {"conversation_key": None},
        {"message_id": ""},
        {"created_at": "yesterday"},
        {"created_at": None},
    ],
)
def test_a_live_message_of_another_conversation_or_unreadable_is_skipped(
    change: dict[str, Any],
) -> None:
    assert from_reply(reply().to_dict() | change, KEY) is None


def test_next_cursor_is_after_the_last_message_or_where_the_request_was() -> None:
    message = from_document(stored(outbound_document(reply(), AT)))
    after = Cursor(1, "x")
    assert Page((message,), has_more=False).next_cursor(after) == message.cursor.encode()
    assert Page((), has_more=False).next_cursor(after) == after.encode()
    assert Page((), has_more=False).next_cursor(None) is None


@pytest.mark.parametrize(("value", "limit"), [(None, 50), ("", 50), ("1", 1), ("100", 100)])
def test_limit(value: str | None, limit: int) -> None:
    assert parse_limit(value) == limit


@pytest.mark.parametrize("value", ["0", "101", "-1", "ten", "5.0", "²", "1" * 40])
def test_a_bad_limit_is_a_400(value: str) -> None:
    with pytest.raises(InvalidParameter) as info:
        parse_limit(value)
    assert info.value.parameter == "limit"


def test_a_cursor_names_the_moment_it_stands_for() -> None:
    assert Cursor(1_750_000_000_123, "x").created_at == AT - timedelta(microseconds=456)
    assert Cursor.decode(Cursor(99_999_999_999_999, "x").encode()).created_at.year == 5138
