-- The facts: one row per CloudEvent, never updated. The event id is the primary key, so a
-- redelivered or replayed event is `ON CONFLICT (event_id) DO NOTHING`: counted once.
-- No personal data: end users, conversations and platform message ids are keyed hashes
-- (HMAC-SHA256, a key per tenant; shared/analytics/hashing.py), no text.
-- `day` is the UTC day of `occurred_at`, stored so that a report's filter on it uses an index.
-- Time: a BRIN index, not partitions (docs/architecture.md, "Analytics"): rows arrive in
-- nearly time order, so block ranges summarise them in a few pages.

CREATE TABLE message_facts (
    event_id          text PRIMARY KEY,
    tenant_id         text NOT NULL,
    channel           text NOT NULL,
    direction         text NOT NULL CHECK (direction IN ('inbound', 'outbound')),
    kind              text NOT NULL,
    author            text NOT NULL CHECK (author IN ('user', 'bot', 'fallback', 'agent')),
    handoff           boolean NOT NULL DEFAULT false,
    conversation_hash text NOT NULL,
    user_hash         text,
    occurred_at       timestamptz NOT NULL,
    in_reply_to_at    timestamptz,
    day               date NOT NULL GENERATED ALWAYS AS ((occurred_at AT TIME ZONE 'UTC')::date) STORED,
    recorded_at       timestamptz NOT NULL DEFAULT now(),
    CHECK ((direction = 'inbound') = (author = 'user')),
    CHECK (direction = 'outbound' OR user_hash IS NOT NULL)
);

CREATE INDEX message_facts_occurred_at_brin ON message_facts USING brin (occurred_at);
CREATE INDEX message_facts_tenant_day ON message_facts (tenant_id, day, channel);
CREATE INDEX message_facts_tenant_conversation ON message_facts (tenant_id, conversation_hash);
CREATE INDEX message_facts_tenant_user ON message_facts (tenant_id, user_hash)
    WHERE user_hash IS NOT NULL;

CREATE TABLE status_facts (
    event_id          text PRIMARY KEY,
    tenant_id         text NOT NULL,
    channel           text NOT NULL,
    status            text NOT NULL CHECK (status IN ('sent', 'delivered', 'read', 'failed')),
    conversation_hash text NOT NULL,
    message_hash      text NOT NULL,
    cumulative        boolean NOT NULL DEFAULT false,
    error_code        text,
    occurred_at       timestamptz NOT NULL,
    day               date NOT NULL GENERATED ALWAYS AS ((occurred_at AT TIME ZONE 'UTC')::date) STORED,
    recorded_at       timestamptz NOT NULL DEFAULT now()
);

CREATE INDEX status_facts_occurred_at_brin ON status_facts USING brin (occurred_at);
CREATE INDEX status_facts_tenant_day ON status_facts (tenant_id, day, channel);
CREATE INDEX status_facts_tenant_conversation ON status_facts (tenant_id, conversation_hash);
