"""Settings, read from the environment once into a frozen object.

No other module reads ``os.environ``; they take a :class:`Settings` (usually via
:func:`get_settings`) so tests can build one by hand.

Each setting is named once: a field declared with :func:`setting` carries its environment
variable, its default, whether it is secret and what it means. :meth:`Settings.from_env` reads
the fields, the README's table is printed from them (``python -m shared.settings``) and the
deployment checks compare the Knative Services' environment with them.
"""

from __future__ import annotations

import dataclasses
import os
from collections.abc import Callable, Iterator, Mapping
from functools import lru_cache
from types import MappingProxyType
from typing import Any, get_type_hints

from shared.caching import per_process
from shared.dataclass import dataclass

MIB = 1024 * 1024


def setting(
    default: Any,
    env: str,
    meaning: str,
    *,
    group: str,
    also: tuple[str, ...] = (),
    secret: bool = False,
    optional: bool = False,
    normalise: Callable[[Any], Any] | None = None,
) -> Any:
    """A settings field. ``env`` (then ``also``) is read. ``group`` names what the setting
    configures (``kafka``, ``mongodb``, …): a function that uses the group needs the setting set
    in its deployment, unless it is ``optional``. ``secret`` values come from a Secret."""
    metadata = {
        "env": (env, *also),
        "meaning": meaning,
        "group": group,
        "secret": secret,
        "optional": optional,
        "normalise": normalise,
    }
    if isinstance(default, Mapping):  # unhashable: each instance gets its own read-only copy
        frozen = dict(default)
        return dataclasses.field(
            default_factory=lambda: MappingProxyType(frozen), metadata=metadata
        )
    return dataclasses.field(default=default, metadata=metadata)


def _api_bases(pairs: Mapping[str, str]) -> Mapping[str, str]:
    from shared.channels.registry import NAMES  # import-light: the table of channel names

    unknown = sorted(set(pairs) - set(NAMES))
    if unknown:
        raise ValueError(f"setting CHANNEL_API_BASES names unknown channel(s) {unknown}")
    return MappingProxyType({name: url.rstrip("/") for name, url in pairs.items()})


def _without_credentials(url: str) -> str:
    """``scheme://user:password@host…`` as ``scheme://***@host…``; anything else as it is."""
    scheme, separator, rest = url.partition("://")
    authority, slash, path = rest.partition("/")
    _, at, host = authority.rpartition("@")
    if not separator or not at:
        return url
    return f"{scheme}://***@{host}{slash}{path}"


