"""An unauthenticated request costs one HMAC, not one per configured secret.

With a thousand accounts on a channel, a body used to be HMAC'd with every app secret before
anything was known about it (~0.56 ms per MiB per secret: half a second of CPU per request).
Now the body's own (unverified) account id picks the one secret to verify with; binding the
items to the verified secret is unchanged.
"""

from __future__ import annotations

import json
from typing import Any

import pytest

from shared.channels import messenger, slack, whatsapp
from shared.channels.messenger import inbound as messenger_inbound
from shared.channels.slack import inbound as slack_inbound
from shared.channels.whatsapp import inbound as whatsapp_inbound
from shared.errors import Unauthorized
from shared.ingress import Ingress
from shared.settings import Settings
from shared.tenants import TenantDirectory
from shared.web import WebRequest
from tests.conftest import payload
from tests.unit.fakes import MemoryDedupe, RecordingProducer

ACCOUNTS = 1000
NOW = 1_700_000_000


def directory() -> TenantDirectory:
    tenants = []
    for n in range(ACCOUNTS):
        tenants.append(
            {
                "id": f"t{n}",
                "whatsapp": [
                    {
                        "phone_number_id": f"1{n:014d}",
                        "app_secret": f"wa-secret-{n:04d}-0123456789abcdef",
                        "verify_token": f"verify-token-{n:04d}-0123",
                        "access_token": f"access-{n}",
                    }
                ],
                "messenger": [
                    {
                        "page_id": f"2{n:014d}",
                        "app_secret": f"fb-secret-{n:04d}-0123456789abcdef",
                        "verify_token": f"fb-verify-token-{n:04d}-0123",
                        "page_access_token": f"page-{n}",
                    }
                ],
                "slack": [
                    {
                        "team_id": f"T{n:08d}",
                        "signing_secret": f"slack-secret-{n:04d}-0123456789",
                        "bot_token": f"xoxb-{n}",
                        "bot_user_id": f"UBOT{n}",
                    }
                ],
            }
        )
    return TenantDirectory.from_dict({"tenants": tenants})


@pytest.fixture(scope="module")
def ingress() -> Ingress:
    return Ingress(Settings(), directory(), RecordingProducer(), MemoryDedupe(), clock=lambda: NOW)


def counting(monkeypatch: pytest.MonkeyPatch, module: Any) -> list[str]:
    calls: list[str] = []
    original = module.sign

    def sign(secret: str, *args: Any) -> str:
        calls.append(secret)
        return str(original(secret, *args))

    monkeypatch.setattr(module, "sign", sign)
    return calls


def whatsapp_body(phone_number_id: str) -> bytes:
    value = {"messaging_product": "whatsapp", "metadata": {"phone_number_id": phone_number_id}}
    entry = {"id": "WABA", "changes": [{"field": "messages", "value": value}]}
    return json.dumps({"object": "whatsapp_business_account", "entry": [entry]}).encode()


def test_whatsapp_tries_the_named_accounts_secret_only(
    ingress: Ingress, monkeypatch: pytest.MonkeyPatch
) -> None:
    calls = counting(monkeypatch, whatsapp_inbound)
    body = whatsapp_body("100000000000500")
    signature = whatsapp.sign("wa-secret-0500-0123456789abcdef", body)
    request = WebRequest("POST", "/", {whatsapp.SIGNATURE_HEADER: signature}, body)

    assert whatsapp_inbound.handle(request, ingress).status == 200
    assert calls == ["wa-secret-0500-0123456789abcdef"]


def test_whatsapp_a_forged_signature_costs_one_hmac(
    ingress: Ingress, monkeypatch: pytest.MonkeyPatch
) -> None:
    calls = counting(monkeypatch, whatsapp_inbound)
    body = whatsapp_body("100000000000500")
    request = WebRequest("POST", "/", {whatsapp.SIGNATURE_HEADER: "sha256=" + "0" * 64}, body)

    with pytest.raises(Unauthorized):
        whatsapp_inbound.handle(request, ingress)
    assert len(calls) == 1


