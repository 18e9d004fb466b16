"""Dead letters as values: read, grouped, filtered and turned back into the original record.

A dead letter is what a KafkaSource could not deliver — after its retries, or at once for a
400 — written by its dead-letter KafkaSink (``kafka-sources/``: one topic per KafkaSource,
``<prefix>.dlq.<handler>``) in binary mode: the record's key and value and its CloudEvent
attributes as they were, plus the extensions Knative adds (eventing-kafka-broker; the local
dispatcher writes the same, :func:`shared.kafkasource.delivery.dead_letter_headers`):

- ``knativeerrorcode``: the handler's HTTP status, absent when there was no answer at all;
- ``knativeerrordest``: the URL the event was delivered to;
- ``knativeerrordata``: the answer's body (or the dispatch error), base64, at most 1 KiB.

Nothing here talks to Kafka; :mod:`shared.ops.deadletter` is the command.
"""

from __future__ import annotations

import base64
import binascii
import json
import re
from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import replace
from datetime import UTC, datetime
from typing import Any

from shared import events
from shared.dataclass import dataclass, field
from shared.kafka import TimedRecord
from shared.kafkasource.delivery import KAFKA_EVENT_TYPE
from shared.kafkasource.manifests import KafkaSource
from shared.settings import Settings

ERROR_HEADER_PREFIX = "ce_knativeerror"
NO_CODE = "none"  # the error code of a dead letter that got no answer (timeout, refused)
# The manifests name the default prefix's topics (README: "the KafkaSources name the default
# ones"); a deployment's TOPIC_PREFIX replaces it (knative/components/wiring).
MANIFEST_PREFIX = Settings().topic_prefix
SAMPLES_PER_CODE = 3
# Where each of our event types is published (shared/events.py; the topics of Settings).
TYPE_TOPICS = {
    events.MESSAGE_RECEIVED: ".messages.inbound",
    events.MESSAGE_OUTBOUND: ".messages.outbound",
    events.MESSAGE_STATUS: ".messages.status",
}
SAMPLE_CHARS = 100


class ReplayError(ValueError):
    """A dead letter that cannot be replayed as the manifests stand."""


@dataclass(frozen=True)
class DeadLetter:
    source: str  # the KafkaSource whose dead-letter topic holds it
    record: TimedRecord

    @property
    def _headers(self) -> dict[str, bytes]:
        return {name.lower(): value for name, value in self.record.headers.items()}

    @property
    def attributes(self) -> dict[str, str]:
        """The CloudEvent's attributes (``ce_*`` headers) without Knative's error extensions."""
        return {
            name[3:]: _text(value)
            for name, value in self._headers.items()
            if name.startswith("ce_") and not name.startswith(ERROR_HEADER_PREFIX)
        }

    @property
    def id(self) -> str:
        return self.attributes.get("id", "")

    @property
    def type(self) -> str:
        return self.attributes.get("type", "")

    @property
    def content_type(self) -> str | None:
        value = self._headers.get("content-type")
        return None if value is None else _text(value)

    @property
    def error_code(self) -> str:
        value = self._headers.get("ce_knativeerrorcode")
        return NO_CODE if value is None else _text(value)

    @property
    def error_dest(self) -> str | None:
        value = self._headers.get("ce_knativeerrordest")
        return None if value is None else _text(value)

    @property
    def error_data(self) -> bytes | None:
        """``knativeerrordata`` decoded from base64 (kept as it is if it is not base64)."""
        value = self._headers.get("ce_knativeerrordata")
        if value is None:
            return None
        try:
            return base64.b64decode(value, validate=True)
        except (binascii.Error, ValueError):
            return value

    @property
    def time(self) -> datetime:
        """When it was dead-lettered: the dead-letter record's timestamp."""
        return datetime.fromtimestamp(self.record.timestamp_ms / 1000, UTC)

    def replay_headers(self) -> list[tuple[str, bytes]]:
        """The headers the record had before it failed: every one but Knative's extensions."""
        return [
            (name, value)
            for name, value in self.record.headers.items()
            if not name.lower().startswith(ERROR_HEADER_PREFIX)
        ]


