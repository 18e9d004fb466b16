from __future__ import annotations

import copy

import pytest

from shared.settings import Settings
from shared.tenants import Secret, TenantConfigError, TenantDirectory
from tests.conftest import TENANTS


def test_accounts_resolve_to_their_tenant(tenants: TenantDirectory) -> None:
    assert tenants.of("whatsapp")["106540352242922"].tenant_id == "acme"
    assert tenants.of("whatsapp")["200000000000002"].tenant_id == "globex"
    assert tenants.of("slack")["T0001ACME"].bot_user_id == "U0BOTACME"
    assert tenants.of("telegram")["7000000002"].tenant_id == "globex"
    assert tenants.of("webchat")["site-acme"].allowed_origins == ("https://acme.example",)


def test_secrets_never_show_in_repr(tenants: TenantDirectory) -> None:
    account = tenants.of("whatsapp")["106540352242922"]
    assert "wa-app-secret-acme" not in repr(account)
    assert "wa-app-secret-acme" not in str(account.app_secret)
    assert account.app_secret.reveal() == "wa-app-secret-acme"
    assert Secret("a") == Secret("a") and Secret("a") != Secret("b")


@pytest.mark.parametrize(
    ("mutate", "message"),
    [
        (
            lambda d: d["tenants"][1]["whatsapp"][0].update(phone_number_id="106540352242922"),
            "twice",
        ),
        (lambda d: d["tenants"][0]["slack"][0].pop("signing_secret"), "signing_secret"),
        (
            lambda d: d["tenants"][0]["telegram"][0].update(secret_token="has space 0123456789"),
            "invalid",
        ),
        (lambda d: d["tenants"][0]["telegram"][0].update(secret_token="short"), "16\\+ characters"),
        (lambda d: d["tenants"][0]["whatsapp"][0].update(app_secret="s"), "app_secret needs 16"),
        (lambda d: d["tenants"][0]["whatsapp"][0].pop("access_token"), "access_token is required"),
        (lambda d: d["tenants"][0]["slack"][0].update(bot_token=None), "bot_token is required"),
        (lambda d: d["tenants"][0].pop("id"), "'id' is required"),
        (lambda d: d["tenants"][0]["webchat"][0].update(token_secret="short"), "32\\+ bytes"),
    ],
)
def test_bad_configuration_fails_loudly(mutate: object, message: str) -> None:
    document = copy.deepcopy(TENANTS)
    mutate(document)  # type: ignore[operator]
    with pytest.raises(TenantConfigError, match=message):
        TenantDirectory.from_dict(document)


def test_loaded_from_file_or_inline_json(tmp_path: object) -> None:
    import json
    from pathlib import Path

    path = Path(str(tmp_path)) / "tenants.json"
    path.write_text(json.dumps(TENANTS))
    from_file = TenantDirectory.from_settings(Settings(tenants_file=str(path)))
    inline = TenantDirectory.from_settings(Settings(tenants_json=json.dumps(TENANTS)))
    assert from_file == inline
    assert TenantDirectory.from_settings(Settings()).of("whatsapp") == {}
    with pytest.raises(TenantConfigError, match="not valid JSON"):
        TenantDirectory.from_settings(Settings(tenants_json="{"))
