"""``python -m shared.ops.deadletter``: list, show and replay the KafkaSources' dead letters.

    python -m shared.ops.deadletter list [--source NAME] [--json]
    python -m shared.ops.deadletter show ID [--source NAME] [--json]
    python -m shared.ops.deadletter replay [--source NAME] [--type T] [--error-code C]
        [--since ISO] [--until ISO] [--id ID ...] [--dry-run]

The KafkaSources and their dead-letter topics come from the manifests (``kafka-sources/``, or
``--manifests DIR``), their topics moved under TOPIC_PREFIX as a deployment's wiring moves
them; the brokers are KAFKA_BROKERS. Runbook: docs/runbooks/dead-letters.md.

A replay produces each matching dead letter back to the topic its KafkaSource reads, as the
record it was: the same key, value and CloudEvent attributes, without Knative's knativeerror*
extensions. It is safe to run twice: the tool remembers nothing and removes nothing, and every
handler dedupes on the event id (the processor's checkpoint, the outbound claim, the
forward-only status machine, the audit trail's key), so an event whose work is done is a no-op
and a reply is never sent twice.

Exit status: 0 done; 1 Kafka unreachable, no dead letter with the id to show, nothing matched
the replay's filters, or a dead letter could not be replayed; 2 usage or unreadable manifests.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Sequence
from datetime import UTC, datetime
from pathlib import Path

from shared.errors import DependencyUnavailable
from shared.kafka import RecordProducer, read_to_end
from shared.kafkasource import manifests
from shared.kafkasource.manifests import KafkaSource
from shared.ops import dlq, dlq_report
from shared.ops.dlq import DeadLetter, Selection
from shared.settings import get_settings

ROOT = Path(__file__).resolve().parents[2]
PROG = "python -m shared.ops.deadletter"


def main(argv: list[str] | None = None) -> int:
    parser = _parser()
    args = parser.parse_args(argv)
    settings = get_settings()
    try:
        sources, strays = dlq.deployed(manifests.load(args.manifests), settings.topic_prefix)
    except manifests.ManifestError as exc:
        _say(f"deadletter: {exc}")
        return 2
    if strays:  # warned about like the local dispatcher does: not a topic of TOPIC_PREFIX
        _say(
            f"deadletter: warning: {', '.join(strays)} not under {dlq.MANIFEST_PREFIX}.*, so "
            f"not moved to TOPIC_PREFIX {settings.topic_prefix}"
        )
    names = [source.name for source in sources]
    if args.source is not None and args.source not in names:
        parser.error(f"--source {args.source}: not one of {', '.join(names)} ({args.manifests})")
    chosen = [source for source in sources if args.source in (None, source.name)]
    brokers = settings.kafka_brokers
    try:
        status: int = args.run(args, brokers, chosen, sources)
    except DependencyUnavailable as exc:
        _say(f"deadletter: {exc.message} (KAFKA_BROKERS {','.join(brokers)})")
        return 1
    return status


def list_command(
    args: argparse.Namespace,
    brokers: Sequence[str],
    chosen: list[KafkaSource],
    sources: list[KafkaSource],
) -> int:
    summaries = summarise(brokers, chosen)
    if args.json:
        document = {"topics": {topic: s.to_json() for topic, s in summaries.items()}}
        print(json.dumps(document, indent=2, ensure_ascii=False))
    else:
        dropping = [source.name for source in chosen if not source.delivery.dead_letter_topic]
        print("\n".join(dlq_report.summary_lines(summaries, dropping)))
    return 0


def summarise(
    brokers: Sequence[str], sources: Sequence[KafkaSource]
) -> dict[str, dlq.TopicSummary]:
    """Each source's dead-letter topic and what is on it (also read by the maintenance check)."""
    return {
        source.delivery.dead_letter_topic: dlq.summarise(source.name, _letters(brokers, source))
        for source in sources
        if source.delivery.dead_letter_topic
    }


def show_command(
    args: argparse.Namespace,
    brokers: Sequence[str],
    chosen: list[KafkaSource],
    sources: list[KafkaSource],
) -> int:
    found = [letter for source in chosen for letter in _letters(brokers, source)]
    found = [letter for letter in found if letter.id == args.id]
    if not found:
        topics = [s.delivery.dead_letter_topic for s in chosen if s.delivery.dead_letter_topic]
        _say(f"deadletter: no dead letter with id {args.id} on {', '.join(topics)}")
        return 1
    if args.json:
        letters = [dlq_report.letter_json(letter, _target(letter, sources)) for letter in found]
        print(json.dumps({"dead_letters": letters}, indent=2, ensure_ascii=False))
    else:
        blocks = ["\n".join(dlq_report.letter_lines(x, _target(x, sources))) for x in found]
        print("\n\n".join(blocks))
    return 0