@dataclass(frozen=True, repr=False)
class Settings:
    # Knative sets K_SERVICE to the Service's name (it is reserved: a manifest cannot set it).
    service_name: str = setting(
        "chat-service",
        "K_SERVICE",
        "the function's name in logs (Knative sets `K_SERVICE`; else `SERVICE_NAME`)",
        also=("SERVICE_NAME",),
        group="core",
        optional=True,
    )
    topic_prefix: str = setting(
        "chatbot.platform",
        "TOPIC_PREFIX",
        "topic names are `<prefix>.messages.inbound` etc. (the KafkaSources name the default ones)",
        group="kafka",
    )
    kafka_brokers: tuple[str, ...] = setting(
        ("127.0.0.1:9092",), "KAFKA_BROKERS", "bootstrap servers, comma-separated", group="kafka"
    )
    # Upper bound on how long an ingress request waits for Kafka's acknowledgement; under
    # Slack's 3-second ack deadline, so a slow broker is a 503 (retried), not a Slack timeout.
    kafka_ack_timeout_s: float = setting(
        2.5,
        "KAFKA_ACK_TIMEOUT_S",
        "longest a webhook waits for Kafka's acknowledgement before answering 503 "
        "(under Slack's 3 s)",
        group="kafka",
    )
    redis_url: str = setting(
        "redis://127.0.0.1:6379/0",
        "REDIS_URL",
        "dedupe marks, rate limits, sessions, breaker state, web chat pub/sub (a cache: if it "
        "is down, messages still flow)",
        secret=True,
        group="redis",
    )
    mongodb_uri: str = setting(
        "mongodb://127.0.0.1:27017/",
        "MONGODB_URI",
        "conversations, messages, audit",
        secret=True,
        group="mongodb",
    )
    mongodb_database: str = setting(
        "chat_service", "MONGODB_DATABASE", "the database's name", group="mongodb"
    )
    # Tenant directory: a JSON file (a mounted Kubernetes Secret in production) or inline JSON.
    tenants_file: str = setting(
        "",
        "TENANTS_FILE",
        "the tenant directory as a JSON file (a mounted Secret): channel accounts → tenant and "
        "secrets (format in `shared/tenants.py`)",
        group="tenants",
    )
    tenants_json: str = setting(
        "",
        "TENANTS_JSON",
        "the tenant directory inline, instead of a file",
        secret=True,
        group="tenants",
        optional=True,
    )
    max_body_bytes: int = setting(
        MIB, "MAX_BODY_BYTES", "request body limit (413 above it)", group="webhook"
    )
    slack_max_clock_skew_s: int = setting(
        300, "SLACK_MAX_CLOCK_SKEW_S", "Slack's replay window", group="webhook"
    )
    webchat_token_ttl_s: int = setting(
        1800, "WEBCHAT_TOKEN_TTL_S", "visitor token lifetime", group="webhook"
    )
    webchat_session_max_age_s: int = setting(
        86400,
        "WEBCHAT_SESSION_MAX_AGE_S",
        "longest a visitor's session may be resumed (then the widget starts a new one)",
        group="webhook",
    )
    log_level: str = setting(
        "INFO", "LOG_LEVEL", "DEBUG, INFO, WARNING or ERROR", normalise=str.upper, group="core"
    )
    # gRPC services (host:port; a grpcs:// prefix turns TLS on).
    mcp_engine_url: str = setting(
        "mcp-engine-service:50051",
        "MCP_ENGINE_URL",
        "the MCP engine (gRPC; `grpcs://` for TLS)",
        group="bot",
    )
    security_hub_url: str = setting(
        "security-hub-service:50052",
        "SECURITY_HUB_URL",
        "the Security Hub (gRPC; `grpcs://` for TLS)",
        group="bot",
    )
    grpc_deadline_s: float = setting(
        2.0, "GRPC_DEADLINE_S", "per-call deadline (UNAVAILABLE is retried within it)", group="bot"
    )
    # The bot's fallback when the engine is unreachable: rule-based replies, or 503 → retry.
    fallback_enabled: bool = setting(
        True,
        "FALLBACK_ENABLED",
        "rule-based replies while the engine is down (off: 503 → retry → dead-letter)",
        group="bot",
    )
    fallback_rules_file: str = setting(
        "",
        "FALLBACK_RULES_FILE",
        "the fallback rules (default: packaged `fallback_rules.json`)",
        group="bot",
        optional=True,
    )
    # Engine circuit breaker (state in Redis): open after N failures in 30 s, for M seconds.
    engine_breaker_failures: int = setting(
        5,
        "ENGINE_BREAKER_FAILURES",
        "engine failures in 30 s that open the circuit breaker",
        group="bot",
    )
    engine_breaker_open_s: int = setting(
        15, "ENGINE_BREAKER_OPEN_S", "how long the breaker stays open (state in Redis)", group="bot"
    )
    # Rate limits per minute (0 = unlimited).
    tenant_rate_limit_per_min: int = setting(
        600,
        "TENANT_RATE_LIMIT_PER_MIN",
        "bot turns per tenant per minute (0 = unlimited)",
        group="bot",
    )
    user_rate_limit_per_min: int = setting(
        20,
        "USER_RATE_LIMIT_PER_MIN",
        "bot turns per end user per minute; their further messages are stored, not answered "
        "(0 = unlimited)",
        group="bot",
    )
    user_burst_per_10s: int = setting(
        5,
        "USER_BURST_PER_10S",
        "bot turns per end user in one 10-second window, within their per-minute budget: a "
        "flood is answered a few at a time, not queued in front of other users (0 = no "
        "burst limit)",
        group="bot",
    )
    # Web chat's visitors are anonymous: their turns count against a tenant budget of their
    # own, so a flood of them cannot use up what the tenant's other channels' users get.
    webchat_tenant_rate_limit_per_min: int = setting(
        300,
        "WEBCHAT_TENANT_RATE_LIMIT_PER_MIN",
        "web chat bot turns per tenant per minute, a budget apart from "
        "`TENANT_RATE_LIMIT_PER_MIN` (0 = unlimited)",
        group="bot",
    )
    # Web chat sessions are issued to anonymous visitors: limit them per site and per client.
    webchat_sessions_per_site_per_min: int = setting(
        600,
        "WEBCHAT_SESSIONS_PER_SITE_PER_MIN",
        "new visitor sessions per site (429 above)",
        group="webhook",
    )
    webchat_sessions_per_client_per_min: int = setting(
        10,
        "WEBCHAT_SESSIONS_PER_CLIENT_PER_MIN",
        "new visitor sessions per client address (429 above)",
        group="webhook",
    )
    webchat_messages_per_conversation_per_min: int = setting(
        30,
        "WEBCHAT_MESSAGES_PER_CONVERSATION_PER_MIN",
        "visitor messages per conversation (429 above; 0 = unlimited)",
        group="webhook",
    )
    webchat_messages_per_client_per_min: int = setting(
        120,
        "WEBCHAT_MESSAGES_PER_CLIENT_PER_MIN",
        "visitor messages per site and client address, all conversations (429 above; "
        "0 = unlimited)",
        group="webhook",
    )
    # A live stream holds one gunicorn thread: the heartbeat finds a gone client (and keeps
    # proxies from closing an idle connection); the maximum hands the thread back regularly.
    webchat_stream_heartbeat_s: float = setting(
        15.0,
        "WEBCHAT_STREAM_HEARTBEAT_S",
        "seconds between the live stream's heartbeat comments",
        group="webhook",
    )
    webchat_stream_max_s: float = setting(
        300.0,
        "WEBCHAT_STREAM_MAX_S",
        "longest a live stream stays open; the widget then reconnects with `Last-Event-ID` "
        "(the Knative request timeout must be longer)",
        group="webhook",
    )
    webchat_demo_site_key: str = setting(
        "",
        "WEBCHAT_DEMO_SITE_KEY",
        "the site whose widget the demo page (`GET /` of webchat) shows when no `?site=` is given",
        group="webhook",
        optional=True,
    )
    # Each proxy in front of us appends the address it saw to X-Forwarded-For; entries left of
    # the ones our own proxies wrote are whatever the caller sent (docs/architecture.md).
    trusted_proxy_hops: int = setting(
        2,
        "TRUSTED_PROXY_HOPS",
        "proxies of ours that append to `X-Forwarded-For` (the client is that many entries "
        "from the right; 0 = the socket's peer)",
        group="webhook",
    )
    # Where each channel's API is, where it is not the platform's own (the local stack and the
    # tests point every channel at the sandbox): `whatsapp=http://…,slack=http://…`.
    channel_api_bases: Mapping[str, str] = setting(
        {},
        "CHANNEL_API_BASES",
        "`channel=url` pairs, comma-separated: a channel's API at another base URL than the "
        "platform's (the local stack points them at the sandbox)",
        group="channel-apis",
        normalise=_api_bases,
    )
    channel_api_timeout_s: float = setting(
        5.0, "CHANNEL_API_TIMEOUT_S", "channel API request timeout", group="channel-apis"
    )
    audit_retention_days: int = setting(
        90, "AUDIT_RETENTION_DAYS", "audit records' TTL", group="mongodb"
    )
    # The analytics store (shared/analytics): facts without personal data, reporting views.
    postgres_url: str = setting(
        "postgresql://127.0.0.1:5432/chat_analytics",
        "POSTGRES_URL",
        "the analytics store: a PostgreSQL connection URI (`postgresql://user:pass@host/db`)",
        secret=True,
        group="postgres",
    )
    postgres_pool_size: int = setting(
        4,
        "POSTGRES_POOL_SIZE",
        "PostgreSQL connections per worker process, at most",
        group="postgres",
    )
    postgres_timeout_s: float = setting(
        5.0,
        "POSTGRES_TIMEOUT_S",
        "longest a request waits for a PostgreSQL connection before answering 503",
        group="postgres",
    )
    # End users and conversations are stored as HMAC-SHA256 with HMAC(key, tenant id) as the
    # key: without the key a hash leads nowhere, and one person is unrelated across tenants.
    analytics_hash_key: str = setting(
        "",
        "ANALYTICS_HASH_KEY",
        "the key of the analytics store's keyed hashes of end users and conversations (at "
        "least 32 bytes; changing it unlinks the rows stored before)",
        secret=True,
        group="postgres",
    )
    # Knative Eventing's sender identity (feature `authentication-oidc`): with an audience set,
    # an event handler accepts only requests whose bearer token the cluster issued for it.
    eventing_oidc_audience: str = setting(
        "",
        "EVENTING_OIDC_AUDIENCE",
        "this handler's OIDC audience (its Service's `status.address.audience`); empty: off",
        group="eventing",
        optional=True,
    )
    eventing_oidc_jwks_url: str = setting(
        "https://kubernetes.default.svc/openid/v1/jwks",
        "EVENTING_OIDC_JWKS_URL",
        "the keys of the cluster's service-account token issuer",
        group="eventing",
        optional=True,
    )
    eventing_oidc_issuer: str = setting(
        "",
        "EVENTING_OIDC_ISSUER",
        "the tokens' required `iss` (the cluster's service-account issuer); empty: any",
        group="eventing",
        optional=True,
    )
    # The conversations API's bearer tokens (JWT): an HS256 shared secret, public keys from a
    # JWKS URL (RS256/ES256), or both; each key verifies only its own algorithm.
    api_jwt_secret: str = setting(
        "",
        "API_JWT_SECRET",
        "HS256 secret of the conversations API's tokens (at least 32 bytes)",
        group="api",
        secret=True,
        optional=True,
    )
    api_jwks_url: str = setting(
        "",
        "API_JWKS_URL",
        "JWKS URL of the issuer's public keys (RS256/ES256 tokens)",
        group="api",
        optional=True,
    )
    api_jwt_issuer: str = setting(
        "chat-service", "API_JWT_ISSUER", "the tokens' required `iss`", group="api"
    )
    api_jwt_audience: str = setting(
        "chat-service-api", "API_JWT_AUDIENCE", "the tokens' required `aud`", group="api"
    )
    api_jwt_leeway_s: int = setting(
        30, "API_JWT_LEEWAY_S", "clock skew allowed on `exp`, `nbf` and `iat`", group="api"
    )
    api_rate_limit_per_min: int = setting(
        300,
        "API_RATE_LIMIT_PER_MIN",
        "API requests per token per minute (429 above; 0 = unlimited)",
        group="api",
    )

    @property
    def inbound_topic(self) -> str:
        return f"{self.topic_prefix}.messages.inbound"

    @property
    def overflow_topic(self) -> str:
        """A flooding user's messages past their budget (shared.ingress): stored, not answered,
        and off the inbound partitions that other users' conversations share."""
        return f"{self.topic_prefix}.messages.overflow"

    @property
    def outbound_topic(self) -> str:
        return f"{self.topic_prefix}.messages.outbound"

    @property
    def status_topic(self) -> str:
        return f"{self.topic_prefix}.messages.status"

    @property
    def audit_topic(self) -> str:
        return f"{self.topic_prefix}.audit"

    @property
    def topics(self) -> tuple[str, ...]:
        """Every topic the functions produce to or consume from (not the dead-letter ones)."""
        return (
            self.inbound_topic,
            self.overflow_topic,
            self.outbound_topic,
            self.status_topic,
            self.audit_topic,
        )

    def __repr__(self) -> str:
        """Every setting, with secrets (and credentials inside URLs) masked: a settings object
        may end up in a log line or a traceback."""
        shown = []
        for spec in specs():
            value = getattr(self, spec.field)
            if spec.secret and value:
                value = "***"
            elif isinstance(value, str):
                value = _without_credentials(value)
            elif isinstance(value, Mapping):
                value = {k: _without_credentials(str(v)) for k, v in value.items()}
            shown.append(f"{spec.field}={value!r}")
        return f"Settings({', '.join(shown)})"

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None) -> Settings:
        env = os.environ if env is None else env
        values: dict[str, Any] = {}
        for spec in specs():
            raw = next((env[n].strip() for n in spec.names if env.get(n, "").strip()), "")
            if raw:
                values[spec.field] = spec.parse(raw)
        return cls(**values)


