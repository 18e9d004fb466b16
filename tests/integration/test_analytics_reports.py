"""The reporting views on a scripted mix of conversations: every number computed here
independently, from the script, and compared with what PostgreSQL's views give (through
``daily_report`` and the ``report`` command); and the migrations, run again, change nothing."""

from __future__ import annotations

import json
import math
import os
import subprocess
import sys
from collections import defaultdict
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from typing import Any

import pytest
from flask.testing import FlaskClient

from shared.analytics import daily_report, get_pool
from shared.analytics.migrate import MigrationError, migrate
from shared.api.service import openapi_document
from shared.errors import InvalidParameter
from shared.models import Author, Channel, DeliveryStatus, InboundMessage, OutboundMessage, Sender
from shared.models import StatusUpdate as Status
from tests.builders import deliver, inbound_message, outbound_message, status_update
from tests.integration.analytics_support import event_of
from tests.integration.api_support import (  # noqa: F401 (a fixture, used by name)
    REPORTS,
    ApiClient,
    OpenApi,
    api_env_fixture,
    token,
)
from tests.integration.conftest import ROOT

pytestmark = pytest.mark.integration

D1, D2 = date(2025, 6, 8), date(2025, 6, 9)
ACCOUNTS = {"whatsapp": "106540352242922", "telegram": "7000000001", "messenger": "PAGE1"}


def at(day: date, clock: str) -> datetime:
    hours, minutes, seconds = (int(part) for part in clock.split(":"))
    return datetime(day.year, day.month, day.day, hours, minutes, seconds, tzinfo=UTC)


@dataclass
class Step:
    who: str  # user | bot | fallback | agent
    at: datetime
    handoff: bool = False
    statuses: tuple[tuple[str, datetime], ...] = ()


@dataclass
class Conversation:
    channel: str
    user: str
    steps: list[Step]
    tenant: str = "acme"
    # A reply answers the user's last message before it (the processor and the API do so).
    answers: list[datetime | None] = field(init=False)

    def __post_init__(self) -> None:
        last: datetime | None = None
        self.answers = []
        for step in self.steps:
            self.answers.append(None if step.who == "user" else last)
            if step.who == "user":
                last = step.at


S = Step
SCRIPT = [
    # Bot-resolved on D1 (and, the same conversation, again on D2 below).
    Conversation("whatsapp", "u1", [
        S("user", at(D1, "10:00:00")),
        S("bot", at(D1, "10:00:02"), statuses=(
            ("sent", at(D1, "10:00:03")), ("delivered", at(D1, "10:00:05")),
            ("read", at(D1, "10:01:00")))),
    ]),
    # The bot hands over (a reply in two parts), an agent answers the next message.
    Conversation("whatsapp", "u2", [
        S("user", at(D1, "11:00:00")),
        S("bot", at(D1, "11:00:01"), handoff=True, statuses=(
            ("sent", at(D1, "11:00:02")), ("read", at(D1, "11:00:30")))),
        S("bot", at(D1, "11:00:01"), handoff=True),
        S("user", at(D1, "11:05:00")),
        S("agent", at(D1, "11:15:00"), statuses=(
            ("sent", at(D1, "11:15:01")), ("failed", at(D1, "11:15:02")))),
    ]),
    # Nobody answers.
    Conversation("whatsapp", "u3", [S("user", at(D1, "12:00:00"))]),
    # The fallback answers on Telegram (no statuses there).
    Conversation("telegram", "u4", [
        S("user", at(D1, "13:00:00")), S("fallback", at(D1, "13:00:04"))]),
    Conversation("whatsapp", "u1", [
        S("user", at(D2, "09:00:00")),
        S("bot", at(D2, "09:00:01"), statuses=(("sent", at(D2, "09:00:02")),))]),
    # Across midnight: written on D1, answered on D2 (the response counts on D1).
    Conversation("whatsapp", "u5", [
        S("user", at(D1, "23:59:50")),
        S("bot", at(D2, "00:00:05"), statuses=(
            ("sent", at(D2, "00:00:06")), ("delivered", at(D2, "00:00:07")))),
    ]),
    # An agent answers twice: only the first reply is the response.
    Conversation("telegram", "u6", [
        S("user", at(D2, "14:00:00")), S("agent", at(D2, "14:30:00")),
        S("agent", at(D2, "14:31:00"))]),
    # Another tenant: never in acme's numbers.
    Conversation("whatsapp", "g1", [
        S("user", at(D1, "10:00:00")), S("bot", at(D1, "10:00:09"))], tenant="globex"),
]  # fmt: skip


