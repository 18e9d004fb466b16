"""Hostile input for the property tests: saved platform payloads, mutated the way an attacker
(or a broken client) would mutate them, and the one outcome rule every endpoint must keep.

A mutation starts from a payload in ``tests/data/<channel>/`` and changes one place of it
(chosen anywhere in the JSON tree) or its raw text:

- the value: dropped, duplicated under the same key in the raw text, replaced by another JSON
  type, by a huge number (thousands of digits, ``1e400``), a deep nesting (past the parser's
  recursion limit), a string with NUL characters, a lone UTF-16 surrogate written as a JSON
  escape (``"\\ud800"``), an oversized string, or any generated JSON value;
- the text: raw NUL bytes, bytes that are no UTF-8, another encoding (UTF-16, Latin-1), a byte
  order mark, truncation, or a byte flipped.

The endpoint rule (:func:`answer`): a request gets a 2xx, or a 4xx :class:`ChatServiceError`;
never another exception, never a 5xx, and never half a request published (see
:class:`EncodingProducer`).
"""

from __future__ import annotations

import json
import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

from hypothesis import event as label
from hypothesis import strategies as st
from hypothesis.strategies import DrawFn

from shared.channels._payload import rfc3339
from shared.errors import ChatServiceError
from shared.ingress import Ingress
from shared.kafka.records import from_record, to_record
from shared.models import InboundMessage, StatusUpdate
from shared.web import WebRequest, WebResponse, error_response
from tests.conftest import DATA
from tests.unit.fakes import MemoryDedupe

Json = Any
Path = tuple[str | int, ...]

# Placeholders put into the document and replaced in its serialised text: how a mutation
# writes what json.dumps never would (duplicate keys, lone surrogates as escapes, 5,000 digits).
_VALUE = "\x00fuzz-value\x00"
_KEY = "\x00fuzz-key\x00"

# Deep enough to pass the parser's recursion limit (about 1,000); bodies stay well under 1 MiB.
DEEP = (2, 50, 999, 1001, 5000, 100_000)
HUGE_NUMBERS = (
    "1" + "0" * 400,
    "-" + "9" * 4301,  # over the int() digit limit of Python 3.11
    "1e400",
    "-1e400",
    "1e-400",
    "1" + "0" * 400 + ".5",
    "123456789012345678901234567890",
    "9007199254740993",  # 2**53 + 1: not a double
    "-0",
    "0.0000000000000000000001",
)
SURROGATES = ('"\\ud800"', '"\\udfff"', '"a\\ud83d"', '"\\ude00b"', '"\\ud83d\\ude00"')
NUL_STRINGS = ('"\\u0000"', '"a\\u0000b"', '"\\u0000' + "x" * 100 + '"')
# JSON text fragments that are not JSON at all (the signature is still valid: they reach parsing).
NOT_JSON = ("NaN", "Infinity", "-Infinity", "undefined", "'x'", "01", "[1,]", '{"a" 1}', "")


def load(channel: str, name: str) -> tuple[Json, bytes]:
    raw = (DATA / channel / name).read_bytes()
    return json.loads(raw), raw


def payload_names(channel: str, exclude: Sequence[str] = ()) -> list[str]:
    """The saved payloads of a channel (``accounts.json`` and the like are not payloads)."""
    return sorted(
        p.name
        for p in (DATA / channel).glob("*.json")
        if p.name not in exclude and p.name != "accounts.json"
    )


# --- JSON values --------------------------------------------------------------------------------

scalars = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(),
    st.integers(min_value=-(2**70), max_value=2**70),
    st.floats(allow_nan=False, allow_infinity=False),
    st.text(max_size=40),
    st.sampled_from(["", " ", "0", "-1", "1.5", "true", "null", "$where", "\r\nX-Injected: 1"]),
)
json_values: st.SearchStrategy[Json] = st.recursive(
    scalars,
    lambda children: st.one_of(
        st.lists(children, max_size=4),
        st.dictionaries(st.text(max_size=12), children, max_size=4),
    ),
    max_leaves=12,
)
# MongoDB operators where a value should be: must be refused or stored as the literal it is.
operator_objects = st.sampled_from(
    [{"$ne": None}, {"$gt": ""}, {"$where": "sleep(100)"}, {"$regex": ".*"}, {"$in": [1, 2]}]
)


def paths(document: Json) -> list[Path]:
    """Every place in the document: the root, every key and every list index, depth first."""
    found: list[Path] = [()]

    def walk(node: Json, at: Path) -> None:
        if isinstance(node, dict):
            for key, value in node.items():
                found.append((*at, key))
                walk(value, (*at, key))
        elif isinstance(node, list):
            for index, value in enumerate(node):
                found.append((*at, index))
                walk(value, (*at, index))

    walk(document, ())
    return found


def _copy(document: Json) -> Json:
    result: Json = json.loads(json.dumps(document))
    return result


def _parent(document: Json, path: Path) -> Json:
    node = document
    for step in path[:-1]:
        node = node[step]
    return node


def _set(document: Json, path: Path, value: Json) -> Json:
    if not path:
        return value
    _parent(document, path)[path[-1]] = value
    return document


