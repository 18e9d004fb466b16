"""Fixtures every test layer shares: the dev tenant directory and saved platform payloads."""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, settings
from hypothesis.database import DirectoryBasedExampleDatabase

from shared.tenants import TenantDirectory

DATA = Path(__file__).parent / "data"

# Property tests (fuzzing; docs/reliability.md). "ci", the default, keeps `make test` fast and
# deterministic: the same examples every run (derandomize), no example database. "reliability"
# (`make test-reliability`) runs many more cases per test. HYPOTHESIS_PROFILE chooses; "dev"
# keeps failing examples under .hypothesis/ (git-ignored) to replay them while fixing.
FUZZ_EXAMPLES = {"ci": 200, "reliability": 1500, "dev": 500}
settings.register_profile(
    "ci",
    max_examples=FUZZ_EXAMPLES["ci"],
    derandomize=True,
    database=None,
    deadline=None,
    print_blob=True,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)
settings.register_profile(
    "reliability", settings.get_profile("ci"), max_examples=FUZZ_EXAMPLES["reliability"]
)
settings.register_profile(
    "dev",
    settings.get_profile("ci"),
    max_examples=FUZZ_EXAMPLES["dev"],
    derandomize=False,
    database=DirectoryBasedExampleDatabase(str(Path(__file__).parents[1] / ".hypothesis")),
)
settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "ci"))

# One tenant with an account on every channel; the ids match the saved payloads in tests/data.
TENANTS: dict[str, Any] = {
    "tenants": [
        {
            "id": "acme",
            "whatsapp": [
                {
                    "phone_number_id": "106540352242922",
                    "app_secret": "wa-app-secret-acme",
                    "verify_token": "wa-verify-acme-0123",
                    "access_token": "wa-access-acme",
                }
            ],
            "slack": [
                {
                    "team_id": "T0001ACME",
                    "signing_secret": "slack-signing-acme",
                    "bot_token": "xoxb-acme",
                    "bot_user_id": "U0BOTACME",
                }
            ],
            "telegram": [
                {
                    "bot_id": "7000000001",
                    "secret_token": "tg-secret-acme-0123",
                    "bot_token": "tg-acme",
                }
            ],
            "webchat": [
                {
                    "site_key": "site-acme",
                    "token_secret": "webchat-token-secret-acme-0123456789",
                    "allowed_origins": ["https://acme.example"],
                }
            ],
        },
        {
            "id": "globex",
            "whatsapp": [
                {
                    "phone_number_id": "200000000000002",
                    "app_secret": "wa-app-secret-globex",
                    "verify_token": "wa-verify-globex",
                    "access_token": "wa-access-globex",
                }
            ],
            "slack": [
                {
                    "team_id": "T0002GLBX",
                    "signing_secret": "slack-signing-globex",
                    "bot_token": "xoxb-globex",
                }
            ],
            "telegram": [
                {
                    "bot_id": "7000000002",
                    "secret_token": "tg-secret-globex",
                    "bot_token": "tg-globex",
                }
            ],
            "webchat": [
                {"site_key": "site-globex", "token_secret": "webchat-token-secret-globex-0123"}
            ],
        },
    ]
}


def pytest_configure(config: pytest.Config) -> None:
    # Every log line of the run is scanned for secrets and message bodies (tests/logscan.py).
    from tests.logscan import LogScanPlugin

    config.pluginmanager.register(LogScanPlugin(), "logscan")


def payload_bytes(channel: str, name: str) -> bytes:
    return (DATA / channel / name).read_bytes()


def payload(channel: str, name: str) -> dict[str, Any]:
    document: dict[str, Any] = json.loads(payload_bytes(channel, name))
    return document


@pytest.fixture
def tenants() -> TenantDirectory:
    return TenantDirectory.from_dict(TENANTS)