def iso(moment: datetime) -> str:
    return moment.isoformat().replace("+00:00", "Z")


def items(
    index: int, conversation: Conversation
) -> list[InboundMessage | OutboundMessage | Status]:
    place = {
        "tenant_id": conversation.tenant,
        "channel": Channel(conversation.channel),
        "account_id": ACCOUNTS[conversation.channel],
        "chat_id": conversation.user,
    }
    made: list[InboundMessage | OutboundMessage | Status] = []
    for number, (step, answers) in enumerate(
        zip(conversation.steps, conversation.answers, strict=True)
    ):
        name = f"c{index}-{number}"
        if step.who == "user":
            made.append(
                inbound_message(
                    **place, platform_message_id=name, sender=Sender(conversation.user),
                    timestamp=iso(step.at),
                )
            )  # fmt: skip
            continue
        made.append(
            outbound_message(
                **place, message_id=name, author=Author(step.who), created_at=iso(step.at),
                in_reply_to_at=iso(answers) if answers else None, handoff=step.handoff,
            )
        )  # fmt: skip
        for status, moment in step.statuses:
            made.append(
                status_update(
                    DeliveryStatus(status), **place, platform_message_id=f"wamid.{name}",
                    timestamp=iso(moment),
                )
            )  # fmt: skip
    return made


def percentile_cont(values: list[float], fraction: float) -> float:
    """PostgreSQL's percentile_cont: linear interpolation between the closest ranks."""
    ordered = sorted(values)
    position = fraction * (len(ordered) - 1)
    lower, upper = math.floor(position), math.ceil(position)
    return ordered[lower] + (ordered[upper] - ordered[lower]) * (position - lower)


def expected(tenant: str) -> dict[tuple[str, str], dict[str, Any]]:
    """The report, from the script alone: per (day, channel)."""
    days: dict[tuple[str, str, str], dict[str, Any]] = {}  # (day, channel, conversation)
    responses: dict[tuple[str, str], list[float]] = defaultdict(list)
    deliveries: dict[tuple[str, str], list[dict[str, bool]]] = defaultdict(list)
    for conversation in SCRIPT:
        if conversation.tenant != tenant:
            continue
        channel, chat = conversation.channel, conversation.user
        first_replies: dict[datetime, datetime] = {}
        for step, answers in zip(conversation.steps, conversation.answers, strict=True):
            day = step.at.date().isoformat()
            seen = days.setdefault(
                (day, channel, chat),
                {"user": 0, "bot": 0, "fallback": 0, "agent": 0, "handoff": False},
            )
            seen[step.who] += 1
            seen["handoff"] |= step.who == "agent" or step.handoff
            if answers is not None:
                first_replies[answers] = min(first_replies.get(answers, step.at), step.at)
            statuses = [s for s, _ in step.statuses]
            if statuses:
                first = min(moment for _, moment in step.statuses).date().isoformat()
                delivered = "delivered" in statuses or "read" in statuses
                deliveries[(first, channel)].append(
                    {"delivered": delivered, "read": "read" in statuses,
                     "failed": "failed" in statuses and not delivered}
                )  # fmt: skip
        for asked, replied in first_replies.items():
            responses[(asked.date().isoformat(), channel)].append((replied - asked).total_seconds())

    report: dict[tuple[str, str], dict[str, Any]] = {}

    def row(day: str, channel: str) -> dict[str, Any]:
        return report.setdefault(
            (day, channel),
            {
                "day": day, "channel": channel, "conversations": 0, "inbound_messages": 0,
                "outbound_messages": 0, "bot_messages": 0, "fallback_messages": 0,
                "agent_messages": 0, "bot_resolved_conversations": 0,
                "handoff_conversations": 0, "unanswered_conversations": 0,
                "bot_resolution_rate": None, "handoff_rate": None, "answered_messages": 0,
                "p50_response_s": None, "p95_response_s": None, "reported_messages": 0,
                "delivered_messages": 0, "read_messages": 0, "failed_messages": 0,
                "delivery_ratio": None, "read_ratio": None,
            },
        )  # fmt: skip

    for (day, channel, _), seen in days.items():
        r = row(day, channel)
        answered = seen["bot"] + seen["fallback"] > 0
        r["conversations"] += 1
        r["inbound_messages"] += seen["user"]
        r["outbound_messages"] += seen["bot"] + seen["fallback"] + seen["agent"]
        for author in ("bot", "fallback", "agent"):
            r[f"{author}_messages"] += seen[author]
        r["handoff_conversations"] += seen["handoff"]
        r["bot_resolved_conversations"] += answered and not seen["handoff"]
        r["unanswered_conversations"] += not answered and not seen["handoff"]
    for r in report.values():
        r["bot_resolution_rate"] = r["bot_resolved_conversations"] / r["conversations"]
        r["handoff_rate"] = r["handoff_conversations"] / r["conversations"]
    for (day, channel), times in responses.items():
        r = row(day, channel)
        r["answered_messages"] = len(times)
        r["p50_response_s"] = percentile_cont(times, 0.5)
        r["p95_response_s"] = percentile_cont(times, 0.95)
    for (day, channel), messages in deliveries.items():
        r = row(day, channel)
        r["reported_messages"] = len(messages)
        for what in ("delivered", "read", "failed"):
            r[f"{what}_messages"] = sum(m[what] for m in messages)
        r["delivery_ratio"] = r["delivered_messages"] / len(messages)
        r["read_ratio"] = r["read_messages"] / len(messages)
    return report