@dataclass(frozen=True)
class SettingSpec:
    """One setting as declared: its field, variables (first wins), default, meaning, group."""

    field: str
    names: tuple[str, ...]
    kind: str  # "str" | "int" | "float" | "bool" | "list" | "map"
    default: Any
    meaning: str
    group: str
    secret: bool
    optional: bool
    normalise: Callable[[Any], Any] | None

    @property
    def env(self) -> str:
        return self.names[0]

    def parse(self, raw: str) -> Any:
        value: Any
        if self.kind == "int":
            value = int(self._number(raw))
        elif self.kind == "float":
            value = self._number(raw)
        elif self.kind == "bool":
            value = self._flag(raw)
        elif self.kind == "list":
            value = tuple(item.strip() for item in raw.split(",") if item.strip())
        elif self.kind == "map":
            value = self._pairs(raw)
        else:
            value = raw
        return self.normalise(value) if self.normalise else value

    def _number(self, raw: str) -> float:
        try:
            return float(raw)
        except ValueError as exc:
            raise ValueError(f"setting {self.env} must be a number, got {raw!r}") from exc

    def _pairs(self, raw: str) -> dict[str, str]:
        pairs: dict[str, str] = {}
        for item in (part.strip() for part in raw.split(",")):
            name, sep, value = item.partition("=")
            if item and (not sep or not name.strip() or not value.strip()):
                raise ValueError(f"setting {self.env}: {item!r} is not name=value")
            if item:
                pairs[name.strip()] = value.strip()
        return pairs

    def _flag(self, raw: str) -> bool:
        lowered = raw.lower()
        if lowered in ("1", "true", "yes", "on"):
            return True
        if lowered in ("0", "false", "no", "off"):
            return False
        raise ValueError(f"setting {self.env} must be true or false, got {raw!r}")

    def shown_default(self) -> str:
        if self.kind == "list":
            return ",".join(self.default)
        if self.kind == "map":
            return ",".join(f"{k}={v}" for k, v in self.default.items())
        if self.kind == "bool":
            return "true" if self.default else "false"
        if self.kind == "float" and float(self.default).is_integer():
            return str(int(self.default))
        return str(self.default)


