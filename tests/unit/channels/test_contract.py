"""Every registered channel declares every part of the channel contract, usably."""

from __future__ import annotations

import dataclasses
import json
import subprocess
import sys
from pathlib import Path

import pytest

from shared.channels import registry
from shared.channels.contract import ChannelSpec
from shared.models import Channel
from shared.tenants import TenantConfigError, TenantDirectory, example

ROOT = Path(__file__).resolve().parents[3]


def contract_problems(spec: ChannelSpec) -> list[str]:
    """What a channel's declaration lacks or gets wrong (empty: it keeps the contract)."""
    problems = []
    if spec.name not in registry.NAMES:
        problems.append(f"{spec.name}: not in the registry")
    main = ROOT / "functions" / spec.function / "main.py"
    if not main.is_file() or f'webhook("{spec.name}")' not in main.read_text(encoding="utf-8"):
        problems.append(f"{spec.name}: {main} does not serve webhook({spec.name!r})")
    if not spec.account.key or spec.account.key not in spec.account.example:
        problems.append(f"{spec.name}: the account key is not in its example entry")
    if not callable(spec.handle) or spec.retry_window_s <= 0:
        problems.append(f"{spec.name}: a handler and a positive retry window are required")
    outbound = spec.outbound
    by_api = (outbound.render, outbound.interpret, outbound.api_base)
    if outbound.deliver is None and not all(by_api):
        problems.append(f"{spec.name}: outbound needs render, interpret and api_base, or deliver")
    if outbound.deliver is not None and any(by_api):
        problems.append(f"{spec.name}: outbound is either an API or a delivery, not both")
    if (spec.sandbox is None) != (outbound.deliver is not None):
        problems.append(f"{spec.name}: a channel with an API has a sandbox stand-in (only those)")
    if not callable(spec.dev.make) or not callable(spec.dev.endpoints):
        problems.append(f"{spec.name}: no dev account")
    return problems


@pytest.mark.parametrize("name", registry.NAMES)
def test_channel_keeps_the_contract(name: str) -> None:
    spec = registry.spec(name)
    assert spec.name == name
    assert contract_problems(spec) == []


@pytest.mark.parametrize("name", registry.NAMES)
def test_example_and_dev_accounts_load_as_the_directory_loads_them(name: str) -> None:
    spec = registry.spec(name)
    account = spec.account.load("acme", spec.account.example)
    assert (account.tenant_id, account.account_id) == (
        "acme",
        spec.account.example[spec.account.key],
    )
    dev = spec.dev.make()
    assert spec.account.load("dev", dev).account_id == dev[spec.account.key]
    assert isinstance(spec.dev.endpoints(dev, "http://127.0.0.1:9"), dict)


@pytest.mark.parametrize("name", registry.NAMES)
def test_a_channel_imports_no_other_channel(name: str) -> None:
    """A channel stands alone: its webhook function loads no other channel's code, which would
    be a hidden coupling and a cold start paid for nothing (a fresh interpreter looks)."""
    probe = (
        f"import json, sys; import shared.channels.{name}; "
        "print(json.dumps(sorted(m for m in sys.modules if m.startswith('shared.channels.'))))"
    )
    loaded = json.loads(
        subprocess.run(
            [sys.executable, "-c", probe], cwd=ROOT, capture_output=True, text=True, check=True
        ).stdout
    )
    others = {m.split(".")[2] for m in loaded} & set(registry.NAMES) - {name}
    assert others == set(), f"shared.channels.{name} imports {sorted(others)}"


def test_the_documented_example_is_a_valid_directory() -> None:
    directory = TenantDirectory.from_dict(example())
    assert all(len(directory.of(name)) == 1 for name in registry.NAMES)


def test_a_declaration_missing_a_part_breaks_the_contract() -> None:
    spec = registry.spec("whatsapp")
    no_reader = dataclasses.replace(
        spec, outbound=dataclasses.replace(spec.outbound, interpret=None)
    )
    assert contract_problems(no_reader) == [
        "whatsapp: outbound needs render, interpret and api_base, or deliver"
    ]
    no_sandbox = dataclasses.replace(spec, sandbox=None)
    assert "sandbox" in contract_problems(no_sandbox)[0]


def test_an_unknown_channel_is_an_error_never_a_default() -> None:
    with pytest.raises(registry.UnknownChannel):
        registry.spec("sms")
    with pytest.raises(ValueError, match="unknown channel 'sms'"):
        Channel("sms")
    with pytest.raises(TenantConfigError, match="unknown channel"):
        TenantDirectory.from_dict({"tenants": [{"id": "acme", "sms": []}]})
    with pytest.raises(registry.UnknownChannel):
        TenantDirectory.from_dict({"tenants": []}).of("sms")
