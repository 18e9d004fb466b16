"""JSON log lines carrying the correlation id and the context of what is being handled.

The correlation id (the trace id, see :mod:`shared.tracing`) and the context (tenant, channel,
event id: :func:`bound`, :func:`annotate`) live in ``contextvars`` variables, so every line
written while a request or event is handled carries them, including lines from helpers that
know nothing of the request. The function's name is the ``service`` field of every line.
"""

from __future__ import annotations

import contextvars
import json
import logging
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

correlation_id: contextvars.ContextVar[str] = contextvars.ContextVar("correlation_id", default="-")
# What the request or event being handled is about (tenant, channel, event id): on every line.
_context: contextvars.ContextVar[dict[str, Any] | None] = contextvars.ContextVar(
    "log_context", default=None
)

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
        line.update(_context.get() or {})
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


@contextmanager
def bound(**fields: Any) -> Iterator[None]:
    """Every line written in the block carries ``fields`` (``None`` values are left out)."""
    token = _context.set({k: v for k, v in fields.items() if v is not None})
    try:
        yield
    finally:
        _context.reset(token)


def annotate(**fields: Any) -> None:
    """Add to the current block's fields once they are known (the tenant of a webhook is,
    after its account is looked up). Outside a :func:`bound` block this does nothing."""
    context = _context.get()
    if context is not None:
        context.update({k: v for k, v in fields.items() if v is not None})