def replay_command(
    args: argparse.Namespace,
    brokers: Sequence[str],
    chosen: list[KafkaSource],
    sources: list[KafkaSource],
) -> int:
    selection = Selection(
        ids=frozenset(args.ids),
        types=frozenset(args.types),
        error_codes=tuple(args.error_codes),
        since=args.since,
        until=args.until,
    )
    every = [letter for source in chosen for letter in _letters(brokers, source)]
    letters, repeats = dlq.distinct(letter for letter in every if selection.matches(letter))
    if not letters:
        print("no dead letter matches" if selection.narrowed else "no dead letters")
        return 1 if selection.narrowed else 0
    producer = None if args.dry_run else RecordProducer(brokers, client_id="deadletter-replay")
    replayed, failed = 0, 0
    try:
        for letter in letters:
            try:
                topic = dlq.replay_topic(letter, sources)
            except dlq.ReplayError as exc:
                failed += 1
                print(f"not replayed  {dlq_report.one_line(letter)}: {exc}")
                continue
            if producer is not None:
                producer.send(
                    topic, letter.record.key, letter.replay_headers(), letter.record.value
                )
            replayed += 1
            verb = "would replay" if producer is None else "replayed"
            print(f"{verb}  {dlq_report.one_line(letter)}  → {topic}")
    except DependencyUnavailable:
        print(f"stopped after {replayed} replayed; running the same replay again is safe")
        raise
    finally:
        if producer is not None:
            producer.close()
    print(dlq_report.replay_summary(replayed, repeats, failed, dry_run=producer is None))
    return 1 if failed else 0


def _letters(brokers: Sequence[str], source: KafkaSource) -> list[DeadLetter]:
    topic = source.delivery.dead_letter_topic
    if topic is None:
        return []
    return [DeadLetter(source.name, record) for record in read_to_end(brokers, topic)]


def _target(letter: DeadLetter, sources: Sequence[KafkaSource]) -> str | dlq.ReplayError:
    try:
        return dlq.replay_topic(letter, sources)
    except dlq.ReplayError as exc:
        return exc


def _say(line: str) -> None:
    print(line, file=sys.stderr)


def default_manifests() -> Path:
    """The checkout's kafka-sources/, else the image's copy (/app/kafka-sources)."""
    checkout = ROOT / "kafka-sources"
    return checkout if checkout.is_dir() else Path("/app/kafka-sources")


def _parser() -> argparse.ArgumentParser:
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument("--source", metavar="NAME", help="one KafkaSource (default: all)")
    common.add_argument(
        "--manifests",
        type=Path,
        default=default_manifests(),
        metavar="DIR",
        help="the KafkaSource manifests (default: the repository's kafka-sources/)",
    )
    parser = argparse.ArgumentParser(
        prog=PROG, description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    listing = commands.add_parser(
        "list", parents=[common], help="each dead-letter topic: count, times, errors, types"
    )
    listing.add_argument("--json", action="store_true", help="JSON instead of a table")
    listing.set_defaults(run=list_command)

    show = commands.add_parser(
        "show", parents=[common], help="the dead letter(s) of one event id, decoded"
    )
    show.add_argument("id", metavar="ID", help="the CloudEvent id")
    show.add_argument("--json", action="store_true", help="JSON instead of text")
    show.set_defaults(run=show_command)

    replay = commands.add_parser(
        "replay",
        parents=[common],
        help="produce dead letters back to their topic (safe to run twice)",
        description="Produce the matching dead letters back to the topic their KafkaSource "
        "reads: same key, value and attributes, without the knativeerror* extensions. Safe to "
        "run twice: handlers dedupe on the event id, so done work is a no-op and no reply is "
        "sent twice. Filters combine (all must match); repeat one to allow several values.",
    )
    replay.add_argument(
        "--type", dest="types", action="append", default=[], metavar="T", help="CloudEvent type"
    )
    replay.add_argument(
        "--error-code",
        dest="error_codes",
        action="append",
        default=[],
        type=_error_code,
        metavar="C",
        help="knativeerrorcode: a status (400), a class (5xx) or none (no answer)",
    )
    replay.add_argument("--since", type=_instant, metavar="ISO", help="dead-lettered at or after")
    replay.add_argument("--until", type=_instant, metavar="ISO", help="dead-lettered before")
    replay.add_argument(
        "--id", dest="ids", action="extend", nargs="+", default=[], metavar="ID", help="event id"
    )
    replay.add_argument("--dry-run", action="store_true", help="print, produce nothing")
    replay.set_defaults(run=replay_command)
    return parser


def _error_code(text: str) -> str:
    try:
        return dlq.error_code_pattern(text)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None


def _instant(text: str) -> datetime:
    try:
        moment = datetime.fromisoformat(text.strip())
    except ValueError:
        raise argparse.ArgumentTypeError(f"not an ISO 8601 time: {text!r}") from None
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)


if __name__ == "__main__":
    sys.exit(main())
