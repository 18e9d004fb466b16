"""Reading conversations and their messages, always within the caller's tenant.

Every query filters on ``tenant_id`` first, from the verified token: another tenant's
conversation is simply not found (404, never 403), and lists, counts and cursors can only be
made of the caller's own documents.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from shared.api import paging
from shared.channels.registry import NAMES
from shared.errors import NotFound
from shared.store import conversations as conv
from shared.store.mongo import unavailable_as_503

STATES = (conv.OPEN, conv.HANDOFF, conv.CLOSED)


def conversation_view(doc: Mapping[str, Any]) -> dict[str, Any]:
    participant = doc.get("participant") or {}
    return {
        "id": paging.conversation_id(str(doc["_id"])),
        "channel": doc.get("channel"),
        "account_id": doc.get("account_id"),
        "chat_id": doc.get("chat_id"),
        "state": doc.get("state"),
        "assignee": doc.get("assignee"),
        "participant": {"id": participant.get("id"), "name": participant.get("name")},
        "message_count": int(doc.get("message_count") or 0),
        "created_at": paging.rfc3339(doc.get("created_at")),
        "updated_at": paging.rfc3339(doc.get("updated_at")),
        "last_message_at": paging.rfc3339(doc.get("last_message_at")),
        "last_inbound_at": paging.rfc3339(doc.get("last_inbound_at")),
    }


def message_view(doc: Mapping[str, Any]) -> dict[str, Any]:
    outbound = doc.get("direction") == "outbound"
    view: dict[str, Any] = {
        "id": str(doc["_id"]),
        "direction": doc.get("direction"),
        "author": doc.get("author") if outbound else "user",
        "kind": doc.get("kind") or "text",
        "text": doc.get("text"),
        "created_at": paging.rfc3339(doc.get("created_at")),
    }
    if outbound:
        delivery = doc.get("delivery") or {}
        view["quick_replies"] = list(doc.get("quick_replies") or [])
        view["delivery"] = {
            "state": delivery.get("state"),
            "updated_at": paging.rfc3339(delivery.get("updated_at")),
            "error": delivery.get("error"),
        }
    else:
        sender = doc.get("sender") or {}
        view["sender"] = {"id": sender.get("id"), "name": sender.get("name")}
        view["attachments"] = [
            {k: a.get(k) for k in ("type", "mime_type", "caption", "filename", "url")}
            for a in doc.get("attachments") or []
        ]
    return view


class Views:
    def __init__(self, db: Any) -> None:
        self._conversations = db["conversations"]
        self._messages = db["messages"]

    def conversations(self, tenant_id: str, query: Mapping[str, str]) -> dict[str, Any]:
        """Newest first (``updated_at``, then ``_id``), filtered, one page after the cursor."""
        size = paging.limit(query)
        wanted: dict[str, Any] = {"tenant_id": tenant_id}
        channel = paging.one_of(query, "channel", NAMES)
        if channel:
            wanted["channel"] = channel
        state = paging.one_of(query, "status", STATES)
        if state:
            wanted["state"] = state
        if query.get("assignee"):
            wanted["assignee"] = query["assignee"]
        updated_since = paging.since(query, "updated_since")
        if updated_since is not None:
            wanted["updated_at"] = {"$gte": updated_since}
        if query.get("cursor"):
            at = paging.decode_cursor(query["cursor"])
            wanted = {
                "$and": [
                    wanted,
                    {
                        "$or": [
                            {"updated_at": {"$lt": at.at}},
                            {"updated_at": at.at, "_id": {"$lt": at.id}},
                        ]
                    },
                ]
            }
        with unavailable_as_503():
            found = list(
                self._conversations.find(wanted)
                .sort([("updated_at", -1), ("_id", -1)])
                .limit(size + 1)
            )
        page = found[:size]
        cursor = None
        if len(found) > size:
            last = page[-1]
            cursor = paging.encode_cursor(last["updated_at"], str(last["_id"]))
        return {"items": [conversation_view(d) for d in page], "next_cursor": cursor}

    def conversation(self, tenant_id: str, conversation: str) -> dict[str, Any]:
        """The document (not the view) of a conversation of this tenant, or 404."""
        key = paging.conversation_key(conversation)
        with unavailable_as_503():
            found: dict[str, Any] | None = self._conversations.find_one(
                {"_id": key, "tenant_id": tenant_id}
            )
        if found is None:
            raise NotFound("no such conversation", code="not_found")
        return found

    def messages(
        self, tenant_id: str, conversation: str, query: Mapping[str, str]
    ) -> dict[str, Any]:
        """Oldest first (``created_at``, then ``_id``), one page after the cursor."""
        doc = self.conversation(tenant_id, conversation)
        size = paging.limit(query)
        wanted: dict[str, Any] = {"tenant_id": tenant_id, "conversation_key": doc["_id"]}
        if query.get("cursor"):
            at = paging.decode_cursor(query["cursor"])
            wanted["$or"] = [
                {"created_at": {"$gt": at.at}},
                {"created_at": at.at, "_id": {"$gt": at.id}},
            ]
        with unavailable_as_503():
            found = list(
                self._messages.find(wanted).sort([("created_at", 1), ("_id", 1)]).limit(size + 1)
            )
        page = found[:size]
        cursor = None
        if len(found) > size:
            last = page[-1]
            cursor = paging.encode_cursor(last["created_at"], str(last["_id"]))
        return {"items": [message_view(d) for d in page], "next_cursor": cursor}
