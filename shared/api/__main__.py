"""``python -m shared.api token``: mint a conversations API token (HS256, ``API_JWT_SECRET``).

    python -m shared.api token --tenant dev --role agent [--subject alice] [--ttl 3600]

The secret comes from ``API_JWT_SECRET``, else from the local stack's ``.devstack/api.json``
(``--state-dir`` to point elsewhere). A production issuer (an identity provider) signs its own
tokens: RS256/ES256 with a key of ``API_JWKS_URL``.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import sys
import time
from pathlib import Path

from shared.api.auth import LOCAL_SECRET_FILE, ROLES, mint
from shared.settings import Settings

ROOT = Path(__file__).resolve().parents[2]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m shared.api", description=__doc__)
    commands = parser.add_subparsers(dest="command", required=True)
    token = commands.add_parser("token", help="print a signed token")
    token.add_argument("--tenant", required=True)
    token.add_argument("--role", choices=ROLES, action="append", required=True)
    token.add_argument("--subject", help="who the token is for (default: <role>@<tenant>)")
    token.add_argument("--ttl", type=int, default=3600, help="seconds (default 3600)")
    token.add_argument("--state-dir", type=Path, default=ROOT / ".devstack")
    args = parser.parse_args(argv)
    settings = Settings.from_env()
    if not settings.api_jwt_secret:
        kept = args.state_dir / LOCAL_SECRET_FILE
        if not kept.exists():
            print("set API_JWT_SECRET, or run `make run` once (it keeps one)", file=sys.stderr)
            return 2
        local = json.loads(kept.read_text(encoding="utf-8"))["jwt_secret"]
        settings = dataclasses.replace(settings, api_jwt_secret=local)
    roles = tuple(dict.fromkeys(args.role))
    subject = args.subject or f"{roles[0]}@{args.tenant}"
    print(
        mint(
            settings,
            tenant_id=args.tenant,
            subject=subject,
            roles=roles,
            now=time.time(),
            ttl_s=args.ttl,
        )
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
