"""``python -m shared.ops.maintenance``: what needs a person, from MongoDB and Kafka.

- **Indexes**: every index of ``shared/store/indexes.py`` exists with its keys and options
  (``python -m shared.store.migrate`` creates what is missing); an index nobody declared is
  reported too (it costs every write).
- **Audit retention**: the TTL index keeps ``AUDIT_RETENTION_DAYS``, and nothing older than
  that plus a day of slack is left (MongoDB's TTL monitor deletes once a minute; older records
  mean it is not running, or the index is wrong).
- **Dead letters**: every dead-letter topic's count, by error code (anything there waits for a
  person: docs/runbooks/dead-letters.md).

Exit status: 0 nothing to do, 1 something needs a person (or a check could not run), 2 usage.
"""

from __future__ import annotations

import argparse
import json
import sys
from dataclasses import asdict
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from shared.dataclass import dataclass
from shared.errors import ChatServiceError, describe
from shared.settings import Settings, get_settings
from shared.store.indexes import DAY_S, specs
from shared.store.mongo import database, unavailable_as_503

OPTIONS = ("unique", "partialFilterExpression", "expireAfterSeconds")
TTL_SLACK = timedelta(days=1)


@dataclass(frozen=True)
class Finding:
    area: str  # "indexes" | "audit" | "dead letters"
    ok: bool
    message: str


def index_findings(db: Any, retention_days: int) -> list[Finding]:
    wanted = specs(retention_days)
    found: list[Finding] = []
    actual = {
        name: {index["name"]: dict(index) for index in db[name].list_indexes()}
        for name in sorted({spec.collection for spec in wanted})
    }
    for spec in wanted:
        index = actual[spec.collection].pop(spec.name, None)
        where = f"{spec.collection}.{spec.name}"
        if index is None:
            found.append(Finding("indexes", False, f"{where} is missing (run the migration)"))
            continue
        keys = [(k, int(v)) for k, v in dict(index["key"]).items()]
        options = {k: index[k] for k in OPTIONS if k in index}
        if keys != list(spec.keys) or options != spec.options:
            found.append(
                Finding(
                    "indexes",
                    False,
                    f"{where} differs: {keys} {options}, declared {list(spec.keys)} {spec.options}",
                )
            )
    for collection, left in actual.items():
        for name in sorted(set(left) - {"_id_"}):
            found.append(Finding("indexes", False, f"{collection}.{name} is not declared"))
    if not found:
        found.append(Finding("indexes", True, f"{len(wanted)} indexes as declared"))
    return found


def audit_findings(db: Any, retention_days: int, now: datetime) -> list[Finding]:
    audit = db["audit"]
    count = audit.estimated_document_count()
    oldest = next(iter(audit.find({}, {"recorded_at": 1}).sort("recorded_at", 1).limit(1)), None)
    recorded = (oldest or {}).get("recorded_at")
    limit = now - timedelta(days=retention_days) - TTL_SLACK
    ttl = {i["name"]: i.get("expireAfterSeconds") for i in audit.list_indexes()}
    ok = ttl.get("recorded_at_ttl") == retention_days * DAY_S
    message = f"{count} records kept for {retention_days} days"
    if not ok:
        message = f"the TTL index keeps {ttl.get('recorded_at_ttl')} s, not {retention_days} days"
    if isinstance(recorded, datetime) and recorded < limit:
        ok = False
        message += f"; the oldest is from {recorded.isoformat()}: the TTL monitor is behind"
    return [Finding("audit", ok, message)]


def deadletter_findings(settings: Settings, manifests_dir: Path | None = None) -> list[Finding]:
    from shared.kafkasource import manifests
    from shared.ops import deadletter, dlq

    directory = manifests_dir or deadletter.default_manifests()
    sources, _ = dlq.deployed(manifests.load(directory), settings.topic_prefix)
    found = []
    for topic, summary in deadletter.summarise(settings.kafka_brokers, sources).items():
        if summary.count:
            codes = ", ".join(f"{code}: {n}" for code, n in sorted(summary.by_error_code.items()))
            found.append(Finding("dead letters", False, f"{topic}: {summary.count} ({codes})"))
    if not found:
        found.append(Finding("dead letters", True, "every dead-letter topic is empty"))
    return found


def check(settings: Settings, now: datetime | None = None) -> list[Finding]:
    now = now or datetime.now(UTC)
    findings: list[Finding] = []
    try:
        with unavailable_as_503():
            db = database(settings)
            findings += index_findings(db, settings.audit_retention_days)
            findings += audit_findings(db, settings.audit_retention_days, now)
    except ChatServiceError as exc:
        findings.append(Finding("indexes", False, f"MongoDB not checked: {exc.message}"))
    try:
        findings += deadletter_findings(settings)
    except Exception as exc:  # Kafka down or manifests unreadable: say so, a person looks
        findings.append(Finding("dead letters", False, f"not checked: {describe(exc)}"))
    return findings


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="scripts/maintenance.sh", description=__doc__)
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args(argv)
    findings = check(get_settings())
    if args.json:
        print(json.dumps({"findings": [asdict(f) for f in findings]}, indent=2))
    else:
        for finding in findings:
            mark = "ok  " if finding.ok else "TODO"
            print(f"{mark}  {finding.area:<13} {finding.message}")
    return 0 if all(f.ok for f in findings) else 1


if __name__ == "__main__":
    sys.exit(main())
