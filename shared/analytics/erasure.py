"""Erase one end user's rows from the analytics store (GDPR Art. 17), by their keyed hashes.

The conversations API's erase (``shared/api/gdpr.py``) calls :func:`erase_user` beside its
MongoDB and Redis erase, with the same subject: ``(channel, user id)`` in the caller's tenant.
As there, the user's own conversations go whole (their messages, our replies, the statuses
of our replies) and in conversations shared with others (a Slack channel) only their messages.
A conversation is the user's own when the caller names it (``conversation_keys``, the keys of
the conversations whose participant they are) or when every user message in it is theirs.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from shared.analytics import db
from shared.analytics.hashing import Hasher
from shared.settings import get_settings

# One statement, one snapshot: which conversations are the user's is decided on the rows as
# they were, and both tables are cleared together.
_ERASE = """
WITH own AS (
    SELECT DISTINCT conversation_hash FROM message_facts
    WHERE tenant_id = %(tenant)s AND channel = %(channel)s AND user_hash = %(user)s
), sole AS (
    SELECT conversation_hash FROM own
    WHERE NOT EXISTS (
        SELECT 1 FROM message_facts AS other
        WHERE other.tenant_id = %(tenant)s AND other.channel = %(channel)s
          AND other.conversation_hash = own.conversation_hash
          AND other.direction = 'inbound' AND other.user_hash <> %(user)s
    )
), conversations AS (
    SELECT conversation_hash FROM sole
    UNION SELECT unnest(%(named)s::text[])
), messages AS (
    DELETE FROM message_facts
    WHERE tenant_id = %(tenant)s AND channel = %(channel)s
      AND (user_hash = %(user)s
           OR conversation_hash IN (SELECT conversation_hash FROM conversations))
    RETURNING 1
), statuses AS (
    DELETE FROM status_facts
    WHERE tenant_id = %(tenant)s AND channel = %(channel)s
      AND conversation_hash IN (SELECT conversation_hash FROM conversations)
    RETURNING 1
)
SELECT (SELECT count(*) FROM messages) + (SELECT count(*) FROM statuses)
"""


def erase_user(
    conn_or_pool: Any,
    tenant_id: str,
    channel: str,
    user_id: str,
    *,
    conversation_keys: Iterable[str] = (),
    hasher: Hasher | None = None,
) -> int:
    """Delete the user's fact rows; returns how many rows were deleted (0: none stored).

    ``conn_or_pool``: a :class:`psycopg_pool.ConnectionPool` or a psycopg connection (inside
    a transaction of the caller's, the delete joins it). ``conversation_keys``: conversation
    keys (``tenant:channel:<account>/<chat>``) to erase whole as well; each must be of the
    tenant and channel (``ValueError`` otherwise). ``hasher``: default ``ANALYTICS_HASH_KEY``'s.
    :class:`~shared.errors.DependencyUnavailable` (503) while PostgreSQL is down.
    """
    hasher = hasher or Hasher.from_setting(get_settings().analytics_hash_key)
    prefix = f"{tenant_id}:{channel}:"
    named = []
    for key in conversation_keys:
        if not key.startswith(prefix):
            raise ValueError(f"conversation key {key!r} is not of {prefix}…")
        named.append(hasher.conversation(tenant_id, channel, key.removeprefix(prefix)))
    parameters = {
        "tenant": tenant_id,
        "channel": channel,
        "user": hasher.user(tenant_id, channel, user_id),
        "named": named,
    }
    with db.unavailable_as_503(), db.connection(conn_or_pool) as conn, conn.transaction():
        row = conn.execute(_ERASE, parameters).fetchone()
    return int(row[0]) if row else 0
