"""Copy a database's collections into a backup directory (:mod:`shared.ops.backup_files`), and
back.

What is copied: every collection the service owns (:func:`service_collections`) and every
other collection the database holds, marked ``"owned": false`` — a backup must not silently
leave data behind. Views and ``system.*`` collections hold no documents of their own; they are
listed under ``skipped``. Collections are copied one after the other, so a backup taken while
the event handlers run is consistent per document, not across collections.

A restore checks the whole backup first, then refuses to touch anything if a collection it
would write already holds documents, unless ``force``: then that collection is dropped and
replaced. Each collection is recreated with its options, its documents inserted in batches,
then its indexes built with the same names and options. It is not atomic across collections:
after a failure, fix the cause and run it again with ``force``.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator, Mapping
from datetime import datetime
from pathlib import Path
from typing import Any

from shared.ops.backup_files import (
    BackupError,
    collection_entry,
    data_file_name,
    from_extended_json,
    manifest,
    read_documents,
    staged_directory,
    verify,
    write_documents,
    write_manifest,
)
from shared.store.indexes import specs

# The collections the code writes that have no index beyond _id (shared/store/poison.py);
# every other collection of the service has its indexes declared in shared.store.indexes.
UNINDEXED = ("poison_events",)
BATCH_DOCUMENTS = 1000
BATCH_BYTES = 8 * 1024 * 1024  # well under MongoDB's 48 MB message

Log = Callable[[str], None]


def _quiet(line: str) -> None:
    del line


def service_collections(audit_retention_days: int) -> tuple[str, ...]:
    """The collections the service owns: those with declared indexes, and :data:`UNINDEXED`."""
    indexed = {spec.collection for spec in specs(audit_retention_days)}
    return tuple(sorted(indexed | set(UNINDEXED)))


def backup(
    db: Any, out: Path, *, owned: Iterable[str], created_at: datetime, log: Log = _quiet
) -> dict[str, Any]:
    """Write ``db`` into the new directory ``out``; returns the manifest."""
    ours = set(owned)
    listed = {str(info["name"]): info for info in db.list_collections()}
    skipped = [
        {"name": name, "type": str(info.get("type", "collection")), "reason": reason}
        for name, info in sorted(listed.items())
        if (reason := _no_documents_of_its_own(name, info))
    ]
    names = sorted(set(listed) - {item["name"] for item in skipped})
    with staged_directory(out) as staging:
        entries: dict[str, dict[str, Any]] = {}
        for name in names:
            collection = db.get_collection(name, codec_options=_raw())
            documents = (document.raw for document in collection.find())
            count = write_documents(staging / data_file_name(name), documents)
            entries[name] = collection_entry(
                name,
                staging,
                documents=count,
                owned=name in ours,
                options=listed[name].get("options", {}),
                indexes=collection.list_indexes(),
            )
            log(f"backed up {name}: {count} documents" + ("" if name in ours else " (not owned)"))
        content = manifest(
            db.name,
            created_at.isoformat(),
            entries,
            absent=ours - set(listed),
            skipped=skipped,
        )
        write_manifest(staging, content)
    return content


def restore(db: Any, source: Path, *, force: bool, log: Log = _quiet) -> dict[str, Any]:
    """Restore the backup in ``source`` into ``db``; returns what was restored."""
    content = verify(source)
    entries: dict[str, dict[str, Any]] = content["collections"]
    existing = set(db.list_collection_names())
    occupied = sorted(
        name
        for name in entries
        if name in existing and db[name].find_one({}, {"_id": 1}) is not None
    )
    if occupied and not force:
        raise BackupError(
            f"{', '.join(occupied)} in database {db.name!r} already "
            f"{'holds' if len(occupied) == 1 else 'hold'} documents; nothing was changed "
            "(--force empties and replaces them)"
        )
    restored: dict[str, dict[str, Any]] = {}
    for name, entry in entries.items():
        if name in existing:  # empty, or --force: replaced with exactly what the backup holds
            db.drop_collection(name)
        db.command({"create": name, **from_extended_json(entry["options"])})
        inserted = _insert(db.get_collection(name, codec_options=_raw()), source / entry["file"])
        if inserted != entry["documents"]:
            raise BackupError(
                f"collection {name!r}: inserted {inserted} of {entry['documents']} documents"
            )
        indexes = [from_extended_json(spec) for spec in entry["indexes"]]
        if indexes:
            db.command({"createIndexes": name, "indexes": indexes})
        restored[name] = {
            "documents": inserted,
            "indexes": [str(spec["name"]) for spec in indexes],
            "owned": entry["owned"],
            "replaced": name in occupied,
        }
        log(f"restored {name}: {inserted} documents, {len(indexes)} indexes")
    return {
        "database": db.name,
        "backup": {"database": content["database"], "created_at": content["created_at"]},
        "collections": restored,
    }


def _no_documents_of_its_own(name: str, info: Mapping[str, Any]) -> str:
    """Why a listed collection is not copied ("" when it is)."""
    if info.get("type", "collection") != "collection":
        return f"a {info.get('type')}: no documents of its own; recreate it by hand"
    if name.startswith("system."):
        return "a system collection, managed by the server"
    return ""


def _insert(collection: Any, path: Path) -> int:
    inserted = 0
    for batch in _batches(read_documents(path)):
        from bson.raw_bson import RawBSONDocument

        # The documents are what the database held; a validator added since must not reject
        # them on the way back (mongorestore's --bypassDocumentValidation).
        collection.insert_many(
            [RawBSONDocument(raw) for raw in batch], ordered=True, bypass_document_validation=True
        )
        inserted += len(batch)
    return inserted


def _batches(documents: Iterable[bytes]) -> Iterator[list[bytes]]:
    batch: list[bytes] = []
    size = 0
    for document in documents:
        batch.append(document)
        size += len(document)
        if len(batch) >= BATCH_DOCUMENTS or size >= BATCH_BYTES:
            yield batch
            batch, size = [], 0
    if batch:
        yield batch


def _raw() -> Any:
    """Codec options that hand documents over as the server's bytes (never re-encoded)."""
    from bson.codec_options import CodecOptions
    from bson.raw_bson import RawBSONDocument

    return CodecOptions(document_class=RawBSONDocument)
