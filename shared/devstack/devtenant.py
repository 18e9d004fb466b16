"""The local stack's tenant "dev": one account on every registered channel.

Each channel makes its own account (``SPEC.dev``). The secrets are random, made on the first
run and kept in ``<state dir>/tenants.json`` (the format of :mod:`shared.tenants`), so a
webhook URL or a curl saved yesterday still verifies today. Only what is missing is added on a
later run; what depends on the run (the webchat function's origins) is refreshed.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from shared.channels.registry import specs
from shared.tenants import TenantDirectory

TENANT_ID = "dev"


def ensure_dev_tenant(document: dict[str, Any], function_urls: Mapping[str, str]) -> dict[str, Any]:
    """``document`` with the dev tenant complete: an account on every registered channel.

    Existing accounts and secrets are kept; each channel refreshes what depends on this run
    (web chat: the origins of the webchat function's port).
    """
    tenants = document.setdefault("tenants", [])
    tenant = next((t for t in tenants if t.get("id") == TENANT_ID), None)
    if tenant is None:
        tenant = {"id": TENANT_ID}
        tenants.append(tenant)
    for spec in specs():
        if not tenant.get(spec.name):
            tenant[spec.name] = [spec.dev.make()]
        tenant[spec.name][0] = spec.dev.refresh(
            tenant[spec.name][0], function_urls.get(spec.function)
        )
    return document


def write_tenants_file(path: Path, function_urls: Mapping[str, str]) -> dict[str, Any]:
    """Create or complete ``path``; returns the dev tenant's entry. Checked like production."""
    document = json.loads(path.read_text(encoding="utf-8")) if path.exists() else {}
    document = ensure_dev_tenant(document, function_urls)
    TenantDirectory.from_dict(document)  # fail here, not in every function's log
    path.touch(mode=0o600, exist_ok=True)
    path.write_text(json.dumps(document, indent=2) + "\n", encoding="utf-8")
    tenant: dict[str, Any] = next(t for t in document["tenants"] if t["id"] == TENANT_ID)
    return tenant