def readable(raw: bytes | None) -> Any:
    """Bytes for a reader: the JSON value they hold, else UTF-8 text, else ``base64:…``."""
    if raw is None:
        return None
    try:
        return json.loads(raw)
    except ValueError:
        pass
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError:
        return "base64:" + base64.b64encode(raw).decode()


def iso(moment: datetime | None) -> str | None:
    if moment is None:
        return None
    return moment.astimezone(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


@dataclass
class TopicSummary:
    """One dead-letter topic: how many, from when to when, and why (the ``list`` command)."""

    source: str
    count: int = 0
    oldest: datetime | None = None
    newest: datetime | None = None
    by_error_code: Counter[str] = field(default_factory=Counter)
    by_error_dest: Counter[str] = field(default_factory=Counter)
    by_type: Counter[str] = field(default_factory=Counter)
    error_data_samples: dict[str, list[str]] = field(default_factory=dict)

    def add(self, letter: DeadLetter) -> None:
        self.count += 1
        moment = letter.time
        self.oldest = moment if self.oldest is None else min(self.oldest, moment)
        self.newest = moment if self.newest is None else max(self.newest, moment)
        self.by_error_code[letter.error_code] += 1
        self.by_error_dest[letter.error_dest or NO_CODE] += 1
        self.by_type[letter.type or NO_CODE] += 1
        samples = self.error_data_samples.setdefault(letter.error_code, [])
        sample = sample_text(letter.error_data)
        if sample and sample not in samples and len(samples) < SAMPLES_PER_CODE:
            samples.append(sample)

    def to_json(self) -> dict[str, Any]:
        return {
            "source": self.source,
            "count": self.count,
            "oldest": iso(self.oldest),
            "newest": iso(self.newest),
            "by_error_code": dict(sorted(self.by_error_code.items())),
            "by_error_dest": dict(sorted(self.by_error_dest.items())),
            "by_type": dict(sorted(self.by_type.items())),
            "error_data_samples": dict(sorted(self.error_data_samples.items())),
        }


def summarise(source: str, letters: Iterable[DeadLetter]) -> TopicSummary:
    summary = TopicSummary(source)
    for letter in letters:
        summary.add(letter)
    return summary


def sample_text(raw: bytes | None) -> str:
    """A one-line sample of an error body, at most :data:`SAMPLE_CHARS` long."""
    if not raw:
        return ""
    text = " ".join(raw.decode("utf-8", errors="replace").split())
    return text if len(text) <= SAMPLE_CHARS else text[: SAMPLE_CHARS - 1] + "…"


_CODE_PATTERN = re.compile(r"\d{3}|[1-5]xx|none")


def error_code_pattern(text: str) -> str:
    """An ``--error-code`` value: a status (``400``), a class (``5xx``) or ``none``."""
    pattern = text.strip().lower()
    if not _CODE_PATTERN.fullmatch(pattern):
        raise ValueError(f"expected a status such as 400, a class such as 5xx, or none: {text!r}")
    return pattern


@dataclass(frozen=True)
class Selection:
    """The ``replay`` filters; every one given must match (an empty selection takes all)."""

    ids: frozenset[str] = frozenset()
    types: frozenset[str] = frozenset()
    error_codes: tuple[str, ...] = ()  # error_code_pattern values
    since: datetime | None = None  # dead-lettered at or after
    until: datetime | None = None  # dead-lettered before

    @property
    def narrowed(self) -> bool:
        return bool(self.ids or self.types or self.error_codes or self.since or self.until)

    def matches(self, letter: DeadLetter) -> bool:
        code = letter.error_code
        return (
            (not self.ids or letter.id in self.ids)
            and (not self.types or letter.type in self.types)
            and (not self.error_codes or any(_code_matches(p, code) for p in self.error_codes))
            and (self.since is None or letter.time >= self.since)
            and (self.until is None or letter.time < self.until)
        )


def _code_matches(pattern: str, code: str) -> bool:
    if pattern.endswith("xx"):
        return len(code) == 3 and code.isdigit() and code[0] == pattern[0]
    return pattern == code


def distinct(letters: Iterable[DeadLetter]) -> tuple[list[DeadLetter], int]:
    """Each event once (the first of its dead letters), and how many repeats were left out.

    An event dead-lettered twice (a replay that failed again) is one event: CloudEvents makes
    ``source`` + ``id`` unique, and ``type`` is part of the audit trail's key too.
    """
    seen: set[tuple[str, str, str, str]] = set()
    unique, repeats = [], 0
    for letter in letters:
        key = (letter.source, letter.attributes.get("source", ""), letter.id, letter.type)
        if key in seen:
            repeats += 1
        else:
            seen.add(key)
            unique.append(letter)
    return unique, repeats


def replay_topic(letter: DeadLetter, sources: Sequence[KafkaSource]) -> str:
    """Where a replay of ``letter`` goes: the topic its KafkaSource read it from.

    1. The topic Knative recorded, when it recorded one: a record that was no CloudEvent is
       wrapped with ``source`` ``…/kafkasources/<name>#<topic>``.
    2. The source's only topic (message-processor, outbound-dispatcher, status-tracker).
    3. For a source reading several topics (audit-logger), the one no other KafkaSource reads
       (``<prefix>.audit``). A CloudEvent names no topic, so the original is unknown; a topic
       of its own reaches that handler alone instead of replaying the event to every handler
       of, say, the inbound topic. The audit document does not name the topic either, so it is
       the one the first delivery would have written.
    4. For a source with no topic of its own (analytics-sink), the topic its event type is
       published to (a received message: ``<prefix>.messages.inbound``). The other handlers of
       that topic see the event again; each of them dedupes on its id, so it is a no-op there.
    """
    source = next((s for s in sources if s.name == letter.source), None)
    if source is None:
        raise ReplayError(f"no KafkaSource {letter.source!r} in the manifests")
    if letter.type == KAFKA_EVENT_TYPE:
        _, _, recorded = letter.attributes.get("source", "").rpartition("#")
        if recorded in source.topics:
            return recorded
    if len(source.topics) == 1:
        return source.topics[0]
    elsewhere = {topic for other in sources if other.name != source.name for topic in other.topics}
    own = [topic for topic in source.topics if topic not in elsewhere]
    if len(own) == 1:
        return own[0]
    suffix = TYPE_TOPICS.get(letter.type)
    published = [topic for topic in source.topics if suffix and topic.endswith(suffix)]
    if len(published) == 1:
        return published[0]
    raise ReplayError(
        f"{source.name} reads {', '.join(source.topics)} and none of them alone: "
        "the event's own topic is not recorded, so a replay has no unambiguous target"
    )


def deployed(
    sources: Sequence[KafkaSource], topic_prefix: str
) -> tuple[list[KafkaSource], list[str]]:
    """The sources as deployed under ``topic_prefix``, and the topics that could not be moved.

    The manifests name ``chatbot.platform.*`` topics; a deployment's wiring component puts its
    TOPIC_PREFIX in their place (``make deploy-check`` holds every topic to it). A topic not
    under the manifests' prefix stays as it is and is returned, for a warning like the local
    dispatcher's.
    """
    strays: list[str] = []

    def moved(topic: str) -> str:
        if topic.startswith(MANIFEST_PREFIX + "."):
            return topic_prefix + topic.removeprefix(MANIFEST_PREFIX)
        strays.append(topic)
        return topic

    result = []
    for source in sources:
        dead = source.delivery.dead_letter_topic
        result.append(
            replace(
                source,
                topics=tuple(moved(topic) for topic in source.topics),
                delivery=replace(source.delivery, dead_letter_topic=moved(dead) if dead else None),
            )
        )
    return result, strays


def _text(value: bytes | str) -> str:
    return value.decode("utf-8", errors="replace") if isinstance(value, bytes) else value
