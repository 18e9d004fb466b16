"""How :mod:`shared.ops.deadletter` prints dead letters: tables and blocks for a terminal, and
the JSON of ``show --json`` (``list --json`` is :meth:`TopicSummary.to_json`)."""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Mapping, Sequence
from typing import Any

from shared.ops.dlq import NO_CODE, DeadLetter, ReplayError, TopicSummary, iso, readable

# The CloudEvents context attributes in the spec's order; extensions follow, sorted.
_ATTRIBUTE_ORDER = (
    "specversion",
    "id",
    "source",
    "type",
    "subject",
    "time",
    "datacontenttype",
    "dataschema",
)
_ERRORS = ("knativeerrorcode", "knativeerrordest", "knativeerrordata")
_NUMBER_AT_1, _NUMBER_AT_2 = frozenset({1}), frozenset({2})  # right-aligned count columns
_NAME_WIDTH = len("knativeerrorcode")  # show's name column; a longer extension name overflows


def summary_lines(summaries: Mapping[str, TopicSummary], dropping: Sequence[str]) -> list[str]:
    """One row per dead-letter topic, then each non-empty topic's errors and types."""
    rows = [
        [s.source, topic, str(s.count), iso(s.oldest) or "-", iso(s.newest) or "-"]
        for topic, s in summaries.items()
    ]
    lines = table(["SOURCE", "DEAD-LETTER TOPIC", "COUNT", "OLDEST", "NEWEST"], rows, _NUMBER_AT_2)
    lines += [f"{name}: no dead-letter sink, what fails is dropped" for name in dropping]
    for topic, summary in summaries.items():
        if not summary.count:
            continue
        codes = []
        for code, count in _by_count(summary.by_error_code):
            samples = summary.error_data_samples.get(code) or [""]
            codes.append([code, str(count), samples[0]])
            codes += [["", "", sample] for sample in samples[1:]]
        lines += ["", topic]
        lines += _indent(
            table(["knativeerrorcode", "COUNT", "knativeerrordata (sample)"], codes, _NUMBER_AT_1)
        )
        dests = [[dest, str(n)] for dest, n in _by_count(summary.by_error_dest)]
        lines += _indent(table(["knativeerrordest", "COUNT"], dests, _NUMBER_AT_1))
        types = [[event_type, str(n)] for event_type, n in _by_count(summary.by_type)]
        lines += _indent(table(["type", "COUNT"], types, _NUMBER_AT_1))
    return lines


def letter_lines(letter: DeadLetter, target: str | ReplayError) -> list[str]:
    """Everything about one dead letter, for ``show``."""
    record = letter.record
    replay = f"not possible: {target}" if isinstance(target, ReplayError) else target
    data = readable(record.value)
    text = data if isinstance(data, str) else json.dumps(data, indent=2, ensure_ascii=False)
    return [
        f"{record.topic}  partition {record.partition}  offset {record.offset}",
        *_pairs(
            [
                ("kafkasource", letter.source),
                ("dead-lettered", iso(letter.time) or "-"),
                ("key", _key(letter)),
                ("replay to", replay),
            ]
        ),
        "attributes",
        *_pairs(_ordered(letter.attributes)),
        "error (Knative's extensions; knativeerrordata decoded from base64)",
        *_pairs([(name, _compact(value)) for name, value in _errors(letter)]),
        f"data ({letter.content_type or 'no content-type'})",
        *_indent(text.splitlines() or [""]),
    ]


def letter_json(letter: DeadLetter, target: str | ReplayError) -> dict[str, Any]:
    record = letter.record
    return {
        "topic": record.topic,
        "partition": record.partition,
        "offset": record.offset,
        "dead_lettered_at": iso(letter.time),
        "source": letter.source,
        "key": None if record.key is None else _key(letter),
        "attributes": dict(_ordered(letter.attributes)),
        "errors": dict(_errors(letter)),
        "content_type": letter.content_type,
        "data": readable(record.value),
        "replay_topic": None if isinstance(target, ReplayError) else target,
        "replay_error": str(target) if isinstance(target, ReplayError) else None,
    }


def one_line(letter: DeadLetter) -> str:
    return (
        f"id={letter.id} type={letter.type} code={letter.error_code} key={_key(letter)} "
        f"dead-lettered={iso(letter.time)}"
    )


def replay_summary(replayed: int, repeats: int, failed: int, *, dry_run: bool) -> str:
    parts = [
        f"{replayed} would be replayed (dry run: nothing produced)"
        if dry_run
        else f"{replayed} replayed"
    ]
    if repeats:
        parts.append(f"{repeats} more dead letter(s) of the same events left out")
    if failed:
        parts.append(f"{failed} not replayable")
    return "; ".join(parts)


def table(
    header: Sequence[str], rows: Sequence[Sequence[str]], right: frozenset[int] = frozenset()
) -> list[str]:
    """Columns padded to their widest cell; ``right``: the columns aligned right (numbers)."""
    every = [list(header), *rows] if header else [list(row) for row in rows]
    if not every:
        return []
    widths = [max(len(row[i]) for row in every) for i in range(len(every[0]))]
    return [
        "  ".join(
            cell.rjust(widths[i]) if i in right else cell.ljust(widths[i])
            for i, cell in enumerate(row)
        ).rstrip()
        for row in every
    ]


def _errors(letter: DeadLetter) -> list[tuple[str, Any]]:
    code = None if letter.error_code == NO_CODE else letter.error_code
    return list(zip(_ERRORS, (code, letter.error_dest, readable(letter.error_data)), strict=True))


def _ordered(attributes: Mapping[str, str]) -> list[tuple[str, str]]:
    known = [(name, attributes[name]) for name in _ATTRIBUTE_ORDER if name in attributes]
    return known + sorted((n, v) for n, v in attributes.items() if n not in _ATTRIBUTE_ORDER)


def _by_count(counter: Counter[str]) -> list[tuple[str, int]]:
    return sorted(counter.items(), key=lambda item: (-item[1], item[0]))


def _compact(value: Any) -> str:
    if value is None:
        return "-"
    return value if isinstance(value, str) else json.dumps(value, ensure_ascii=False)


def _key(letter: DeadLetter) -> str:
    key = letter.record.key
    return "-" if key is None else key.decode("utf-8", errors="replace")


def _pairs(pairs: Sequence[tuple[str, str]]) -> list[str]:
    """Name-value lines, indented, the values in one column (as wide as the longest name)."""
    return ["  " + f"{name:<{_NAME_WIDTH}}  {value}".rstrip() for name, value in pairs]


def _indent(lines: Sequence[str]) -> list[str]:
    return ["  " + line for line in lines]
