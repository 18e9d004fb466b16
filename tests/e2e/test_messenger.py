"""Facebook Messenger on the full local stack: a Page message gets the bot's reply through the
sandbox's Send API, a redelivered webhook gets no second reply, a quick reply is answered, and
the read receipt marks the reply read."""

from __future__ import annotations

import json
import time
import uuid
from collections.abc import Iterator
from importlib import resources
from typing import Any

import pymongo
import pytest

from shared.devstack.sandbox import fingerprint
from tests.e2e.bot_support import (
    Chat,
    Stack,
    call_text,
    messenger_body,
    poll,
    succeeded,
    unique_digits,
)
from tests.e2e.conftest import RunningStack, module_stack

pytestmark = pytest.mark.e2e

RULES = json.loads((resources.files("shared.bot") / "default_rules.json").read_text())
GREETING = RULES["greeting"]["answer"]


@pytest.fixture(scope="module")
def bot(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[RunningStack, Stack]]:
    with module_stack(tmp_path_factory) as (running, endpoints):
        yield running, Stack(endpoints)


def post(stack: Stack, body: bytes) -> dict[str, Any]:
    return stack.post_messenger(body)


def test_a_page_message_gets_one_reply_through_the_send_api(
    bot: tuple[RunningStack, Stack],
) -> None:
    running, stack = bot
    account = stack.tenant["messenger"]
    psid = unique_digits(16)
    chat = Chat("messenger", psid, f"dev:messenger:{account['page_id']}/{psid}")
    body = messenger_body(
        account["page_id"], psid, message={"mid": f"m_{uuid.uuid4().hex}", "text": "Hello"}
    )

    answers = [post(stack, body) for _ in range(3)]  # Meta redelivers what it thinks failed

    assert [a["published"] for a in answers] == [1, 0, 0]
    [call] = stack.wait_calls(chat)
    assert succeeded(call), call
    assert call_text(call) == GREETING
    assert call["credential"] == fingerprint(account["page_access_token"])
    assert call["json"]["messaging_type"] == "RESPONSE"
    options = call["json"]["message"]["quick_replies"]  # the greeting offers its topics
    running.wait_for_line(f"reply → messenger {psid}: {GREETING}")

    # The person taps a quick reply: answered in the same conversation.
    tap = {"mid": f"m_{uuid.uuid4().hex}", "text": options[0]["title"]}
    tap["quick_reply"] = {"payload": options[0]["payload"]}
    post(stack, messenger_body(account["page_id"], psid, message=tap))
    assert len(stack.wait_calls(chat, 2)) == 2

    # Messenger reads everything up to its watermark: every reply sent so far becomes read.
    post(
        stack, messenger_body(account["page_id"], psid, read={"watermark": int(time.time() * 1000)})
    )
    client: Any = pymongo.MongoClient(stack.endpoints["mongodb"]["uri"], tz_aware=True)
    try:
        messages = client["chat_service"]["messages"]
        query = {"conversation_key": chat.conversation_key, "direction": "outbound"}

        def all_read() -> bool:
            states = [m["delivery"]["state"] for m in messages.find(query)]
            return bool(states) and all(state == "read" for state in states)

        poll("the replies marked read", all_read)
    finally:
        client.close()
