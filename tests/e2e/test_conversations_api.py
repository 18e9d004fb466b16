"""An agent takes a conversation over on the full local stack, through conversations-api:

a Telegram user says Hello and gets the bot's greeting at the channel sandbox; the agent finds
the conversation in the list and takes it (handoff); the user writes again and the bot stays
silent; the agent answers through the API and the user gets the agent's text through the same
channel API as the bot's; the agent gives the conversation back (reopen) and the bot answers
the user's next message. Another tenant's admin sees none of it.

Everything comes from the stack's endpoints.json: the API's URLs and ready-made tokens.
"""

from __future__ import annotations

import json
import time
import uuid
from collections.abc import Iterator
from importlib import resources
from typing import Any

import httpx
import pymongo
import pytest

from shared.api import paging
from tests.e2e.bot_support import Chat, Stack, call_text, poll, succeeded
from tests.e2e.conftest import RunningStack, module_stack

pytestmark = pytest.mark.e2e

RULES = json.loads((resources.files("shared.bot") / "default_rules.json").read_text())
GREETING = RULES["greeting"]["answer"]
SILENCE_S = 3.0  # how long the bot must stay silent after a message during a handoff


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[RunningStack, Stack]]:
    with module_stack(tmp_path_factory) as (running, endpoints):
        yield running, Stack(endpoints)


class Agent:
    """conversations-api as an agent's tool calls it: a bearer token, JSON in and out."""

    def __init__(self, stack: Stack, bearer: str) -> None:
        self.conversations_url = str(stack.endpoints["conversations_api"]["conversations_url"])
        self.http = httpx.Client(
            trust_env=False, timeout=10, headers={"Authorization": f"Bearer {bearer}"}
        )

    def get(self, path: str = "", **query: str) -> httpx.Response:
        return self.http.get(self.conversations_url + path, params=query)

    def post(self, path: str, body: Any = None, **headers: str) -> httpx.Response:
        return self.http.post(self.conversations_url + path, json=body, headers=headers)

    def find(self, chat: Chat) -> dict[str, Any] | None:
        """The chat's conversation in the list (telegram, newest first)."""
        response = self.get(channel="telegram", limit="100")
        assert response.status_code == 200, response.text
        for item in response.json()["items"]:
            if item["chat_id"] == chat.chat_id:
                found: dict[str, Any] = item
                return found
        return None


def stored_inbound(db: Any, chat: Chat, text: str) -> dict[str, Any] | None:
    found: dict[str, Any] | None = db.messages.find_one(
        {
            "tenant_id": "dev",
            "conversation_key": chat.conversation_key,
            "direction": "inbound",
            "text": text,
        }
    )
    return found


def assert_calls_stay(stack: Stack, chat: Chat, count: int, seconds: float) -> None:
    """The chat's sandbox calls stay at ``count`` for ``seconds`` (polled, not slept through)."""
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        calls = stack.calls(chat)
        assert len(calls) == count, [call_text(c) for c in calls]
        time.sleep(0.2)


