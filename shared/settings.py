"""Settings, read from the environment once into a frozen object.

No other module reads ``os.environ``; they take a :class:`Settings` (usually via
:func:`get_settings`) so tests can build one by hand.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass
from functools import lru_cache

MIB = 1024 * 1024


@dataclass(frozen=True)
class Settings:
    service_name: str = "chat-service"
    topic_prefix: str = "chatbot.platform"
    kafka_brokers: tuple[str, ...] = ("127.0.0.1:9092",)
    # Upper bound on how long an ingress request waits for Kafka's acknowledgement; under
    # Slack's 3-second ack deadline, so a slow broker is a 503 (retried), not a Slack timeout.
    kafka_ack_timeout_s: float = 2.5
    redis_url: str = "redis://127.0.0.1:6379/0"
    mongodb_uri: str = "mongodb://127.0.0.1:27017/"
    mongodb_database: str = "chat_service"
    # Tenant directory: a JSON file (a mounted Kubernetes Secret in production) or inline JSON.
    tenants_file: str = ""
    tenants_json: str = ""
    max_body_bytes: int = MIB
    slack_max_clock_skew_s: int = 300
    webchat_token_ttl_s: int = 1800
    log_level: str = "INFO"
    # gRPC services (host:port; a grpcs:// prefix or *_TLS=true turns TLS on).
    mcp_engine_url: str = "mcp-engine-service:50051"
    security_hub_url: str = "security-hub-service:50052"
    grpc_deadline_s: float = 2.0
    # The bot's fallback when the engine is unreachable: rule-based replies, or 503 → retry.
    fallback_enabled: bool = True
    fallback_rules_file: str = ""
    # Engine circuit breaker (state in Redis): open after N failures in 30 s, for M seconds.
    engine_breaker_failures: int = 5
    engine_breaker_open_s: int = 15
    # Rate limits per minute (0 = unlimited).
    tenant_rate_limit_per_min: int = 600
    user_rate_limit_per_min: int = 20
    # Web chat sessions are issued to anonymous visitors: limit them per site and per client.
    webchat_sessions_per_site_per_min: int = 600
    webchat_sessions_per_client_per_min: int = 10
    # Channel API base URLs (the local stack and the tests point these at the sandbox).
    whatsapp_api_base: str = "https://graph.facebook.com/v21.0"
    slack_api_base: str = "https://slack.com/api"
    telegram_api_base: str = "https://api.telegram.org"
    channel_api_timeout_s: float = 5.0
    audit_retention_days: int = 90

    @property
    def inbound_topic(self) -> str:
        return f"{self.topic_prefix}.messages.inbound"

    @property
    def outbound_topic(self) -> str:
        return f"{self.topic_prefix}.messages.outbound"

    @property
    def status_topic(self) -> str:
        return f"{self.topic_prefix}.messages.status"

    @property
    def audit_topic(self) -> str:
        return f"{self.topic_prefix}.audit"

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None) -> Settings:
        env = os.environ if env is None else env
        default = cls()

        def text(name: str, fallback: str) -> str:
            value = env.get(name, "").strip()
            return value or fallback

        def number(name: str, fallback: float) -> float:
            raw = env.get(name, "").strip()
            if not raw:
                return fallback
            try:
                return float(raw)
            except ValueError as exc:
                raise ValueError(f"setting {name} must be a number, got {raw!r}") from exc

        def flag(name: str, fallback: bool) -> bool:
            raw = env.get(name, "").strip().lower()
            if not raw:
                return fallback
            if raw in ("1", "true", "yes", "on"):
                return True
            if raw in ("0", "false", "no", "off"):
                return False
            raise ValueError(f"setting {name} must be true or false, got {raw!r}")

        brokers = text("KAFKA_BROKERS", ",".join(default.kafka_brokers))
        return cls(
            service_name=text("K_SERVICE", text("SERVICE_NAME", default.service_name)),
            topic_prefix=text("TOPIC_PREFIX", default.topic_prefix),
            kafka_brokers=tuple(b.strip() for b in brokers.split(",") if b.strip()),
            kafka_ack_timeout_s=number("KAFKA_ACK_TIMEOUT_S", default.kafka_ack_timeout_s),
            redis_url=text("REDIS_URL", default.redis_url),
            mongodb_uri=text("MONGODB_URI", default.mongodb_uri),
            mongodb_database=text("MONGODB_DATABASE", default.mongodb_database),
            tenants_file=text("TENANTS_FILE", ""),
            tenants_json=text("TENANTS_JSON", ""),
            max_body_bytes=int(number("MAX_BODY_BYTES", default.max_body_bytes)),
            slack_max_clock_skew_s=int(
                number("SLACK_MAX_CLOCK_SKEW_S", default.slack_max_clock_skew_s)
            ),
            webchat_token_ttl_s=int(number("WEBCHAT_TOKEN_TTL_S", default.webchat_token_ttl_s)),
            log_level=text("LOG_LEVEL", default.log_level).upper(),
            mcp_engine_url=text("MCP_ENGINE_URL", default.mcp_engine_url),
            security_hub_url=text("SECURITY_HUB_URL", default.security_hub_url),
            grpc_deadline_s=number("GRPC_DEADLINE_S", default.grpc_deadline_s),
            fallback_enabled=flag("FALLBACK_ENABLED", default.fallback_enabled),
            fallback_rules_file=text("FALLBACK_RULES_FILE", ""),
            engine_breaker_failures=int(
                number("ENGINE_BREAKER_FAILURES", default.engine_breaker_failures)
            ),
            engine_breaker_open_s=int(
                number("ENGINE_BREAKER_OPEN_S", default.engine_breaker_open_s)
            ),
            tenant_rate_limit_per_min=int(
                number("TENANT_RATE_LIMIT_PER_MIN", default.tenant_rate_limit_per_min)
            ),
            user_rate_limit_per_min=int(
                number("USER_RATE_LIMIT_PER_MIN", default.user_rate_limit_per_min)
            ),
            webchat_sessions_per_site_per_min=int(
                number(
                    "WEBCHAT_SESSIONS_PER_SITE_PER_MIN", default.webchat_sessions_per_site_per_min
                )
            ),
            webchat_sessions_per_client_per_min=int(
                number(
                    "WEBCHAT_SESSIONS_PER_CLIENT_PER_MIN",
                    default.webchat_sessions_per_client_per_min,
                )
            ),
            whatsapp_api_base=text("WHATSAPP_API_BASE", default.whatsapp_api_base).rstrip("/"),
            slack_api_base=text("SLACK_API_BASE", default.slack_api_base).rstrip("/"),
            telegram_api_base=text("TELEGRAM_API_BASE", default.telegram_api_base).rstrip("/"),
            channel_api_timeout_s=number("CHANNEL_API_TIMEOUT_S", default.channel_api_timeout_s),
            audit_retention_days=int(number("AUDIT_RETENTION_DAYS", default.audit_retention_days)),
        )


@lru_cache(maxsize=1)
def get_settings() -> Settings:
    """The process-wide settings, read once."""
    return Settings.from_env()