def test_a_body_naming_accounts_of_several_apps_is_refused_unverified(
    ingress: Ingress, monkeypatch: pytest.MonkeyPatch
) -> None:
    calls = counting(monkeypatch, whatsapp_inbound)
    entries = [json.loads(whatsapp_body(f"1{n:014d}"))["entry"][0] for n in range(50)]
    body = json.dumps({"object": "whatsapp_business_account", "entry": entries}).encode()
    request = WebRequest("POST", "/", {whatsapp.SIGNATURE_HEADER: "sha256=" + "0" * 64}, body)

    with pytest.raises(Unauthorized):
        whatsapp_inbound.handle(request, ingress)
    assert calls == []  # one delivery comes from one Meta app: nothing worth trying


def test_messenger_tries_the_named_pages_secret_only(
    ingress: Ingress, monkeypatch: pytest.MonkeyPatch
) -> None:
    calls = counting(monkeypatch, messenger_inbound)
    body = json.dumps({"object": "page", "entry": [{"id": "200000000000007", "time": 1}]}).encode()
    signature = messenger.sign("fb-secret-0007-0123456789abcdef", body)
    request = WebRequest("POST", "/", {messenger.SIGNATURE_HEADER: signature}, body)

    assert messenger_inbound.handle(request, ingress).status == 200
    assert calls == ["fb-secret-0007-0123456789abcdef"]


def test_slack_tries_the_named_teams_secret_only(
    ingress: Ingress, monkeypatch: pytest.MonkeyPatch
) -> None:
    calls = counting(monkeypatch, slack_inbound)
    body = json.dumps(payload("slack", "message_im.json") | {"team_id": "T00000042"}).encode()
    stamp = str(NOW)
    signature = slack.sign("slack-secret-0042-0123456789", stamp, body)
    headers = {slack.TIMESTAMP_HEADER: stamp, slack.SIGNATURE_HEADER: signature}

    slack_inbound.handle(WebRequest("POST", "/", headers, body), ingress)
    assert calls == ["slack-secret-0042-0123456789"]


def test_a_small_body_naming_no_account_may_try_every_secret(
    ingress: Ingress, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Slack's url_verification names no team; it is a few dozen bytes, so trying every secret
    # costs microseconds. A large body naming nobody is refused without a single HMAC.
    calls = counting(monkeypatch, slack_inbound)
    body = json.dumps({"type": "url_verification", "challenge": "c", "token": "t"}).encode()
    stamp = str(NOW)
    signature = slack.sign("slack-secret-0999-0123456789", stamp, body)
    headers = {slack.TIMESTAMP_HEADER: stamp, slack.SIGNATURE_HEADER: signature}

    answer = slack_inbound.handle(WebRequest("POST", "/", headers, body), ingress)
    assert answer.status == 200 and len(calls) == ACCOUNTS

    calls.clear()
    big = json.dumps({"type": "event_callback", "padding": "x" * 100_000}).encode()
    headers[slack.SIGNATURE_HEADER] = slack.sign("slack-secret-0999-0123456789", stamp, big)
    with pytest.raises(Unauthorized):
        slack_inbound.handle(WebRequest("POST", "/", headers, big), ingress)
    assert calls == []


@pytest.mark.parametrize("channel", ["whatsapp", "messenger", "slack"])
def test_a_body_nested_past_the_parsers_limit_is_a_4xx_before_any_hmac(
    ingress: Ingress, monkeypatch: pytest.MonkeyPatch, channel: str
) -> None:
    # Found by fuzzing: reading the unverified account id hit json's RecursionError on 3,000
    # nested brackets (a 6 KB body, no signature needed) and the webhook answered 500.
    module = {"whatsapp": whatsapp_inbound, "messenger": messenger_inbound, "slack": slack_inbound}
    calls = counting(monkeypatch, module[channel])
    body = b"[" * 3000 + b"]" * 3000
    headers = {
        whatsapp.SIGNATURE_HEADER: "sha256=" + "0" * 64,
        slack.TIMESTAMP_HEADER: str(NOW),
        slack.SIGNATURE_HEADER: "v0=" + "0" * 64,
    }

    with pytest.raises(Unauthorized):
        module[channel].handle(WebRequest("POST", "/", headers, body), ingress)
    assert calls == []  # names no account and is not small: nothing worth trying
