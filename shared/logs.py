"""JSON log lines carrying the correlation id of the request or event being handled.

The correlation id lives in a ``contextvars`` variable so that every log line written while a
request is handled carries it, including lines from helpers that know nothing of the request.
"""

from __future__ import annotations

import contextvars
import json
import logging
import sys
import time
from typing import Any

correlation_id: contextvars.ContextVar[str] = contextvars.ContextVar("correlation_id", default="-")

_RESERVED = frozenset(vars(logging.LogRecord("", 0, "", 0, "", None, None))) | {"message"}
_configured = False


class JsonFormatter(logging.Formatter):
    def __init__(self, service: str) -> None:
        super().__init__()
        self.service = service

    def format(self, record: logging.LogRecord) -> str:
        line: dict[str, Any] = {
            "time": time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(record.created))
            + f".{int(record.msecs):03d}Z",
            "level": record.levelname,
            "service": self.service,
            "logger": record.name,
            "correlation_id": correlation_id.get(),
            "message": record.getMessage(),
        }
        for key, value in vars(record).items():
            if key not in _RESERVED and not key.startswith("_"):
                line[key] = value
        if record.exc_info:
            line["exception"] = self.formatException(record.exc_info)
        return json.dumps(line, default=str, ensure_ascii=False)


def configure(service: str, level: str = "INFO") -> None:
    """Send JSON lines to stderr. Safe to call more than once."""
    global _configured
    if _configured:
        return
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(JsonFormatter(service))
    root = logging.getLogger()
    # Replace plain console handlers (ours is the console now); keep any others, e.g. a test
    # harness's capture handler.
    root.handlers[:] = [h for h in root.handlers if type(h) is not logging.StreamHandler]
    root.addHandler(handler)
    root.setLevel(level)
    # kafka-python logs every reconnect attempt at WARNING/ERROR; our own lines say what matters.
    logging.getLogger("kafka").setLevel(logging.CRITICAL)
    _configured = True


def trace_id(traceparent: Any) -> str | None:
    """The trace id of a W3C ``traceparent`` (``00-<32 hex trace id>-<span id>-<flags>``)."""
    if traceparent:
        parts = str(traceparent).split("-")
        if len(parts) >= 2 and len(parts[1]) == 32:
            return parts[1]
    return None


def correlation_from_headers(headers: Any) -> str | None:
    """The trace id of a W3C ``traceparent``, else ``X-Request-Id``, else a CloudEvent id."""
    found = trace_id(headers.get("traceparent") or headers.get("ce-traceparent"))
    if found:
        return found
    for name in ("X-Request-Id", "X-Cloud-Trace-Context", "ce-id"):
        value = headers.get(name)
        if value:
            return str(value)[:128]
    return None
