"""What the stack prints once it is up: where everything is and how to send a first message."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

# What one can point the stack at instead of the embedded servers, or change before starting.
ENVIRONMENT = (
    ("KAFKA_BROKERS", "host:port[,host:port]", "a Kafka cluster instead of embedded Tansu"),
    ("MONGODB_URI", "mongodb://host:27017/", "a MongoDB instead of embedded SecantusDB"),
    ("REDIS_URL", "redis://host:6379/0", "a Redis instead of the local one or embedded Valkey"),
    ("MCP_ENGINE_URL", "host:50051", "an MCP engine instead of the reference server"),
    ("SECURITY_HUB_URL", "host:50052", "a Security Hub instead of the reference server"),
    (
        "POSTGRES_URL",
        "postgresql://host:5432/db",
        "a PostgreSQL for analytics instead of the local one or an embedded one",
    ),
    ("FALLBACK_ENABLED", "false", "engine down → 503 and retries instead of rule-based replies"),
    ("TOPIC_PREFIX", "chatbot.platform", "the topic name prefix"),
)
# endpoints.json key, the name shown, the key of its address
SERVERS = (
    ("kafka", "kafka", "brokers"),
    ("mongodb", "mongodb", "uri"),
    ("redis", "redis", "url"),
    ("mcp_engine", "mcp-engine", "address"),
    ("security_hub", "security-hub", "address"),
)


def _short(path: str) -> str:
    """A path relative to the working directory when it is below it (shorter to read)."""
    try:
        return str(Path(path).relative_to(Path.cwd()))
    except ValueError:
        return path


def _table(rows: list[tuple[str, ...]]) -> list[str]:
    widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]))]
    return [
        "  " + "  ".join(c.ljust(w) for c, w in zip(row, widths, strict=True)).rstrip()
        for row in rows
    ]


def summary(endpoints: dict[str, Any]) -> str:
    lines = [f"Chat Service local stack is up (state in {_short(endpoints['state_dir'])})", ""]
    rows: list[tuple[str, ...]] = [("function", "url", "pid", "log")]
    for name, function in endpoints["functions"].items():
        rows.append((name, function["url"], str(function["pid"]), _short(function["log"])))
    lines += [*_table(rows), ""]

    rows = [("dependency", "address", "pid", "")]
    for key, name, address in SERVERS:
        entry = endpoints[key]
        rows.append((name, entry[address], str(entry.get("pid", "-")), f"({entry['note']})"))
    sandbox = endpoints["sandbox"]
    rows.append(("sandbox", sandbox["url"], str(sandbox.get("pid", "-")), f"({sandbox['note']})"))
    dispatcher = endpoints["dispatcher"]
    rows.append(
        (
            "kafkasource",
            _short(dispatcher["manifests"]),
            str(dispatcher["pid"]),
            f"(dispatcher, log {_short(dispatcher['log'])})",
        )
    )
    prometheus = endpoints.get("prometheus") or {}
    if prometheus.get("url"):
        rows.append(
            (
                "prometheus",
                prometheus["url"],
                str(prometheus["pid"]),
                f"(targets {prometheus['targets_url']}, log {_short(prometheus['log'])})",
            )
        )
    lines += [*_table(rows), ""]
    if not prometheus.get("url"):
        lines += [f"  prometheus: {prometheus.get('note', 'not started')}", ""]

    topics = endpoints["topics"]
    lines.append("  topics: " + ", ".join(topics.values()))
    lines.append("  dead letters: " + ", ".join(dispatcher["dead_letter_topics"].values()))
    tenant = endpoints["tenant"]
    lines.append(
        f"  tenant {tenant['id']!r}: accounts and secrets in "
        f"{_short(endpoints['tenants_file'])}, everything above in "
        f"{_short(os.path.join(endpoints['state_dir'], 'endpoints.json'))}"
    )
    curl = endpoints["samples"].get("whatsapp_curl")
    if curl:
        lines += ["", "Send a signed WhatsApp text message (a new message id every run):", curl]
        lines += [
            "The bot's reply is printed below as it reaches the sandbox, and listed by:",
            f"curl -sS {sandbox['calls_url']}",
        ]
    demo = (endpoints["tenant"].get("webchat") or {}).get("demo_url")
    if demo:
        lines += ["", f"Chat with the bot in a browser (the web chat widget): {demo}"]
    lines += _api(endpoints)
    lines += ["", "Use your own servers instead (set before starting):"]
    lines += _table([(f"{name}={example}", why) for name, example, why in ENVIRONMENT])
    return "\n".join(lines)


def _api(endpoints: dict[str, Any]) -> list[str]:
    """How to try the conversations API: its URL and an agent token of the dev tenant."""
    api = endpoints.get("conversations_api") or {}
    token = (endpoints["tenant"].get("tokens") or {}).get("agent")
    if not api.get("conversations_url") or not token:
        return []
    return [
        "",
        "The conversations API (agent token of the dev tenant; admin and another tenant's "
        "tokens in the endpoints file):",
        f"curl -sS -H 'Authorization: Bearer {token}' {api['conversations_url']}",
    ]