@pytest.fixture
def loaded(start_sink: Callable[..., FlaskClient], analytics_db: str) -> str:
    """The script delivered through analytics-sink, every event twice (a redelivery each)."""
    client = start_sink()
    for index, conversation in enumerate(SCRIPT):
        for item in items(index, conversation):
            for _ in range(2):
                assert deliver(client, event_of(item)).status_code == 200
    # A Messenger read watermark names no single message: stored, in no ratio.
    watermark = status_update(
        DeliveryStatus.READ, channel=Channel("messenger"), account_id="PAGE1", chat_id="u7",
        platform_message_id="watermark-1", timestamp=iso(at(D2, "15:00:00")),
        up_to=iso(at(D2, "14:59:00")),
    )  # fmt: skip
    assert deliver(client, event_of(watermark)).status_code == 200
    return analytics_db


def test_the_views_give_the_numbers_the_script_makes(loaded: str) -> None:
    want = expected("acme")
    got = daily_report(get_pool(), "acme", D1, D2)

    assert [(r["day"], r["channel"]) for r in got] == sorted(want)
    assert got == [want[key] for key in sorted(want)]
    # Spot checks, by hand: D1 WhatsApp has u1, u2, u3 and u5 (unanswered that day).
    d1 = want[(D1.isoformat(), "whatsapp")]
    assert (d1["conversations"], d1["bot_resolved_conversations"]) == (4, 1)
    assert (d1["handoff_conversations"], d1["unanswered_conversations"]) == (1, 2)
    assert (d1["answered_messages"], d1["p50_response_s"]) == (4, 8.5)  # 2, 1, 600, 15 s


def test_a_channel_and_a_range_narrow_the_report(loaded: str) -> None:
    want = expected("acme")
    assert daily_report(get_pool(), "acme", D2, D2, channel="telegram") == [
        want[(D2.isoformat(), "telegram")]
    ]
    assert daily_report(get_pool(), "acme", D1 - timedelta(days=9), D1 - timedelta(days=1)) == []
    assert [r["channel"] for r in daily_report(get_pool(), "globex", D1, D2)] == ["whatsapp"]
    with pytest.raises(InvalidParameter, match="before"):
        daily_report(get_pool(), "acme", D2, D1)


def test_the_report_command_prints_the_same_numbers(loaded: str) -> None:
    env = {**os.environ, "POSTGRES_URL": loaded}
    command = [sys.executable, "-m", "shared.analytics", "report", "--tenant", "acme"]
    command += ["--from", D1.isoformat(), "--to", D2.isoformat()]
    result = subprocess.run(command, env=env, cwd=ROOT, capture_output=True, text=True, timeout=60)

    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout) == {
        "tenant": "acme",
        "days": daily_report(get_pool(), "acme", D1, D2),
    }


def schema(conn: Any) -> dict[str, list[Any]]:
    queries = {
        "columns": "SELECT table_name, column_name, data_type, is_nullable, column_default"
        " FROM information_schema.columns WHERE table_schema = 'public' ORDER BY 1, 2",
        "indexes": "SELECT indexname, indexdef FROM pg_indexes WHERE schemaname = 'public'"
        " ORDER BY 1",
        "views": "SELECT viewname, definition FROM pg_views WHERE schemaname = 'public' ORDER BY 1",
        "migrations": "SELECT version, name, checksum, applied_at FROM schema_migrations"
        " ORDER BY 1",
    }
    return {name: conn.execute(sql).fetchall() for name, sql in queries.items()}


