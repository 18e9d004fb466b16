"""GDPR: everything stored about one end user, exported (Art. 15, 20) or erased (Art. 17).

An end user is ``(channel, user id)`` within the caller's tenant: the participant of their own
conversations (all of it: their messages and our replies) and the sender of messages in
conversations shared with others (a Slack channel: only their messages). Found and removed:

- ``conversations`` and ``messages`` of their conversations; their messages elsewhere;
- ``audit`` entries of those conversations or sent by them; ``pending_statuses`` and
  ``poison_events`` of those conversations;
- the bot's session memory in Redis (turns and values per conversation);
- the analytics facts (PostgreSQL) of the user and of those conversations, by their keyed
  hashes (:func:`shared.analytics.erase_user`).

Dedupe marks in Redis hold platform ids only and expire on their own within a day. The erase
leaves one audit record saying that an erase happened, by whom and how much it removed —
nothing that identifies the end user.
"""

from __future__ import annotations

import base64
import uuid
from collections.abc import Callable, Mapping
from datetime import datetime
from typing import Any

from shared.api.auth import Caller
from shared.api.paging import rfc3339
from shared.bot.session import SessionCache
from shared.errors import NotFound
from shared.store.mongo import unavailable_as_503

ERASED_EVENT = "com.chatbot.gdpr.erased.v1"
SOURCE = "/chat-service/conversations-api"


class Subject:
    """The documents of one end user, found once, then exported or erased."""

    def __init__(
        self, db: Any, sessions: SessionCache, caller: Caller, channel: str, user_id: str
    ) -> None:
        self._db = db
        self._sessions = sessions
        self.tenant_id = caller.tenant_id
        self.channel = channel
        self.user_id = user_id
        with unavailable_as_503():
            self.keys = sorted(
                str(doc["_id"])
                for doc in db["conversations"].find(
                    {
                        "tenant_id": self.tenant_id,
                        "channel": channel,
                        "participant.id": user_id,
                    },
                    {"_id": 1},
                )
            )

    def _queries(self) -> dict[str, dict[str, Any]]:
        tenant, keys, sender = self.tenant_id, self.keys, self.user_id
        own_messages = {"channel": self.channel, "sender.id": sender}
        return {
            "conversations": {"tenant_id": tenant, "_id": {"$in": keys}},
            "messages": {
                "tenant_id": tenant,
                "$or": [{"conversation_key": {"$in": keys}}, own_messages],
            },
            "audit": {
                "tenant_id": tenant,
                "$or": [
                    {"data.conversation_key": {"$in": keys}},
                    {"data.channel": self.channel, "data.sender.id": sender},
                ],
            },
            "pending_statuses": {"tenant_id": tenant, "update.conversation_key": {"$in": keys}},
            "poison_events": {
                "tenant_id": tenant,
                "event.data.conversation_key": {"$in": keys},
            },
        }

    def export(self, now: datetime) -> dict[str, Any]:
        found: dict[str, list[Any]] = {}
        with unavailable_as_503():
            for collection, query in self._queries().items():
                found[collection] = [_jsonable(d) for d in self._db[collection].find(query)]
        if not any(found.values()):
            raise NotFound("nothing is stored about this user", code="not_found")
        return {
            "subject": {"channel": self.channel, "user_id": self.user_id},
            "exported_at": rfc3339(now),
            **found,
            "sessions": [self._session(key) for key in self.keys],
        }

    def erase(
        self, caller: Caller, now: datetime, analytics: Callable[[], Any] | None = None
    ) -> dict[str, int]:
        removed: dict[str, int] = {}
        if analytics is not None:
            # First: if PostgreSQL is down this is a 503 with nothing erased yet, and the
            # retry still finds the user's conversations to name their facts by.
            from shared.analytics import erase_user

            pool = analytics()
            if pool is not None:
                removed["analytics"] = erase_user(
                    pool, self.tenant_id, self.channel, self.user_id, conversation_keys=self.keys
                )
        with unavailable_as_503():
            for collection, query in self._queries().items():
                removed[collection] = int(self._db[collection].delete_many(query).deleted_count)
        removed["sessions"] = self._sessions.forget(self.keys)
        if not any(removed.values()):
            raise NotFound("nothing is stored about this user", code="not_found")
        record_id = str(uuid.uuid4())
        with unavailable_as_503():
            self._db["audit"].insert_one(
                {
                    "_id": f"{SOURCE}|{record_id}|{ERASED_EVENT}",
                    "tenant_id": self.tenant_id,
                    "type": ERASED_EVENT,
                    "event_id": record_id,
                    "source": SOURCE,
                    "subject": None,
                    "time": now,
                    "attributes": {},
                    "data": {
                        "channel": self.channel,
                        "removed": removed,
                        "requested_by": caller.subject,
                    },
                    "recorded_at": now,
                }
            )
        return removed

    def _session(self, key: str) -> dict[str, Any]:
        """The bot's memory of the conversation (Redis): its recent turns and values."""
        context = self._sessions.context(self.tenant_id, self.channel, key)
        return {
            "conversation_key": key,
            "turns": [{"role": t.role, "text": t.text} for t in context.history],
            "values": dict(context.session),
        }


def _jsonable(value: Any) -> Any:
    """A MongoDB document as JSON: dates as RFC 3339, binary as base64."""
    if isinstance(value, Mapping):
        return {str(k): _jsonable(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_jsonable(v) for v in value]
    if isinstance(value, datetime):
        return rfc3339(value)
    if isinstance(value, bytes):
        return base64.b64encode(value).decode()
    if value is None or isinstance(value, str | int | float | bool):
        return value
    return str(value)
