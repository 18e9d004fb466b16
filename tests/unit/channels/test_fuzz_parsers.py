"""Every channel parser and the payload helpers, fuzzed (docs/reliability.md, "Fuzzing").

The parsers are pure: a (verified) document in, canonical items out. Whatever the document, a
parser returns well-typed items (:func:`tests.fuzzing.check_item`: ids are non-empty text,
times RFC 3339, coordinates in range, every item encodable as an event) or raises a 4xx
:class:`ChatServiceError` naming the problem. ``shape_errors_as_400`` is the handlers' safety net
for a shape nobody foresaw; these tests run without it, so a parser that needs it is found.
"""

from __future__ import annotations

import json
import math
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from shared import events
from shared.channels import _payload, _webhook, messenger, slack, telegram, whatsapp
from shared.channels.webchat import inbound as webchat
from shared.channels.webchat.tokens import VisitorClaims
from shared.errors import BadRequest, ChatServiceError
from shared.kafka.records import to_record
from shared.models import InboundMessage, StatusUpdate
from shared.tenants import Secret
from tests.fuzzing import bodies, check_item, json_values, load, payload_names
from tests.unit.channels.test_fuzz_webhooks import TENANT_DIRECTORY

pytestmark = pytest.mark.fuzz

NOW = 1_749_416_400


def documents(channel: str, *exclude: str) -> list[Any]:
    return [load(channel, name)[0] for name in payload_names(channel, exclude)]


def parsed(body: bytes) -> dict[str, Any] | None:
    """The body as the handlers parse it, or None when they refuse it (a 400) first."""
    try:
        return _payload.parse_json_object(body)
    except BadRequest:
        return None


def holds(parse: Any, *args: Any, **kwargs: Any) -> list[Any]:
    """The parser's items, each well typed and encodable as its event; [] after a 4xx."""
    try:
        items: list[Any] = parse(*args, **kwargs)
    except ChatServiceError as exc:
        assert 400 <= exc.status < 500, exc
        return []
    for item in items:
        check_item(item)
        event = (
            events.status_changed(item)
            if isinstance(item, StatusUpdate)
            else events.message_received(item)
        )
        to_record(event)
    return items


# --- the helpers every parser uses --------------------------------------------------------------


@given(body=st.one_of(st.binary(max_size=300), bodies(documents("whatsapp"))))
def test_parse_json_object_gives_an_object_of_text_or_a_400(body: bytes) -> None:
    try:
        document = _payload.parse_json_object(body)
    except BadRequest as exc:
        assert exc.code == "malformed_json"
        return
    assert isinstance(document, dict)
    json.dumps(document, ensure_ascii=False).encode("utf-8")  # text, all of it


@given(value=st.one_of(json_values, st.floats(), st.integers(min_value=-(10**500))))
def test_field_helpers_return_their_type_or_a_named_400(value: Any) -> None:
    document = {"k": value}
    for kind in (str, int, dict, list, (str, int), (int, float), bool):
        try:
            found = _payload.field(document, "k", "p", kind)
        except BadRequest as exc:
            assert "'p.k'" in exc.message
            continue
        kinds = kind if isinstance(kind, tuple) else (kind,)
        assert isinstance(found, kinds) and (bool in kinds or not isinstance(found, bool))
    for bound in (90, 180):
        try:
            degrees = _payload.coordinate(document, "k", "p", bound)
        except BadRequest:
            continue
        assert math.isfinite(degrees) and abs(degrees) <= bound
    try:
        stamp = _payload.unix_field(document, "k", "p")
    except BadRequest:
        return
    assert stamp.endswith("Z")


@given(body=st.one_of(st.binary(max_size=300), bodies(documents("whatsapp") + documents("slack"))))
def test_the_unverified_account_ids_never_raise(body: bytes) -> None:
    # Read before the signature is checked: anything at all may be here.
    for named, accounts in (
        (whatsapp.inbound.named_accounts, whatsapp.inbound.accounts(TENANT_DIRECTORY)),
        (messenger.inbound.named_pages, messenger.inbound.accounts(TENANT_DIRECTORY)),
        (slack.inbound.named_team, slack.inbound.accounts(TENANT_DIRECTORY)),
    ):
        found = _webhook.candidates(body, named, accounts, lambda a: next(iter(_secrets(a))))
        assert all(isinstance(secret, Secret) for secret in found)


def _secrets(account: Any) -> list[Secret]:
    names = ("app_secret", "signing_secret")
    return [getattr(account, n) for n in names if isinstance(getattr(account, n, None), Secret)]


# --- the channel parsers ------------------------------------------------------------------------


@given(body=bodies(documents("whatsapp")))
def test_whatsapp_parse(body: bytes) -> None:
    document = parsed(body)
    if document is not None:
        secret = Secret("wa-app-secret-acme")
        for item in holds(whatsapp.parse, document, TENANT_DIRECTORY, secret):
            assert item.tenant_id == "acme"  # signed by acme's app: acme's items only


@given(body=bodies(documents("messenger")))
def test_messenger_parse(body: bytes) -> None:
    document = parsed(body)
    if document is not None:
        secret = Secret("ms-app-secret-acme")
        for item in holds(messenger.parse, document, TENANT_DIRECTORY, secret):
            assert item.tenant_id == "acme"


@given(body=bodies(documents("slack")))
def test_slack_parse(body: bytes) -> None:
    document = parsed(body)
    if document is not None:
        secret = Secret("slack-signing-acme")
        for item in holds(slack.parse, document, TENANT_DIRECTORY, secret):
            assert item.tenant_id == "acme"
            assert isinstance(item, InboundMessage) and item.sender.id != "U0BOTACME"


@given(body=bodies(documents("telegram")))
def test_telegram_parse(body: bytes) -> None:
    document = parsed(body)
    if document is not None:
        account = TENANT_DIRECTORY.account(telegram.CHANNEL, "7000000001")
        for item in holds(telegram.parse, document, account, received_at=NOW):
            assert item.platform_message_id.startswith("7000000001/")
            assert not item.sender.is_bot


VISITOR = VisitorClaims(
    tenant_id="acme",
    site_key="site-acme",
    visitor_id="v" * 32,
    conversation_id="c" * 32,
    issued_at=NOW,
    expires_at=NOW + 1800,
    name="Ada",
)


@given(body=bodies(documents("webchat")))
def test_webchat_parse(body: bytes) -> None:
    document = parsed(body)
    if document is None:
        return
    try:
        session = webchat.parse_session(document)
    except ChatServiceError as exc:
        assert exc.status == 400
    else:
        assert isinstance(session.site_key, str) and session.site_key
        assert session.name is None or 1 <= len(session.name) <= webchat.MAX_NAME_CHARS
    try:
        message = webchat.parse_message(document)
    except ChatServiceError as exc:
        assert exc.status == 400
        return
    assert webchat.CLIENT_ID.fullmatch(message.client_message_id)
    for attachment in message.attachments:
        assert attachment.url is not None and attachment.url.startswith("https://")
    holds(lambda: [webchat.to_inbound(message, VISITOR, NOW)])
