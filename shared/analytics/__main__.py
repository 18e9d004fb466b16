"""``python -m shared.analytics migrate`` · ``report --tenant T --from D --to D [--channel C]``.

``migrate`` applies the SQL migrations to ``POSTGRES_URL`` and prints what it applied as JSON
(the bootstrap Job runs it; a second run applies nothing). ``report`` prints a tenant's daily
numbers as JSON, the same as the conversations API's ``GET /api/v2/chat/reports/daily``.
Exit status: 0 done, 1 PostgreSQL unreachable or a migration failed, 2 bad arguments.
"""

from __future__ import annotations

import argparse
import json
import sys
from datetime import date

from shared.errors import ChatServiceError, describe
from shared.settings import get_settings


def _date(text: str) -> date:
    try:
        return date.fromisoformat(text)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(f"{text!r} is not a date (YYYY-MM-DD)") from exc


def parser() -> argparse.ArgumentParser:
    root = argparse.ArgumentParser(prog="python -m shared.analytics", description=__doc__)
    commands = root.add_subparsers(dest="command", required=True)
    commands.add_parser("migrate", help="apply the SQL migrations to POSTGRES_URL")
    report = commands.add_parser("report", help="a tenant's daily numbers as JSON")
    report.add_argument("--tenant", required=True)
    report.add_argument("--from", dest="date_from", type=_date, required=True)
    report.add_argument("--to", dest="date_to", type=_date, required=True)
    report.add_argument("--channel")
    return root


def main(argv: list[str] | None = None) -> int:
    args = parser().parse_args(argv)
    settings = get_settings()
    try:
        import psycopg

        from shared.analytics import db

        with db.unavailable_as_503():
            conn = psycopg.connect(
                settings.postgres_url,
                autocommit=True,
                connect_timeout=max(1, round(settings.postgres_timeout_s)),
            )
        with conn:
            if args.command == "migrate":
                from shared.analytics.migrate import migrate

                result = {"database": db.database_name(settings.postgres_url), **migrate(conn)}
            else:
                from shared.analytics.reports import daily_report

                result = {
                    "tenant": args.tenant,
                    "days": daily_report(
                        conn, args.tenant, args.date_from, args.date_to, args.channel
                    ),
                }
    except ChatServiceError as exc:
        print(f"{args.command} failed: {exc.message}", file=sys.stderr)
        return 1
    except Exception as exc:  # a SQL error or a refused migration: no traceback for an operator
        print(f"{args.command} failed: {describe(exc)}", file=sys.stderr)
        return 1
    print(json.dumps(result, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
