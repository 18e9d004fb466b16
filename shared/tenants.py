"""The tenant directory: which tenant owns a channel account, and that account's secrets.

Loaded from JSON (``TENANTS_FILE``, a mounted Kubernetes Secret in production, or
``TENANTS_JSON``): ``{"tenants": [{"id": "acme", "<channel>": [<account>, …], …}]}``, where
each channel of :mod:`shared.channels.registry` says what its account entry holds (its
``SPEC.account``; ``python -m shared.tenants`` prints an example of every channel's). A channel
name that is not registered is an error.

Secrets are held as :class:`Secret`, whose ``repr`` never shows the value, so a settings dump
or a log line with an account in it does not leak them.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from shared.caching import per_process
from shared.dataclass import dataclass
from shared.settings import Settings


class Secret:
    __slots__ = ("_value",)

    def __init__(self, value: str) -> None:
        self._value = value

    def reveal(self) -> str:
        return self._value

    def __bool__(self) -> bool:
        return bool(self._value)

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Secret) and other._value == self._value

    def __hash__(self) -> int:
        return hash(self._value)

    def __repr__(self) -> str:
        return "Secret('***')"

    __str__ = __repr__


class TenantConfigError(ValueError):
    pass


@dataclass(frozen=True)
class TenantDirectory:
    """Every channel account, by channel and by the account's own id."""

    accounts: Mapping[str, Mapping[str, Any]]

    def of(self, channel: str) -> Mapping[str, Any]:
        """The accounts of ``channel`` by id; an unknown channel is an error."""
        if channel not in self.accounts:
            from shared.channels.registry import UnknownChannel

            raise UnknownChannel(channel)
        return self.accounts[channel]

    def account(self, channel: str, account_id: str) -> Any | None:
        found = self.of(channel).get(account_id)
        if found is not None:
            from shared import logs

            logs.annotate(tenant=found.tenant_id)  # the request's log lines name its tenant
        return found

    @classmethod
    def from_dict(cls, document: dict[str, Any]) -> TenantDirectory:
        from shared.channels.registry import NAMES, spec

        accounts: dict[str, dict[str, Any]] = {name: {} for name in NAMES}
        for tenant in document.get("tenants", []):
            tid = required(tenant, "id", "tenant")
            unknown = sorted(set(tenant) - {"id", *NAMES})
            if unknown:
                raise TenantConfigError(
                    f"tenant {tid}: unknown channel(s) {', '.join(unknown)} "
                    f"(known: {', '.join(NAMES)})"
                )
            for name in NAMES:
                entries = tenant.get(name, [])
                if not isinstance(entries, list):
                    raise TenantConfigError(f"tenant {tid}: '{name}' must be a list of accounts")
                declared = spec(name).account
                for entry in entries:
                    if not isinstance(entry, dict):
                        raise TenantConfigError(f"tenant {tid} {name}: an account is an object")
                    required(entry, declared.key, f"tenant {tid} {name}")
                    account = declared.load(tid, entry)
                    if account.account_id in accounts[name]:
                        raise TenantConfigError(
                            f"{name} {declared.key} {account.account_id!r} is configured twice"
                        )
                    accounts[name][account.account_id] = account
        return cls(accounts)

    @classmethod
    def from_settings(cls, settings: Settings) -> TenantDirectory:
        if settings.tenants_json:
            raw = settings.tenants_json
        elif settings.tenants_file:
            raw = Path(settings.tenants_file).read_text(encoding="utf-8")
        else:
            raw = '{"tenants": []}'
        try:
            document = json.loads(raw)
        except json.JSONDecodeError as exc:
            raise TenantConfigError(f"tenant directory is not valid JSON: {exc}") from exc
        return cls.from_dict(document)


def required(entry: Mapping[str, Any], key: str, where: str) -> str:
    """A field every account of the channel must have (a :class:`TenantConfigError` if not)."""
    value = entry.get(key)
    if value is None or str(value) == "":
        raise TenantConfigError(f"{where}: '{key}' is required")
    return str(value)


# A shared secret shorter than this is guessable: the platforms' own are 32 hex characters
# (Meta app secrets, Slack signing secrets); the ones we choose (verify and secret tokens) are
# held to the same floor.
MIN_SECRET_CHARS = 16


def secret(
    entry: Mapping[str, Any],
    key: str,
    where: str,
    *,
    optional: bool = False,
    min_chars: int = 1,
) -> Secret:
    """A secret field as :class:`Secret`; an optional one missing is an empty secret. One that
    is present must be a string of ``min_chars`` or more (a missing token is a load error, not
    the text "None" sent as a bearer token later)."""
    value = entry.get(key)
    if optional and value in (None, ""):
        return Secret("")
    if not isinstance(value, str) or not value:
        raise TenantConfigError(f"{where}: {key} is required (a non-empty string)")
    if len(value) < min_chars:
        raise TenantConfigError(f"{where}: {key} needs {min_chars}+ characters")
    return Secret(value)


@per_process
def get_directory() -> TenantDirectory:
    from shared.settings import get_settings

    return TenantDirectory.from_settings(get_settings())


def example() -> dict[str, Any]:
    """A directory with one account of every channel, from the channels' own declarations."""
    from shared.channels.registry import specs

    tenant: dict[str, Any] = {"id": "acme"}
    for declared in specs():
        tenant[declared.name] = [dict(declared.account.example)]
    return {"tenants": [tenant]}


if __name__ == "__main__":
    print(json.dumps(example(), indent=2, ensure_ascii=False))
