from __future__ import annotations

import dataclasses
from pathlib import Path

import pytest

from shared.settings import Settings, markdown_table, specs


def test_defaults_and_topic_names() -> None:
    settings = Settings.from_env({})
    assert settings.kafka_brokers == ("127.0.0.1:9092",)
    assert settings.max_body_bytes == 1024 * 1024
    assert settings.inbound_topic == "chatbot.platform.messages.inbound"
    assert settings.outbound_topic == "chatbot.platform.messages.outbound"
    assert settings.status_topic == "chatbot.platform.messages.status"
    assert settings.audit_topic == "chatbot.platform.audit"


def test_read_from_environment() -> None:
    settings = Settings.from_env(
        {
            "KAFKA_BROKERS": "a:1, b:2,",
            "TOPIC_PREFIX": "acme",
            "MAX_BODY_BYTES": "2048",
            "K_SERVICE": "slack-webhook",
            "LOG_LEVEL": "debug",
        }
    )
    assert settings.kafka_brokers == ("a:1", "b:2")
    assert settings.inbound_topic == "acme.messages.inbound"
    assert settings.max_body_bytes == 2048
    assert settings.service_name == "slack-webhook"
    assert settings.log_level == "DEBUG"


def test_settings_are_frozen_and_reject_bad_numbers() -> None:
    settings = Settings()
    with pytest.raises(dataclasses.FrozenInstanceError):
        settings.topic_prefix = "x"  # type: ignore[misc]
    with pytest.raises(ValueError, match="MAX_BODY_BYTES"):
        Settings.from_env({"MAX_BODY_BYTES": "lots"})


def test_every_setting_is_named_once_and_read_from_its_variable() -> None:
    env_names = [spec.env for spec in specs()]
    assert len(set(env_names)) == len(env_names)
    for spec in specs():
        if spec.kind in ("str",) and spec.field != "log_level":
            value = Settings.from_env({spec.env: "x/"})
            expected = "x" if spec.normalise else "x/"
            assert getattr(value, spec.field) == expected, spec.env
        assert getattr(Settings(), spec.field) == spec.default


def test_the_readme_table_is_the_declarations() -> None:
    readme = (Path(__file__).resolve().parents[2] / "README.md").read_text(encoding="utf-8")
    assert markdown_table() in readme, "README settings table is stale: python -m shared.settings"


def test_k_service_wins_over_service_name() -> None:
    both = {"K_SERVICE": "webchat", "SERVICE_NAME": "other"}
    assert Settings.from_env(both).service_name == "webchat"
    assert Settings.from_env({"SERVICE_NAME": "other"}).service_name == "other"
    assert Settings.from_env({"FALLBACK_ENABLED": "off"}).fallback_enabled is False
    with pytest.raises(ValueError, match="FALLBACK_ENABLED"):
        Settings.from_env({"FALLBACK_ENABLED": "maybe"})


def test_secrets_and_credentials_never_show_in_a_settings_repr() -> None:
    settings = Settings(
        mongodb_uri="mongodb://chat:mongo-pw@mongodb-0:27017/?replicaSet=rs0",
        redis_url="redis://:redis-pw@redis:6379/0",
        api_jwt_secret="api-secret-" + "x" * 32,
        channel_api_bases={"whatsapp": "https://user:base-pw@sandbox.example"},
    )
    shown = repr(settings)
    for secret in ("mongo-pw", "redis-pw", "api-secret-", "base-pw"):
        assert secret not in shown and secret not in str(settings)
    assert "mongodb_uri='***'" in shown and "kafka_brokers=" in shown
