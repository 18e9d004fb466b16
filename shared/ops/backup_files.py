"""The backup directory: one gzip'd BSON file per collection, and a manifest that names, counts
and checksums them. Nothing here talks to MongoDB (:mod:`shared.ops.backup_mongo` does).

    DIR/
      manifest.json            format, created_at, database; per collection: its file, document
                               count, SHA-256 of the file, options and indexes
      conversations.bson.gz    gzip of the collection's documents as raw BSON, one after the
      messages.bson.gz         other (mongodump's .bson layout: each document starts with its
      …                        own int32 length)

Documents are copied as the bytes MongoDB returned, never decoded and re-encoded, so every type
(dates, int32 vs int64, Decimal128, binary subtypes, …) and the field order come back exactly.
Index specs and collection options are canonical Extended JSON in the manifest for the same
reason (``{"$numberInt": "1"}`` stays an int32, ``{"$numberLong": "1"}`` an int64).
"""

from __future__ import annotations

import contextlib
import gzip
import hashlib
import json
import os
import shutil
import struct
import tempfile
import zlib
from collections.abc import Iterable, Iterator, Mapping
from pathlib import Path
from typing import Any
from urllib.parse import quote

FORMAT = "chat-service-mongodb-backup"
FORMAT_VERSION = 1
MANIFEST = "manifest.json"
DATA_SUFFIX = ".bson.gz"
# Not part of a spec to recreate: the index format version (the server picks its current one)
# and the namespace (pre-4.4 servers; it names the source database).
_INDEX_NOISE = frozenset({"v", "ns"})
_ID_INDEX = "_id_"  # created with the collection; never recreated by hand
_LENGTH = struct.Struct("<i")
_MIN_DOCUMENT = 5  # int32 length + the terminating NUL of an empty document


class BackupError(Exception):
    """What an operator must look at (exit status 1); the message says what and where."""


def data_file_name(collection: str) -> str:
    """The collection's file: its name, percent-encoded where a file name could not hold it."""
    return quote(collection, safe="") + DATA_SUFFIX


def write_documents(path: Path, documents: Iterable[bytes]) -> int:
    """Write raw BSON documents gzip'd to ``path`` (flushed to disk); returns how many."""
    count = 0
    with open(path, "xb") as raw:
        # mtime=0 and no file name in the header: the same documents give the same bytes.
        with gzip.GzipFile(filename="", mode="wb", fileobj=raw, compresslevel=6, mtime=0) as out:
            for document in documents:
                out.write(document)
                count += 1
        raw.flush()
        os.fsync(raw.fileno())
    return count


def read_documents(path: Path) -> Iterator[bytes]:
    """The raw BSON documents of a data file, each checked for a whole length-prefixed frame."""
    try:
        with gzip.open(path, "rb") as data:
            while header := data.read(_LENGTH.size):
                length = _LENGTH.unpack(header)[0] if len(header) == _LENGTH.size else 0
                if length < _MIN_DOCUMENT:
                    raise BackupError(f"{path.name}: not a BSON document stream")
                body = data.read(length - _LENGTH.size)
                if len(body) != length - _LENGTH.size or body[-1:] != b"\x00":
                    raise BackupError(f"{path.name}: truncated BSON document")
                yield header + body
    except (OSError, EOFError, zlib.error) as exc:  # BadGzipFile is an OSError
        raise BackupError(f"{path.name}: unreadable ({type(exc).__name__}: {exc})") from exc


