-- Reporting views over the facts (docs/data-model.md). Days are UTC days; every view has
-- `day`, `tenant_id` and `channel`, and a filter on those reaches the facts' indexes.

-- A conversation on a day it has messages, and what happened in it that day. It was handed
-- off if an agent replied or the bot handed it over; the bot resolved it if the bot (or its
-- fallback) answered and nobody handed it off; else nobody answered it that day.
CREATE VIEW conversation_days AS
SELECT day, tenant_id, channel, conversation_hash,
       count(*) FILTER (WHERE direction = 'inbound') AS inbound_messages,
       count(*) FILTER (WHERE direction = 'outbound') AS outbound_messages,
       count(*) FILTER (WHERE author = 'bot') AS bot_messages,
       count(*) FILTER (WHERE author = 'fallback') AS fallback_messages,
       count(*) FILTER (WHERE author = 'agent') AS agent_messages,
       bool_or(author = 'agent' OR handoff) AS handed_off,
       bool_or(author IN ('bot', 'fallback')) AS bot_answered
FROM message_facts
GROUP BY day, tenant_id, channel, conversation_hash;

-- Conversations and messages per day, tenant and channel; bot resolution vs handoff.
CREATE VIEW daily_conversations AS
SELECT day, tenant_id, channel,
       count(*) AS conversations,
       sum(inbound_messages)::bigint AS inbound_messages,
       sum(outbound_messages)::bigint AS outbound_messages,
       sum(bot_messages)::bigint AS bot_messages,
       sum(fallback_messages)::bigint AS fallback_messages,
       sum(agent_messages)::bigint AS agent_messages,
       count(*) FILTER (WHERE bot_answered AND NOT handed_off) AS bot_resolved_conversations,
       count(*) FILTER (WHERE handed_off) AS handoff_conversations,
       count(*) FILTER (WHERE NOT bot_answered AND NOT handed_off) AS unanswered_conversations,
       (count(*) FILTER (WHERE bot_answered AND NOT handed_off))::float8 / count(*)
           AS bot_resolution_rate,
       (count(*) FILTER (WHERE handed_off))::float8 / count(*) AS handoff_rate
FROM conversation_days
GROUP BY day, tenant_id, channel;

-- One row per answered user message: the time to its first reply (created_at of the reply −
-- in_reply_to_at, the platform's time of the message answered), on the day the user wrote.
-- Parts of one reply and later replies to the same message are not responses of their own.
CREATE VIEW response_times AS
SELECT (in_reply_to_at AT TIME ZONE 'UTC')::date AS day, tenant_id, channel,
       conversation_hash, in_reply_to_at,
       min(occurred_at) AS first_reply_at,
       (array_agg(author ORDER BY occurred_at, event_id))[1] AS author,
       greatest(0, extract(epoch FROM min(occurred_at) - in_reply_to_at))::float8 AS response_s
FROM message_facts
WHERE direction = 'outbound' AND in_reply_to_at IS NOT NULL
GROUP BY (in_reply_to_at AT TIME ZONE 'UTC')::date, tenant_id, channel,
         conversation_hash, in_reply_to_at;

CREATE VIEW daily_response_times AS
SELECT day, tenant_id, channel,
       count(*) AS answered_messages,
       percentile_cont(0.5) WITHIN GROUP (ORDER BY response_s) AS p50_response_s,
       percentile_cont(0.95) WITHIN GROUP (ORDER BY response_s) AS p95_response_s
FROM response_times
GROUP BY day, tenant_id, channel;

-- One row per reply the platform reported on, on the day of its first status: delivered
-- when it was delivered or read (WhatsApp may report `read` without `delivered`), failed
-- only if never delivered (proof of delivery beats a failure report, as in status-tracker).
-- Cumulative receipts (Messenger's read watermark) name no single message: not counted here.
CREATE VIEW message_deliveries AS
SELECT (min(occurred_at) AT TIME ZONE 'UTC')::date AS day, tenant_id, channel, message_hash,
       bool_or(status IN ('delivered', 'read')) AS delivered,
       bool_or(status = 'read') AS read,
       bool_or(status = 'failed') AND NOT bool_or(status IN ('delivered', 'read')) AS failed
FROM status_facts
WHERE NOT cumulative
GROUP BY tenant_id, channel, message_hash;

CREATE VIEW daily_delivery AS
SELECT day, tenant_id, channel,
       count(*) AS reported_messages,
       count(*) FILTER (WHERE delivered) AS delivered_messages,
       count(*) FILTER (WHERE read) AS read_messages,
       count(*) FILTER (WHERE failed) AS failed_messages,
       (count(*) FILTER (WHERE delivered))::float8 / count(*) AS delivery_ratio,
       (count(*) FILTER (WHERE read))::float8 / count(*) AS read_ratio
FROM message_deliveries
GROUP BY day, tenant_id, channel;

-- Everything per day, tenant and channel: what `python -m shared.analytics report` prints and
-- the conversations API serves. A UNION ALL of the three, not a FULL JOIN, so that a filter
-- on day, tenant and channel is pushed down into each of them (and so to the indexes).
CREATE VIEW daily_report AS
SELECT day, tenant_id, channel,
       coalesce(max(conversations), 0) AS conversations,
       coalesce(max(inbound_messages), 0) AS inbound_messages,
       coalesce(max(outbound_messages), 0) AS outbound_messages,
       coalesce(max(bot_messages), 0) AS bot_messages,
       coalesce(max(fallback_messages), 0) AS fallback_messages,
       coalesce(max(agent_messages), 0) AS agent_messages,
       coalesce(max(bot_resolved_conversations), 0) AS bot_resolved_conversations,
       coalesce(max(handoff_conversations), 0) AS handoff_conversations,
       coalesce(max(unanswered_conversations), 0) AS unanswered_conversations,
       max(bot_resolution_rate) AS bot_resolution_rate,
       max(handoff_rate) AS handoff_rate,
       coalesce(max(answered_messages), 0) AS answered_messages,
       max(p50_response_s) AS p50_response_s,
       max(p95_response_s) AS p95_response_s,
       coalesce(max(reported_messages), 0) AS reported_messages,
       coalesce(max(delivered_messages), 0) AS delivered_messages,
       coalesce(max(read_messages), 0) AS read_messages,
       coalesce(max(failed_messages), 0) AS failed_messages,
       max(delivery_ratio) AS delivery_ratio,
       max(read_ratio) AS read_ratio
FROM (
    SELECT day, tenant_id, channel,
           conversations, inbound_messages, outbound_messages,
           bot_messages, fallback_messages, agent_messages,
           bot_resolved_conversations, handoff_conversations, unanswered_conversations,
           bot_resolution_rate, handoff_rate,
           NULL::bigint AS answered_messages,
           NULL::float8 AS p50_response_s, NULL::float8 AS p95_response_s,
           NULL::bigint AS reported_messages, NULL::bigint AS delivered_messages,
           NULL::bigint AS read_messages, NULL::bigint AS failed_messages,
           NULL::float8 AS delivery_ratio, NULL::float8 AS read_ratio
    FROM daily_conversations
    UNION ALL
    SELECT day, tenant_id, channel,
           NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL,
           answered_messages, p50_response_s, p95_response_s,
           NULL, NULL, NULL, NULL, NULL, NULL
    FROM daily_response_times
    UNION ALL
    SELECT day, tenant_id, channel,
           NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL,
           NULL, NULL, NULL,
           reported_messages, delivered_messages, read_messages, failed_messages,
           delivery_ratio, read_ratio
    FROM daily_delivery
) AS parts
GROUP BY day, tenant_id, channel;