def test_migrations_run_twice_change_nothing(analytics_db: str) -> None:
    import psycopg

    with psycopg.connect(analytics_db, autocommit=True) as conn:
        before = schema(conn)
        assert migrate(conn) == {"applied": [], "schema_version": "0002"}
        assert migrate(conn) == {"applied": [], "schema_version": "0002"}
        assert schema(conn) == before
        assert [name for _, name, _, _ in before["migrations"]] == [
            "0001_facts",
            "0002_reporting_views",
        ]
        assert {"daily_report", "daily_conversations", "daily_response_times"} <= {
            view for view, _ in before["views"]
        }


def test_an_applied_migration_that_changed_is_refused(analytics_db: str) -> None:
    import psycopg

    with psycopg.connect(analytics_db, autocommit=True) as conn:
        conn.execute("UPDATE schema_migrations SET checksum = 'edited' WHERE version = '0002'")
        try:
            with pytest.raises(MigrationError, match="never edited"):
                migrate(conn)
        finally:
            conn.execute("DELETE FROM schema_migrations WHERE version = '0002'")
            conn.execute("DROP VIEW daily_report, daily_delivery, message_deliveries,"
                         " daily_response_times, response_times, daily_conversations,"
                         " conversation_days")  # fmt: skip
            assert migrate(conn)["applied"] == ["0002_reporting_views"]


# --- the same numbers through the conversations API ---------------------------------------


@pytest.fixture
def api(make_client: Callable[[str], FlaskClient], api_env: dict[str, str]) -> ApiClient:
    return ApiClient(make_client("conversations-api"), OpenApi(openapi_document()))


def test_the_reports_endpoint_serves_the_same_numbers(loaded: str, api: ApiClient) -> None:
    admin = token("acme", "admin")
    answer = api.get(REPORTS, admin, **{"from": D1.isoformat(), "to": D2.isoformat()})

    assert answer.status == 200, answer.body
    assert answer.body["days"] == daily_report(get_pool(), "acme", D1, D2)
    want = expected("acme")
    assert answer.body["days"] == [want[key] for key in sorted(want)]
    narrowed = api.get(
        REPORTS, admin, **{"from": D2.isoformat(), "to": D2.isoformat(), "channel": "telegram"}
    )
    assert narrowed.body["days"] == [want[(D2.isoformat(), "telegram")]]
    # The tenant is the token's: globex sees its own numbers only.
    theirs = api.get(
        REPORTS, token("globex", "admin"), **{"from": D1.isoformat(), "to": D2.isoformat()}
    )
    assert [r["channel"] for r in theirs.body["days"]] == ["whatsapp"]
    assert theirs.body["days"] == daily_report(get_pool(), "globex", D1, D2)


def test_the_reports_endpoint_is_for_admins_with_a_valid_range(loaded: str, api: ApiClient) -> None:
    days = {"from": D1.isoformat(), "to": D2.isoformat()}
    assert api.get(REPORTS, token("acme", "agent"), **days).error == (403, "forbidden")
    bad = api.get(REPORTS, token("acme", "admin"), **{"from": "yesterday", "to": D2.isoformat()})
    assert bad.status == 400 and bad.parameter == "from"
    missing = api.get(REPORTS, token("acme", "admin"), **{"from": D1.isoformat()})
    assert missing.status == 400 and missing.parameter == "to"
    backwards = api.get(
        REPORTS, token("acme", "admin"), **{"from": D2.isoformat(), "to": D1.isoformat()}
    )
    assert backwards.status == 400 and backwards.parameter == "to"


def test_the_business_dashboards_sql_panels_run_on_the_views(loaded: str) -> None:
    import psycopg

    from tests.unit.monitoring import dashboards_support

    board = dashboards_support.load_dashboard("business.json")
    sql_panels = [
        panel
        for panel, _ in dashboards_support.iter_panels(board)
        if (panel.get("datasource") or {}).get("uid") == "analytics" and panel.get("targets")
    ]
    assert len(sql_panels) == 4
    channels = ", ".join(
        f"'{c}'" for c in ("whatsapp", "slack", "telegram", "webchat", "messenger")
    )
    with psycopg.connect(loaded) as conn:
        for panel in sql_panels:
            sql = panel["targets"][0]["rawSql"]
            sql = sql.replace("$__timeFilter(day)", f"day BETWEEN '{D1}' AND '{D2}'")
            sql = sql.replace("${tenant:sqlstring}", "'acme'").replace(
                "${channel:sqlstring}", channels
            )
            rows = conn.execute(sql).fetchall()  # as Grafana runs it, macros expanded
            assert rows, panel["title"]
