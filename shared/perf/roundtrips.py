"""Round trips to MongoDB, Redis and Kafka made by this process, counted where they leave it.

- **MongoDB**: every command pymongo sends, from its command monitoring
  (``pymongo.monitoring.CommandListener``). One command is one round trip whatever it carries:
  ``insert_many`` or a ``bulk_write`` of one kind of operation is one ``insert``/``update``.
- **Redis**: every request written to a connection (redis-py's ``send_packed_command``, called
  once per command and once per pipeline or ``MULTI`` … ``EXEC``, however long), so a Lua
  script call is one, and so are what redis-py adds by itself (a health-check ``PING``, a
  ``SCRIPT EXISTS`` before a pipeline that holds a script).
- **Kafka**: every record handed to a producer (``KafkaProducer.send``); the producers here
  wait for ``acks=all`` with no linger, so each is one acknowledged produce.

:class:`RoundTrips` counts while it is active, each round trip in the step named by
:meth:`RoundTrips.step` (nothing is counted outside a step). Only one counter is active at a
time: the hooks are process-wide. pymongo copies its global listeners into a client when the
client is made, so the first counter registers the listener and closes the clients made before
it (:func:`shared.store.mongo.close_clients`), and the per-process objects that held them
(:func:`shared.caching.clear_all`): make the handlers after entering the first counter.

Nothing in a function imports this module; tests and ``scripts/bench`` do.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from types import TracebackType
from typing import Any

from pymongo import monitoring

from shared.dataclass import dataclass, field

KINDS = ("mongodb", "redis", "kafka")


@dataclass
class Tally:
    """The round trips of one step, one label each: ``update messages (2)``,
    ``PIPELINE LRANGE HGETALL``, the Kafka topic."""

    mongodb: list[str] = field(default_factory=list)
    redis: list[str] = field(default_factory=list)
    kafka: list[str] = field(default_factory=list)

    def counts(self) -> dict[str, int]:
        return {kind: len(getattr(self, kind)) for kind in KINDS}

    def __add__(self, other: Tally) -> Tally:
        return Tally(
            self.mongodb + other.mongodb, self.redis + other.redis, self.kafka + other.kafka
        )

    def to_dict(self) -> dict[str, Any]:
        return {**self.counts(), "detail": {kind: list(getattr(self, kind)) for kind in KINDS}}


def total(tallies: Iterator[Tally] | list[Tally]) -> Tally:
    result = Tally()
    for tally in tallies:
        result = result + tally
    return result


class RoundTrips:
    """``with RoundTrips() as trips: with trips.step("processor"): …`` then ``trips.steps``."""

    def __init__(self) -> None:
        self.steps: dict[str, Tally] = {}
        self._current: Tally | None = None
        self._lock = threading.Lock()

    def __enter__(self) -> RoundTrips:
        _activate(self)
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        _deactivate(self)

    @contextmanager
    def step(self, name: str) -> Iterator[Tally]:
        """Count what happens in the block as ``name`` (added to what ``name`` has already)."""
        with self._lock:
            tally = self._current = self.steps.setdefault(name, Tally())
        try:
            yield tally
        finally:
            with self._lock:
                self._current = None

    def record(self, kind: str, label: str) -> None:
        with self._lock:
            if self._current is not None:
                getattr(self._current, kind).append(label)


# --- the process-wide hooks ------------------------------------------------------------------

_active: RoundTrips | None = None
_hooks_lock = threading.Lock()
_undo: list[Callable[[], None]] = []
_listening = False


def _record(kind: str, label: str) -> None:
    counter = _active
    if counter is not None:
        counter.record(kind, label)


class _MongoCommands(monitoring.CommandListener):
    def started(self, event: monitoring.CommandStartedEvent) -> None:
        _record("mongodb", mongo_label(event.command_name, event.command))

    def succeeded(self, event: monitoring.CommandSucceededEvent) -> None:
        pass

    def failed(self, event: monitoring.CommandFailedEvent) -> None:
        pass


def mongo_label(name: str, command: Any) -> str:
    """``find messages``, ``update messages (2)``: the command, its collection, and how many
    statements a write carries when it is more than one."""
    target = command.get(name) if hasattr(command, "get") else None
    label = f"{name} {target}" if isinstance(target, str) else name
    for batch in ("documents", "updates", "deletes"):
        statements = command.get(batch) if hasattr(command, "get") else None
        if isinstance(statements, list) and len(statements) > 1:
            label += f" ({len(statements)})"
    return label


def redis_label(packed: Any) -> str:
    """The command names in one request as redis-py packed it (RESP arrays)."""
    parts = [packed] if isinstance(packed, bytes | str | memoryview) else list(packed)
    data = b"".join(p.encode() if isinstance(p, str) else bytes(p) for p in parts)
    names: list[str] = []
    try:
        at = 0
        while at < len(data) and data[at : at + 1] == b"*":
            end = data.index(b"\r\n", at)
            count, at = int(data[at + 1 : end]), end + 2
            for index in range(count):
                end = data.index(b"\r\n", at)
                length, at = int(data[at + 1 : end]), end + 2
                if index == 0:
                    names.append(data[at : at + length].decode(errors="replace").upper())
                at += length + 2
    except ValueError:
        names.append("?")
    if len(names) == 1 or names[0] == "MULTI":
        return " ".join(names)
    return "PIPELINE " + " ".join(names)


def _listen_to_mongodb() -> bool:
    """Register the command listener once per process; True the first time."""
    global _listening
    if _listening:
        return False
    monitoring.register(_MongoCommands())
    _listening = True
    return True


def _patch(owner: Any, name: str, wrap: Callable[[Any], Any]) -> None:
    original = owner.__dict__[name]
    setattr(owner, name, wrap(original))
    _undo.append(lambda: setattr(owner, name, original))


def _install() -> None:
    from kafka import KafkaProducer
    from redis.connection import AbstractConnection

    def counting_send(original: Any) -> Any:
        def send_packed_command(self: Any, command: Any, *args: Any, **kwargs: Any) -> Any:
            _record("redis", redis_label(command))
            return original(self, command, *args, **kwargs)

        return send_packed_command

    def counting_produce(original: Any) -> Any:
        def send(self: Any, topic: str, *args: Any, **kwargs: Any) -> Any:
            _record("kafka", topic)
            return original(self, topic, *args, **kwargs)

        return send

    _patch(AbstractConnection, "send_packed_command", counting_send)
    _patch(KafkaProducer, "send", counting_produce)


def _activate(counter: RoundTrips) -> None:
    global _active
    with _hooks_lock:
        if _active is not None:
            raise RuntimeError("another RoundTrips counter is active in this process")
        if _listen_to_mongodb():
            from shared.caching import clear_all
            from shared.store.mongo import close_clients

            close_clients()  # made before the listener: they would not report
            clear_all()
        _install()
        _active = counter


def _deactivate(counter: RoundTrips) -> None:
    global _active
    with _hooks_lock:
        if _active is not counter:
            return
        while _undo:
            _undo.pop()()
        _active = None
