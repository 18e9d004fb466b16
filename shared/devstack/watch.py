"""Print one line per CloudEvent on the message topics, so a developer sees traffic arrive.

Runs in a daemon thread of the stack. A broker hiccup is reported and the watch starts over;
the offsets already printed are remembered per partition, so nothing is printed twice.
"""

from __future__ import annotations

import json
import threading
from collections.abc import Callable, Sequence
from datetime import datetime
from typing import Any

from shared.kafka import ConsumedRecord

MAX_TEXT = 80


def _header(record: ConsumedRecord, name: str) -> str:
    return record.headers.get(name, b"").decode(errors="replace")


def _summary(data: Any) -> str:
    """The part of an event a person wants to see: the text, else the status or kind."""
    if not isinstance(data, dict):
        return ""
    for key in ("text", "status", "kind"):
        value = data.get(key)
        if isinstance(value, str) and value:
            text = value if len(value) <= MAX_TEXT else value[: MAX_TEXT - 1] + "…"
            return json.dumps(text, ensure_ascii=False) if key == "text" else f"[{text}]"
    return ""


def format_record(record: ConsumedRecord, prefix: str) -> str:
    topic = record.topic.removeprefix(prefix + ".")
    try:
        data = json.loads(record.value)
    except (TypeError, ValueError):
        data = None
    key = record.key.decode(errors="replace") if record.key else "-"
    clock = datetime.now().strftime("%H:%M:%S")
    return (
        f"{clock} {topic:<18} {_header(record, 'ce_type') or '(not a CloudEvent)'}"
        f"  id={_header(record, 'ce_id')}  key={key}  {_summary(data)}"
    ).rstrip()


class Watcher:
    def __init__(
        self,
        brokers: str,
        topics: Sequence[str],
        prefix: str,
        emit: Callable[[str], None],
        *,
        from_beginning: bool,
    ) -> None:
        self._brokers = brokers.split(",")
        self._topics = list(topics)
        self._prefix = prefix
        self._emit = emit
        self._from_beginning = from_beginning
        self._stop = threading.Event()
        self._next_offset: dict[tuple[str, int], int] = {}
        self._thread = threading.Thread(target=self._run, name="event-watcher", daemon=True)

    def start(self) -> None:
        self._thread.start()

    def stop(self, timeout_s: float = 3.0) -> None:
        self._stop.set()
        self._thread.join(timeout_s)

    def _run(self) -> None:
        from shared.kafka import follow_topics

        while not self._stop.is_set():
            try:
                follow_topics(
                    self._brokers,
                    self._topics,
                    self._on_record,
                    self._stop,
                    from_beginning=self._from_beginning,
                )
            except Exception as exc:
                self._emit(f"event watcher: {type(exc).__name__}: {exc}; retrying")
                self._stop.wait(2.0)

    def _on_record(self, record: ConsumedRecord) -> None:
        partition = (record.topic, record.partition)
        if record.offset < self._next_offset.get(partition, 0):
            return
        self._next_offset[partition] = record.offset + 1
        self._emit(format_record(record, self._prefix))
