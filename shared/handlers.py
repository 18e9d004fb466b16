"""The event handlers: each one declared once (:class:`EventFunction`), in the module whose code
it runs, and listed here by name. ``functions/<name>/main.py`` serves the declaration
(:func:`shared.serving.event_function`); the deployment catalog reads the same declarations.

Adding a handler: declare ``FUNCTION`` in its module, add it to :data:`MODULES`, add a
one-line ``main.py`` and its KafkaSource.
"""

from __future__ import annotations

from collections.abc import Callable
from importlib import import_module
from typing import Any, Literal

from shared.dataclass import dataclass

MODULES = {
    "message-processor": "shared.bot.runtime",
    "outbound-dispatcher": "shared.outbound.dispatcher",
    "status-tracker": "shared.status",
    "audit-logger": "shared.audit",
    "analytics-sink": "shared.analytics.sink",
}


@dataclass(frozen=True)
class EventFunction:
    name: str
    # What handles one CloudEvent and names its outcome ("done", "duplicate", …); called per
    # event, so the object behind it is made on the first (after gunicorn forked the worker).
    handler: Callable[[], Callable[[Any], str | None]]
    health: Callable[[], dict[str, bool]]  # each dependency: up or down
    required: tuple[str, ...]  # the dependencies without which it answers 503 (not ready)
    # Poison (an event answered 400): "store" also keeps it in poison_events for inspection;
    # "dead-letter" leaves it to the dead-letter topic alone (the store is what failed).
    poison: Literal["store", "dead-letter"]
    uses: tuple[str, ...]  # settings groups (shared/settings.py): what its deployment must set


def declaration(name: str) -> EventFunction:
    if name not in MODULES:
        raise KeyError(f"no event handler {name!r} (declared: {', '.join(MODULES)})")
    declared: EventFunction = import_module(MODULES[name]).FUNCTION
    return declared


def declarations() -> list[EventFunction]:
    return [declaration(name) for name in MODULES]