def test_an_agent_takes_over_answers_and_gives_the_conversation_back(
    stack: tuple[RunningStack, Stack],
) -> None:
    running, bot = stack
    tokens = bot.tenant["tokens"]
    agent = Agent(bot, tokens["agent"])
    mongodb: pymongo.MongoClient[dict[str, Any]] = pymongo.MongoClient(
        bot.endpoints["mongodb"]["uri"]
    )
    db = mongodb["chat_service"]
    try:
        # The user says Hello; the bot greets them at the sandbox.
        chat = bot.telegram("Hello")
        [greeting] = bot.wait_calls(chat)
        assert succeeded(greeting) and call_text(greeting) == GREETING

        # The agent finds the conversation in the list, under its opaque id.
        conversation = poll("the conversation in the list", lambda: agent.find(chat))
        assert conversation["id"] == paging.conversation_id(chat.conversation_key)
        assert conversation["state"] == "open"
        assert conversation["message_count"] >= 2  # the user's Hello and the greeting
        path = f"/{conversation['id']}"

        # Handoff: the bot stops answering.
        taken = agent.post(f"{path}/handoff")
        assert taken.status_code == 200, taken.text
        assert taken.json()["state"] == "handoff"
        assert taken.json()["assignee"] == "agent@dev.local"

        question = f"Can a human help me? {uuid.uuid4().hex[:6]}"
        bot.telegram(question, chat_id=chat.chat_id)

        def decided() -> dict[str, Any] | None:
            found = stored_inbound(db, chat, question)
            final = found is not None and found["processing"]["state"] in ("skipped", "replied")
            return found if final else None

        skipped = poll("the processor's decision on the user's message", decided)
        assert skipped["processing"]["state"] == "skipped"
        assert skipped["processing"]["reason"] == "handoff"
        assert_calls_stay(bot, chat, 1, SILENCE_S)
        history = agent.get(f"{path}/messages").json()["items"]
        assert [(m["author"], m["text"]) for m in history][-1] == ("user", question)

        # The agent answers through the API: the user gets it through the channel API.
        answer = f"Hi, this is Alice from support ({uuid.uuid4().hex[:6]})."
        replied = agent.post(f"{path}/messages", {"text": answer}, **{"Idempotency-Key": "e2e-1"})
        assert replied.status_code == 202, replied.text
        reply_id = replied.json()["id"]
        calls = bot.wait_calls(chat, 2)
        assert [call_text(c) for c in calls] == [GREETING, answer]
        assert succeeded(calls[1])

        def delivered() -> dict[str, Any] | None:
            items = agent.get(f"{path}/messages", limit="100").json()["items"]
            mine = [m for m in items if m["id"] == reply_id]
            return mine[0] if mine and mine[0]["delivery"]["state"] == "sent" else None

        shown = poll("the agent's reply recorded as sent", delivered)
        assert (shown["author"], shown["text"]) == ("agent", answer)
        # The same request again (a retry): the same message, not sent a second time.
        again = agent.post(f"{path}/messages", {"text": answer}, **{"Idempotency-Key": "e2e-1"})
        assert (again.status_code, again.json()["id"]) == (200, reply_id)
        running.wait_for_line(f"reply → telegram {chat.chat_id}: {answer}")

        # Reopen: back to the bot, which answers the next message.
        reopened = agent.post(f"{path}/reopen")
        assert reopened.status_code == 200, reopened.text
        assert (reopened.json()["state"], reopened.json()["assignee"]) == ("open", None)
        bot.telegram("Hello", chat_id=chat.chat_id)
        calls = bot.wait_calls(chat, 3)
        assert call_text(calls[2]) == GREETING
        assert_calls_stay(bot, chat, 3, 1.0)  # the agent's reply was not sent twice

        # The other tenant's admin: not found, and an empty list.
        other = Agent(bot, bot.endpoints["other_tenant"]["tokens"]["admin"])
        assert other.get(path).status_code == 404
        assert other.post(f"{path}/handoff").status_code == 404
        listed = other.get()
        assert listed.status_code == 200
        assert listed.json() == {"items": [], "next_cursor": None}
        assert agent.get(path).json()["state"] == "open"
    finally:
        mongodb.close()


def test_the_openapi_document_and_the_tokens_of_the_stack(
    stack: tuple[RunningStack, Stack],
) -> None:
    _, bot = stack
    api = bot.endpoints["conversations_api"]
    http = httpx.Client(trust_env=False, timeout=10)

    document = http.get(api["openapi_url"])
    unauthenticated = http.get(api["conversations_url"])
    agent = Agent(bot, bot.tenant["tokens"]["agent"])
    admin = Agent(bot, bot.tenant["tokens"]["admin"])

    assert document.status_code == 200 and document.json()["openapi"] == "3.1.0"
    assert unauthenticated.status_code == 401
    assert unauthenticated.json()["error"] == "missing_token"
    assert agent.get(limit="1").status_code == 200
    assert admin.get(limit="1").status_code == 200
    users = api["url"] + "/api/v2/chat/users/telegram/1/export"
    assert agent.http.get(users).status_code == 403
    assert admin.http.get(users).status_code == 404