@lru_cache(maxsize=1)
def _specs() -> tuple[SettingSpec, ...]:
    hints = get_type_hints(Settings)
    result = []
    for field in dataclasses.fields(Settings):
        hint = hints[field.name]
        kind = {tuple[str, ...]: "list", Mapping[str, str]: "map"}.get(hint) or hint.__name__
        if kind not in ("str", "int", "float", "bool", "list", "map"):
            raise TypeError(f"setting {field.name}: no parser for {hint}")
        result.append(
            SettingSpec(
                field=field.name,
                names=field.metadata["env"],
                kind=kind,
                default=(
                    field.default
                    if field.default is not dataclasses.MISSING
                    else field.default_factory()  # type: ignore[operator]
                ),
                meaning=field.metadata["meaning"],
                group=field.metadata["group"],
                secret=field.metadata["secret"],
                optional=field.metadata["optional"],
                normalise=field.metadata["normalise"],
            )
        )
    return tuple(result)


def specs() -> Iterator[SettingSpec]:
    """Every setting, in declaration order."""
    return iter(_specs())


def markdown_table() -> str:
    """The README's settings table."""
    rows = ["| variable | default | meaning |", "| --- | --- | --- |"]
    for spec in specs():
        default = f"`{spec.shown_default()}`" if spec.shown_default() else "—"
        secret = " *(secret)*" if spec.secret else ""
        rows.append(f"| `{spec.env}` | {default} | {spec.meaning}{secret} |")
    return "\n".join(rows)


@per_process
def get_settings() -> Settings:
    """The process-wide settings, read once."""
    return Settings.from_env()


if __name__ == "__main__":
    print(markdown_table())
