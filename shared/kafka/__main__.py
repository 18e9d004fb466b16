"""``python -m shared.kafka ensure-topics``: create the service's topics (the bootstrap Job).

The topics are those of ``TOPIC_PREFIX`` (shared/settings.py) on ``KAFKA_BROKERS``; the
dead-letter topics are created by their KafkaSinks. Prints a JSON report (created, existing with
their partition counts, and those with fewer partitions than asked for, which are left as they
are). Exit status: 0 done, 1 Kafka unreachable or a topic could not be created.
"""

from __future__ import annotations

import argparse
import json
import sys

from shared.errors import describe
from shared.kafka.admin import DEFAULT_PARTITIONS, ensure_topics
from shared.settings import get_settings


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m shared.kafka", description=__doc__)
    commands = parser.add_subparsers(dest="command", required=True)
    ensure = commands.add_parser("ensure-topics", help="create the topics that are missing")
    ensure.add_argument("--partitions", type=int, default=DEFAULT_PARTITIONS)
    ensure.add_argument("--replication-factor", type=int, default=1)
    ensure.add_argument(
        "--min-insync-replicas",
        type=int,
        default=0,
        help="the topics' min.insync.replicas (0: the broker's default); with acks=all, a "
        "write then needs this many replicas to be acknowledged",
    )
    args = parser.parse_args(argv)
    if args.partitions < 1 or args.replication_factor < 1 or args.min_insync_replicas < 0:
        parser.error("partitions and replication factor must be ≥ 1")
    settings = get_settings()
    configs = (
        {"min.insync.replicas": str(args.min_insync_replicas)} if args.min_insync_replicas else {}
    )
    try:
        report = ensure_topics(
            settings.kafka_brokers,
            settings.topics,
            args.partitions,
            replication_factor=args.replication_factor,
            configs=configs,
        )
    except Exception as exc:  # an operator reads one line, not a traceback
        print(f"ensure-topics failed: {describe(exc)}", file=sys.stderr)
        return 1
    for topic, count in report.short.items():
        print(
            f"warning: {topic} has {count} partitions, fewer than {args.partitions}; left as it "
            "is (adding partitions reorders conversations: see the scaling runbook)",
            file=sys.stderr,
        )
    result = {
        "brokers": list(settings.kafka_brokers),
        "created": report.created,
        "existing": report.existing,
    }
    print(json.dumps(result, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
