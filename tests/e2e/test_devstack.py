"""``python -m shared.devstack`` end to end: up, healthy, the printed curl lands one event on
the inbound topic, the watcher shows it, the bot's reply reaches the sandbox and is printed,
and Ctrl-C stops every process it started."""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import time
import urllib.request
from pathlib import Path

import pytest

from shared.channels.whatsapp.dev import PHONE_NUMBER_ID, SAMPLE_WA_ID
from shared.devstack import devtenant, functions
from shared.devstack.functions import FunctionError
from shared.devstack.servers import free_port
from shared.events import MESSAGE_RECEIVED
from shared.kafka import read_topic
from shared.settings import Settings
from shared.tenants import TenantDirectory
from tests.e2e.bot_support import call_text
from tests.e2e.conftest import RunningStack

pytestmark = pytest.mark.e2e


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return True


def test_stack_runs_the_printed_curl_end_to_end(running_stack: RunningStack) -> None:
    endpoints = running_stack.wait_for_endpoints()

    assert "whatsapp-webhook" in endpoints["functions"]
    for name, function in endpoints["functions"].items():
        with urllib.request.urlopen(function["health"], timeout=5) as response:
            assert response.status == 200, name

    curl = endpoints["samples"]["whatsapp_curl"]
    assert curl in running_stack.output  # the command printed is the command tested
    sent = subprocess.run(curl, shell=True, capture_output=True, text=True, timeout=15)
    assert sent.returncode == 0, sent.stdout + sent.stderr
    assert json.loads(sent.stdout) == {"status": "ok", "published": 1, "duplicates": 0}

    brokers = endpoints["kafka"]["brokers"].split(",")
    inbound = endpoints["topics"]["inbound"]
    records = read_topic(brokers, inbound, min_records=2, timeout_s=3)
    assert len(records) == 1
    [record] = records
    key = f"dev:whatsapp:{endpoints['tenant']['whatsapp']['phone_number_id']}/{SAMPLE_WA_ID}"
    assert record.key == key.encode()
    assert record.headers["ce_type"] == MESSAGE_RECEIVED.encode()
    running_stack.wait_for_line("messages.inbound", MESSAGE_RECEIVED, key)

    # The bot's reply: printed by the stack and recorded by the sandbox (GET /calls).
    reply = running_stack.wait_for_line(f"reply → whatsapp {SAMPLE_WA_ID}: ", timeout_s=20)
    assert f"curl -sS {endpoints['sandbox']['calls_url']}" in running_stack.output
    with urllib.request.urlopen(endpoints["sandbox"]["calls_url"], timeout=5) as response:
        [call] = json.loads(response.read())
    assert (call["channel"], call["json"]["to"], call["status"]) == ("whatsapp", SAMPLE_WA_ID, 200)
    assert f": {call_text(call)} [Opening hours | " in reply  # the text, then its buttons

    running_stack.proc.send_signal(signal.SIGINT)
    assert running_stack.proc.wait(timeout=20) == 0, running_stack.output
    pids = [f["pid"] for f in endpoints["functions"].values()]
    servers = ("kafka", "mongodb", "redis", "mcp_engine", "security_hub", "sandbox", "dispatcher")
    pids += [endpoints[s]["pid"] for s in servers if "pid" in endpoints[s]]
    assert len(pids) >= len(endpoints["functions"]) + 6  # all but Redis are embedded here
    deadline = time.monotonic() + 5
    while any(_alive(pid) for pid in pids) and time.monotonic() < deadline:
        time.sleep(0.1)
    assert [pid for pid in pids if _alive(pid)] == []
    running_stack.wait_for_line("stack stopped", timeout_s=5)


def test_a_function_that_cannot_start_is_named_with_its_log(tmp_path: Path) -> None:
    source = tmp_path / "functions" / "broken-webhook" / "main.py"
    source.parent.mkdir(parents=True)
    source.write_text("raise RuntimeError('missing setting FOO')\n")
    process = functions.start("broken-webhook", free_port(), tmp_path, dict(os.environ), tmp_path)

    with pytest.raises(FunctionError) as failure:
        functions.wait_healthy([process], timeout_s=20)

    message = str(failure.value)
    assert "function broken-webhook exited with code" in message
    assert str(tmp_path / "broken-webhook.log") in message
    assert "missing setting FOO" in message  # the end of the log, shown right away


def test_the_dev_tenant_keeps_its_secrets_and_follows_the_webchat_port(tmp_path: Path) -> None:
    path = tmp_path / "tenants.json"
    first = devtenant.write_tenants_file(path, {"webchat": "http://127.0.0.1:8084"})
    second = devtenant.write_tenants_file(path, {"webchat": "http://127.0.0.1:9000"})

    assert second["whatsapp"] == first["whatsapp"]
    assert second["telegram"][0]["secret_token"] == first["telegram"][0]["secret_token"]
    assert re.fullmatch(r"[A-Za-z0-9_-]+", second["telegram"][0]["secret_token"])
    assert second["webchat"][0]["allowed_origins"] == [
        "http://127.0.0.1:9000",
        "http://localhost:9000",
    ]
    directory = TenantDirectory.from_settings(Settings(tenants_file=str(path)))
    assert directory.of("whatsapp")[PHONE_NUMBER_ID].tenant_id == "dev"
