from __future__ import annotations

import dataclasses

import pytest

from shared.settings import Settings


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
