"""``python -m shared.ops.backup``: back up the service's MongoDB database, verify a backup,
restore one (what is copied: :mod:`shared.ops.backup_mongo`; the files: ``backup_files``).

    backup  --out DIR   [--uri URI] [--database NAME]            a new backup directory
    verify  --from DIR                                           checksums and counts only
    restore --from DIR  [--uri URI] [--database NAME] [--force]  verify, then restore

``--uri`` defaults to MONGODB_URI and ``--database`` to MONGODB_DATABASE (shared/settings.py).
Prefer the variable: a URI on a command line, password and all, shows in the process list. The
URI is never printed; messages name its hosts only.

A JSON summary goes to stdout, one progress line per collection to stderr. Exit status: 0 done;
1 an operator must look (MongoDB unreachable or refusing, a corrupt backup, a collection that
already holds documents without --force, an --out that exists and is not empty); 2 usage.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import re
import sys
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from urllib.parse import unquote

from shared.ops.backup_files import BackupError, verify
from shared.ops.backup_mongo import backup, restore, service_collections

# The handlers' client (shared.store.mongo) gives up on a socket after 5 s, too short for a
# batch of a large restore; this command makes its own, closed when it is done.
SERVER_SELECTION_TIMEOUT_MS = 5000
SOCKET_TIMEOUT_MS = 120_000
# A host name, an IPv4 or [IPv6] address or a percent-encoded socket path, with its port.
_HOST = re.compile(r"(\[[0-9A-Fa-f:.]+\]|[A-Za-z0-9._%-]+)(:[0-9]+)?")


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    try:
        result = _run(args)
    except BackupError as exc:
        print(f"{args.command} failed: {exc}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print(f"{args.command} interrupted", file=sys.stderr)
        return 130
    print(json.dumps(result, indent=2))
    return 0


def _run(args: argparse.Namespace) -> dict[str, Any]:
    if args.command == "verify":
        content = verify(args.source)
        return {"backup": str(args.source), **_described(content), "verified": True}
    from shared.settings import get_settings

    try:
        settings = get_settings()
    except ValueError as exc:  # a malformed setting in the environment, named by the message
        raise BackupError(str(exc)) from None
    uri = args.uri or settings.mongodb_uri
    with connected(uri, args.database or settings.mongodb_database) as db:
        if args.command == "backup":
            owned = service_collections(settings.audit_retention_days)
            content = backup(db, args.out, owned=owned, created_at=datetime.now(UTC), log=_progress)
            return {"backup": str(args.out), **_described(content)}
        restored = restore(db, args.source, force=args.force, log=_progress)
        return {"restored_from": str(args.source), **restored}


def _described(content: dict[str, Any]) -> dict[str, Any]:
    """A manifest without the checksums and index specs: what an operator reads."""
    collections = content["collections"]
    return {
        "database": content["database"],
        "created_at": content["created_at"],
        "collections": {
            name: {
                "documents": entry["documents"],
                "indexes": [spec["name"] for spec in entry["indexes"]],
                "owned": entry["owned"],
            }
            for name, entry in collections.items()
        },
        "not_owned": [name for name, entry in collections.items() if not entry["owned"]],
        "absent": content["absent"],
        "skipped": content["skipped"],
    }


@contextlib.contextmanager
def connected(uri: str, database: str) -> Iterator[Any]:
    """The database, once the server answered a ping; any MongoDB error in the block becomes a
    :class:`BackupError` whose message holds no credential."""
    from pymongo import MongoClient
    from pymongo.errors import ConfigurationError, ConnectionFailure, PyMongoError

    where = f"MongoDB at {hosts_of(uri)}"
    client: Any = None
    try:
        client = MongoClient(
            uri,
            serverSelectionTimeoutMS=SERVER_SELECTION_TIMEOUT_MS,
            connectTimeoutMS=SERVER_SELECTION_TIMEOUT_MS,
            socketTimeoutMS=SOCKET_TIMEOUT_MS,
            appname="chat-service-backup",
        )
        client.admin.command("ping")
        yield client[database]
    except ConfigurationError as exc:
        # Not echoed: a URI pymongo cannot parse may put part of the password in the message.
        raise BackupError(
            f"the MongoDB URI cannot be used ({type(exc).__name__}): check its syntax and "
            "percent-encoding (and DNS, for mongodb+srv://)"
        ) from None
    except ConnectionFailure as exc:
        reason = redact(_first_reason(str(exc)), uri)
        raise BackupError(f"{where} is unreachable ({type(exc).__name__}: {reason})") from None
    except PyMongoError as exc:
        raise BackupError(f"{where}: {redact(f'{type(exc).__name__}: {exc}', uri)}") from None
    finally:
        if client is not None:
            client.close()


def hosts_of(uri: str) -> str:
    """The host list of a MongoDB URI (``h1:27017,h2:27017``), without credentials or options;
    a generic name when what stands there does not look like hosts."""
    before_options = uri.partition("://")[2].partition("?")[0]
    hosts = before_options.rpartition("@")[2].partition("/")[0]
    if not all(_HOST.fullmatch(host) for host in hosts.split(",")):
        return "the configured server"
    return redact(hosts, uri)


def redact(text: str, uri: str) -> str:
    """``text`` with the URI's user information (and password, also decoded) replaced by ***."""
    for secret in _secrets(uri):
        text = text.replace(secret, "***")
    return text


def _secrets(uri: str) -> list[str]:
    # Liberal on purpose: everything before the last "@" may be user information (a password
    # with an unescaped "/", "?" or "@" included), and so may each piece of the password.
    userinfo = uri.partition("://")[2].rpartition("@")[0]
    if not userinfo:
        return []
    passwords = {userinfo.partition(":")[2], unquote(userinfo.partition(":")[2])}
    pieces = {piece for p in passwords for piece in re.split(r"[/?#@]", p) if len(piece) >= 3}
    secrets = {userinfo, unquote(userinfo), *passwords, *pieces} - {""}
    return sorted(secrets, key=len, reverse=True)


def _first_reason(message: str) -> str:
    """The first line of pymongo's server selection error, without its topology dump."""
    first = message.split(", Timeout:", 1)[0].splitlines()[0] if message else ""
    return re.sub(r" \(configured timeouts:[^)]*\)", "", first)


def _progress(line: str) -> None:
    print(line, file=sys.stderr, flush=True)


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m shared.ops.backup",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    create = commands.add_parser("backup", help="copy the database into a new directory")
    create.add_argument(
        "--out", type=Path, required=True, metavar="DIR", help="must not exist, or be empty"
    )
    _connection_options(create)
    check = commands.add_parser("verify", help="check a backup's checksums and document counts")
    check.add_argument("--from", dest="source", type=Path, required=True, metavar="DIR")
    back = commands.add_parser("restore", help="verify a backup, then restore it")
    back.add_argument("--from", dest="source", type=Path, required=True, metavar="DIR")
    _connection_options(back)
    back.add_argument(
        "--force",
        action="store_true",
        help="empty and replace the collections that already hold documents",
    )
    return parser


def _connection_options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--uri",
        metavar="MONGODB_URI",
        help="default: the MONGODB_URI variable (preferred: a command line is visible to others)",
    )
    parser.add_argument("--database", metavar="NAME", help="default: MONGODB_DATABASE")


if __name__ == "__main__":
    sys.exit(main())