def _drop(document: Json, path: Path) -> Json:
    if not path:
        return {}
    parent = _parent(document, path)
    del parent[path[-1]]
    return document


def _fragment_at(document: Json, path: Path, fragment: str, ensure_ascii: bool) -> str:
    """The document's text with the value at ``path`` written as the raw JSON ``fragment``."""
    text = json.dumps(_set(_copy(document), path, _VALUE), ensure_ascii=ensure_ascii)
    return text.replace(json.dumps(_VALUE, ensure_ascii=ensure_ascii), fragment, 1)


def _extra_key(
    document: Json, path: Path, key_fragment: str, value_fragment: str, first: bool
) -> str | None:
    """The text with one more member in the object holding ``path``, written as the raw JSON
    ``key_fragment: value_fragment``, first or last in the object."""
    if not path or not isinstance(path[-1], str):
        return None
    document = _copy(document)
    parent = _parent(document, path)
    items = list(parent.items())
    extra = (_KEY, _VALUE)
    parent.clear()
    parent.update(dict([extra, *items] if first else [*items, extra]))
    text = json.dumps(document)
    text = text.replace(json.dumps(_KEY), key_fragment, 1)
    return text.replace(json.dumps(_VALUE), value_fragment, 1)


def _nested(depth: int, kind: str) -> str:
    return ("[" * depth + "]" * depth) if kind == "list" else ('{"a":' * depth + "1" + "}" * depth)


@st.composite
def mutated(draw: DrawFn, document: Json) -> bytes:
    """One mutation of ``document`` (after up to two changes of its tree), as the bytes a
    platform would sign and send."""
    for _ in range(draw(st.integers(min_value=0, max_value=2))):
        document = draw(_tree_mutation(document))
    where = draw(st.sampled_from(paths(document)))
    op = draw(
        st.sampled_from(
            [
                "drop",
                "retype",
                "operator",
                "huge_number",
                "deep",
                "nul",
                "surrogate",
                "surrogate_key",
                "long_string",
                "duplicate_key",
                "not_json",
                "encoding",
                "raw_bytes",
            ]
        )
    )
    ascii_text = draw(st.booleans())
    text: str | None
    if op == "drop":
        text = json.dumps(_drop(_copy(document), where), ensure_ascii=ascii_text)
    elif op == "retype":
        text = json.dumps(_set(_copy(document), where, draw(json_values)), ensure_ascii=ascii_text)
    elif op == "operator":
        value = draw(operator_objects)
        text = json.dumps(_set(_copy(document), where, value), ensure_ascii=ascii_text)
    elif op == "huge_number":
        text = _fragment_at(document, where, draw(st.sampled_from(HUGE_NUMBERS)), ascii_text)
    elif op == "deep":
        depth = draw(st.sampled_from(DEEP))
        nested = _nested(depth, draw(st.sampled_from(["list", "object"])))
        text = _fragment_at(document, where, nested, ascii_text)
    elif op == "nul":
        text = _fragment_at(document, where, draw(st.sampled_from(NUL_STRINGS)), ascii_text)
    elif op == "surrogate":
        text = _fragment_at(document, where, draw(st.sampled_from(SURROGATES)), ascii_text)
    elif op == "surrogate_key":
        # A lone surrogate as an object key, next to the key chosen.
        surrogate = draw(st.sampled_from(SURROGATES))
        text = _extra_key(document, where, surrogate, "1", first=draw(st.booleans()))
    elif op == "long_string":
        size = draw(st.sampled_from([4097, 70_000, 300_000]))
        char = draw(st.sampled_from(["a", "é", "😀", "\\n", "\\u0000"]))
        text = _fragment_at(document, where, '"' + char * size + '"', ascii_text)
    elif op == "duplicate_key":
        # The chosen key twice in its object, the other time with another value: Python
        # keeps the last one, other parsers (and a signature checker's eye) the first.
        key = json.dumps(where[-1]) if where else ""
        fragment = json.dumps(draw(json_values))
        text = _extra_key(document, where, key, fragment, first=draw(st.booleans()))
    elif op == "not_json":
        text = _fragment_at(document, where, draw(st.sampled_from(NOT_JSON)), ascii_text)
    else:
        text = None
    if text is None or op in ("encoding", "raw_bytes"):
        return draw(_raw_mutation(json.dumps(document, ensure_ascii=False), op))
    return text.encode("utf-8", "surrogatepass")


@st.composite
def _tree_mutation(draw: DrawFn, document: Json) -> Json:
    """A value dropped or replaced by another JSON value: still a JSON document."""
    where = draw(st.sampled_from(paths(document)))
    if draw(st.booleans()):
        return _drop(_copy(document), where)
    return _set(_copy(document), where, draw(st.one_of(json_values, operator_objects)))


