"""The conversations API on the local stack: its HS256 secret and ready-made tokens.

The secret is made on the first run and kept in ``<state dir>/api.json`` (owner-only), so a
token minted yesterday still verifies today. The endpoints file gets an agent and an admin
token of the dev tenant, and an admin token of a second tenant ("other", with no accounts), to
see that one tenant never sees another's conversations. More tokens:
``python -m shared.api token --tenant dev --role agent`` (reads the same file).
"""

from __future__ import annotations

import json
import secrets
from pathlib import Path
from typing import Any

from shared.api.auth import LOCAL_SECRET_FILE
from shared.settings import Settings

OTHER_TENANT = "other"
TOKEN_TTL_S = 7 * 24 * 3600  # a week: long enough to keep a curl around while developing


def secret(state_dir: Path) -> str:
    """The stack's API secret, made once."""
    path = state_dir / LOCAL_SECRET_FILE
    if path.exists():
        document: dict[str, Any] = json.loads(path.read_text(encoding="utf-8"))
        return str(document["jwt_secret"])
    value = secrets.token_urlsafe(48)
    path.touch(mode=0o600, exist_ok=True)
    path.write_text(json.dumps({"jwt_secret": value}) + "\n", encoding="utf-8")
    return value


def tokens(
    settings: Settings, tenant_id: str, roles: tuple[str, ...], now: float
) -> dict[str, str]:
    from shared.api.auth import mint

    return {
        role: mint(
            settings,
            tenant_id=tenant_id,
            subject=f"{role}@{tenant_id}.local",
            roles=(role,),
            now=now,
            ttl_s=TOKEN_TTL_S,
        )
        for role in roles
    }
