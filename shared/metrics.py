"""Every Prometheus series this service exports, declared in one place.

Labels are bounded: channels, tenants (a configured, short list), outcomes, reasons, codes,
services — never a user, a conversation or a message id (a test enforces it). ``/metrics`` is
served by the web adapter (:func:`shared.web.install`): under gunicorn with several workers the
values are shared through ``PROMETHEUS_MULTIPROC_DIR`` (a per-pod directory on the ``/tmp``
emptyDir), which prometheus_client reads at import; gauges then report the most recent value.

Request count and latency by function, route and status come from prometheus-flask-exporter
(``flask_http_request_duration_seconds``, ``flask_http_request_total``, label ``service``).
"""

from __future__ import annotations

import os
from pathlib import Path

MULTIPROC_ENV = "PROMETHEUS_MULTIPROC_DIR"


def _prepare_multiprocess_dir() -> None:
    """Create the shared directory, emptied of an earlier process's files (a restarted
    container keeps its emptyDir). This module is imported once per function process, in
    gunicorn's master before it forks the workers, so the workers find it ready."""
    directory = os.environ.get(MULTIPROC_ENV)
    if not directory:
        return
    path = Path(directory)
    path.mkdir(parents=True, exist_ok=True)
    for stale in path.glob("*.db"):
        stale.unlink(missing_ok=True)


_prepare_multiprocess_dir()  # before prometheus_client creates a value file in it

from prometheus_client import Counter, Gauge, Histogram  # noqa: E402

# Seconds: from a fast loopback call to a slow dependency's deadline.
LATENCY_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)
# Conversation response time: a platform's message to our reply accepted by its API.
RESPONSE_BUCKETS = (0.25, 0.5, 1.0, 2.0, 3.0, 5.0, 10.0, 20.0, 30.0, 60.0, 120.0, 300.0)

# --- ingress (webhooks) ----------------------------------------------------------------------
ingress_requests = Counter(
    "chat_ingress_requests_total",
    "Webhook requests by channel and outcome (accepted, duplicate, ignored, rejected, …).",
    ["channel", "outcome"],
)
ingress_rejections = Counter(
    "chat_ingress_rejections_total",
    "Rejected webhook requests by channel, HTTP status and error code.",
    ["channel", "status", "code"],
)
events_published = Counter(
    "chat_events_published_total",
    "CloudEvents acknowledged by Kafka, by channel and event type.",
    ["channel", "type"],
)
events_deduplicated = Counter(
    "chat_events_deduplicated_total",
    "Platform redeliveries dropped at ingress because the event was already published.",
    ["channel"],
)
messages_received = Counter(
    "chat_messages_received_total",
    "End users' messages accepted at ingress (published), by tenant, channel and kind.",
    ["tenant", "channel", "kind"],
)

# --- event handlers --------------------------------------------------------------------------
events_handled = Counter(
    "chat_events_handled_total",
    "CloudEvents handled by an event-handler function, by service, event type and outcome.",
    ["service", "type", "outcome"],
)
messages_processed = Counter(
    "chat_messages_processed_total",
    "Inbound messages through the bot turn, by tenant, channel and outcome "
    "(replied, fallback, skipped, duplicate, …).",
    ["tenant", "channel", "outcome"],
)
messages_replied = Counter(
    "chat_messages_replied_total",
    "Replies produced, by tenant, channel and author (bot, fallback, agent).",
    ["tenant", "channel", "author"],
)
messages_skipped = Counter(
    "chat_messages_skipped_total",
    "Inbound messages that got no reply, by tenant, channel and reason "
    "(handoff, rate_limited, blocked, no_reply, ignored).",
    ["tenant", "channel", "reason"],
)
rate_limited = Counter(
    "chat_rate_limited_total",
    "Inbound messages over a rate limit (stored, not answered), by channel and the limit's "
    "scope (tenant, user).",
    ["channel", "scope"],
)
dependency_seconds = Histogram(
    "chat_dependency_call_seconds",
    "Calls to the MCP engine and the Security Hub (gRPC), by dependency, method and gRPC code.",
    ["dependency", "method", "code"],
    buckets=LATENCY_BUCKETS,
)
engine_fallback = Counter(
    "chat_engine_fallback_total",
    "Turns answered by the rule-based fallback, by reason (engine_error, breaker_open).",
    ["reason"],
)
engine_breaker_open = Gauge(
    "chat_engine_breaker_open",
    "1 while the engine's circuit breaker (state in Redis) was open at the last turn, else 0.",
    multiprocess_mode="mostrecent",
)
channel_api_seconds = Histogram(
    "chat_channel_api_seconds",
    "Calls to a channel API (send a reply), by channel and outcome (sent, retry, failed).",
    ["channel", "outcome"],
    buckets=LATENCY_BUCKETS,
)
channel_api_errors = Counter(
    "chat_channel_api_errors_total",
    "Channel API refusals and failures, by channel and the provider's error code.",
    ["channel", "code"],
)
response_seconds = Histogram(
    "chat_conversation_response_seconds",
    "Conversation response time: the platform's timestamp of a message to its reply accepted "
    "by the channel API, by channel and author.",
    ["channel", "author"],
    buckets=RESPONSE_BUCKETS,
)
status_transitions = Counter(
    "chat_delivery_status_total",
    "Delivery statuses received, by channel, status and result (applied, stale, held).",
    ["channel", "status", "result"],
)

# --- the local KafkaSource dispatcher (the cluster's is Knative's) ----------------------------
dispatcher_deliveries = Counter(
    "chat_kafkasource_deliveries_total",
    "Records delivered by the local KafkaSource dispatcher, by source and outcome "
    "(delivered, retried, dead_lettered).",
    ["source", "outcome"],
)
dispatcher_dead_letters = Counter(
    "chat_kafkasource_dead_letters_total",
    "Records the local dispatcher wrote to a dead-letter topic, by source and the sink's code.",
    ["source", "code"],
)
dispatcher_lag = Gauge(
    "chat_kafkasource_lag",
    "Records not yet delivered (high watermark minus the next offset), by source.",
    ["source"],
    multiprocess_mode="mostrecent",
)