@st.composite
def _raw_mutation(draw: DrawFn, text: str, op: str) -> bytes:
    if op == "encoding" or draw(st.booleans()):
        codec = draw(st.sampled_from(["utf-16", "utf-16-le", "utf-32", "latin-1", "cp1252", "bom"]))
        if codec == "bom":
            return b"\xef\xbb\xbf" + text.encode()
        return text.encode(codec, "replace")
    raw = bytearray(text.encode())
    at = draw(st.integers(min_value=0, max_value=max(0, len(raw) - 1)))
    how = draw(st.sampled_from(["nul", "invalid_utf8", "truncate", "flip", "lone_continuation"]))
    if how == "nul":
        raw[at:at] = b"\x00"
    elif how == "invalid_utf8":
        raw[at:at] = b"\xff\xfe"
    elif how == "truncate":
        del raw[at:]
    elif how == "flip" and raw:
        raw[at] ^= 1 << draw(st.integers(min_value=0, max_value=7))
    else:
        raw[at:at] = b"\x80"
    return bytes(raw)


def bodies(documents: Sequence[Json]) -> st.SearchStrategy[bytes]:
    """Mutations of the documents, the documents themselves, and generated JSON objects."""
    mutations = st.sampled_from(documents).flatmap(mutated)
    return st.one_of(
        mutations,
        mutations,
        mutations,
        mutations,
        st.sampled_from(documents).map(lambda d: json.dumps(d).encode()),
        st.dictionaries(st.text(max_size=12), json_values, max_size=6).map(
            lambda d: json.dumps(d).encode("utf-8", "surrogatepass")
        ),
        st.binary(max_size=200),
    )


# --- the outcome rule ---------------------------------------------------------------------------


class EncodingProducer:
    """The fake broker of the property tests: every event of a request is encoded as the real
    producer encodes it (binary-mode Kafka record) before any is kept, so an event that could
    not be produced fails the whole request, as it would in production, and a request is kept
    all or nothing."""

    def __init__(self) -> None:
        self.published: list[tuple[str, Any]] = []

    def publish(self, events: Sequence[tuple[str, Any]]) -> None:
        for _, event in events:
            record = to_record(event)
            decoded = from_record(list(record.headers.items()), record.key, record.value)
            assert decoded["id"] == event["id"]
        self.published.extend(events)


@dataclass
class Outcome:
    response: WebResponse
    published: list[tuple[str, Any]] = field(default_factory=list)


def answer(
    handler: Callable[[WebRequest, Ingress], WebResponse], request: WebRequest, ingress: Ingress
) -> Outcome:
    """The handler's answer under the rule: 2xx with everything it reports published once, or
    a 4xx ChatServiceError with nothing published and nothing marked. Any other exception is
    the test's failure (raised as it is, so hypothesis shrinks it)."""
    producer, dedupe = ingress.producer, ingress.dedupe
    assert isinstance(producer, EncodingProducer) and isinstance(dedupe, MemoryDedupe)
    before, marks = len(producer.published), dict(dedupe.marked)
    try:
        response = handler(request, ingress)
    except ChatServiceError as exc:
        assert 400 <= exc.status < 500, f"{exc.status} {exc.code}: {exc.message}"
        assert len(producer.published) == before, "a refused request published events"
        assert dedupe.marked == marks, "a refused request left dedupe marks"
        error = error_response(exc)
        json.dumps(error.body)  # the answer can be written
        label(f"{exc.status} {exc.code}")  # --hypothesis-show-statistics shows the spread
        return Outcome(error)
    assert 200 <= response.status < 300, response
    label(f"{response.status}")
    published = producer.published[before:]
    if isinstance(response.body, dict) and "published" in response.body:
        # Every item the answer reports as published is on the broker; nothing else is.
        assert len(published) == response.body["published"], (response.body, published)
    assert len(dedupe.marked) - len(marks) == len(published)
    if isinstance(response.body, dict | list):
        json.dumps(response.body)
    for _, event in published:
        assert event["tenantid"] in ("acme", "globex")
    return Outcome(response, published)


# --- what a parsed item may hold ----------------------------------------------------------------


def check_item(item: InboundMessage | StatusUpdate) -> None:
    """A canonical item is well typed whatever the payload was: ids are non-empty strings, the
    time is RFC 3339, the text is text (encodable), coordinates are finite and in range."""
    for name in ("tenant_id", "account_id", "chat_id", "platform_message_id", "timestamp"):
        value = getattr(item, name)
        assert isinstance(value, str) and value, (name, value)
        value.encode("utf-8")
    assert item.timestamp == rfc3339(_unix(item.timestamp)), item.timestamp
    if isinstance(item, InboundMessage):
        assert isinstance(item.sender.id, str) and item.sender.id
        for text in (item.text, item.sender.name, item.reply_to, item.thread_id):
            assert text is None or isinstance(text, str), text
            if text is not None:
                text.encode("utf-8")
        if item.location is not None:
            assert math.isfinite(item.location.latitude) and abs(item.location.latitude) <= 90
            assert math.isfinite(item.location.longitude) and abs(item.location.longitude) <= 180
        for media in item.attachments:
            assert isinstance(media.id, str) and media.id
    json.dumps(item.to_dict(), ensure_ascii=False).encode()


def _unix(timestamp: str) -> float:
    from datetime import datetime

    return datetime.fromisoformat(timestamp.replace("Z", "+00:00")).timestamp()
