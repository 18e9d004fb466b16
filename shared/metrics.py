"""Prometheus counters shared by the functions. ``/metrics`` is served by the web adapter."""

from __future__ import annotations

from prometheus_client import Counter

ingress_requests = Counter(
    "chat_ingress_requests_total",
    "Webhook requests by channel and outcome (accepted, duplicate, ignored, rejected).",
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
events_handled = Counter(
    "chat_events_handled_total",
    "CloudEvents handled by an event-handler function, by service, event type and outcome.",
    ["service", "type", "outcome"],
)