def sha256_file(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as data:
        for chunk in iter(lambda: data.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def index_spec(listed: Mapping[str, Any]) -> dict[str, Any] | None:
    """An index as ``list_indexes`` gives it, ready for ``createIndexes``; None for ``_id_``."""
    if listed.get("name") == _ID_INDEX:
        return None
    return {key: value for key, value in listed.items() if key not in _INDEX_NOISE}


def to_extended_json(document: Mapping[str, Any]) -> dict[str, Any]:
    from bson import json_util

    encoded = json_util.dumps(document, json_options=json_util.CANONICAL_JSON_OPTIONS)
    decoded: dict[str, Any] = json.loads(encoded)
    return decoded


def from_extended_json(value: Mapping[str, Any]) -> dict[str, Any]:
    from bson import json_util

    decoded: dict[str, Any] = json_util.loads(
        json.dumps(value), json_options=json_util.CANONICAL_JSON_OPTIONS
    )
    return decoded


def collection_entry(
    name: str,
    directory: Path,
    *,
    documents: int,
    owned: bool,
    options: Mapping[str, Any],
    indexes: Iterable[Mapping[str, Any]],
) -> dict[str, Any]:
    """The manifest's record of one collection whose data file is written in ``directory``."""
    file = data_file_name(name)
    specs = [spec for listed in indexes if (spec := index_spec(listed)) is not None]
    return {
        "owned": owned,
        "file": file,
        "documents": documents,
        "bytes": (directory / file).stat().st_size,
        "sha256": sha256_file(directory / file),
        "options": to_extended_json(options),
        "indexes": [to_extended_json(spec) for spec in specs],
    }


def manifest(
    database: str,
    created_at: str,
    collections: Mapping[str, Mapping[str, Any]],
    *,
    absent: Iterable[str] = (),
    skipped: Iterable[Mapping[str, str]] = (),
) -> dict[str, Any]:
    """The manifest: ``absent`` names the service's collections the database did not have,
    ``skipped`` what exists but holds no data to copy (views, ``system.*``) and why."""
    return {
        "format": FORMAT,
        "format_version": FORMAT_VERSION,
        "created_at": created_at,
        "database": database,
        "collections": {name: dict(entry) for name, entry in sorted(collections.items())},
        "absent": sorted(absent),
        "skipped": [dict(item) for item in skipped],
    }


def write_manifest(directory: Path, content: Mapping[str, Any]) -> None:
    with open(directory / MANIFEST, "x", encoding="utf-8") as out:
        json.dump(content, out, indent=2)
        out.write("\n")
        out.flush()
        os.fsync(out.fileno())


def read_manifest(directory: Path) -> dict[str, Any]:
    path = directory / MANIFEST
    try:
        content = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise BackupError(f"{directory} is not a backup: it has no {MANIFEST}") from None
    except (OSError, ValueError) as exc:
        raise BackupError(f"{path}: unreadable ({type(exc).__name__}: {exc})") from exc
    if not isinstance(content, dict) or content.get("format") != FORMAT:
        raise BackupError(f"{path}: not a {FORMAT} manifest")
    if content.get("format_version") != FORMAT_VERSION:
        raise BackupError(
            f"{path}: format version {content.get('format_version')!r}; "
            f"this command reads version {FORMAT_VERSION}"
        )
    return content


def verify(directory: Path) -> dict[str, Any]:
    """The manifest, once every data file has its checksum and document count; else
    :class:`BackupError` naming the first collection that does not."""
    content = read_manifest(directory)
    for name, entry in content["collections"].items():
        file = str(entry["file"])
        if Path(file).name != file:  # a manifest must not point outside its directory
            raise BackupError(f"collection {name!r}: bad file name {file!r} in the manifest")
        path = directory / file
        if not path.is_file():
            raise BackupError(f"collection {name!r}: {file} is missing")
        actual = sha256_file(path)
        if actual != entry["sha256"]:
            raise BackupError(
                f"collection {name!r}: {file} does not match its checksum "
                f"(sha256 {actual}, manifest {entry['sha256']}): the backup is corrupt"
            )
        try:
            count = sum(1 for _ in read_documents(path))
        except BackupError as exc:
            raise BackupError(f"collection {name!r}: {exc}") from exc
        if count != entry["documents"]:
            raise BackupError(
                f"collection {name!r}: {file} holds {count} documents, "
                f"the manifest says {entry['documents']}: the backup is corrupt"
            )
    return content


@contextlib.contextmanager
def staged_directory(out: Path) -> Iterator[Path]:
    """A private directory next to ``out`` that becomes ``out`` only when the block completes,
    so an interrupted backup never leaves something that looks like a backup."""
    if out.exists() and (not out.is_dir() or any(out.iterdir())):
        raise BackupError(f"{out} exists and is not empty: give a new directory")
    out.parent.mkdir(parents=True, exist_ok=True)
    # mkdtemp makes it 0700: a backup holds every conversation of every tenant.
    staging = Path(tempfile.mkdtemp(prefix=f".{out.name}.", suffix=".partial", dir=out.parent))
    try:
        yield staging
        _fsync_directory(staging)
        try:
            os.rename(staging, out)  # atomic; replaces an empty directory, fails on anything else
        except OSError as exc:
            raise BackupError(f"{out}: cannot move the backup into place ({exc})") from exc
        _fsync_directory(out.parent)
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise


def _fsync_directory(path: Path) -> None:
    descriptor = os.open(path, os.O_RDONLY)
    try:
        os.fsync(descriptor)
    finally:
        os.close(descriptor)
