"""The backup command's pure parts: the data files, the manifest and its verification, the
staged output directory, which collections are the service's, and keeping the URI's
credentials out of every message. The round trip against a real server is in
tests/integration/test_backup.py."""

from __future__ import annotations

import hashlib
import importlib
import json
import re
import stat
import subprocess
import sys
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import bson
import pytest
from bson import Int64, Regex
from bson.raw_bson import RawBSONDocument

from shared.ops import backup as command
from shared.ops.backup_files import (
    BackupError,
    collection_entry,
    data_file_name,
    from_extended_json,
    index_spec,
    manifest,
    read_documents,
    sha256_file,
    staged_directory,
    to_extended_json,
    verify,
    write_documents,
    write_manifest,
)
from shared.ops.backup_mongo import UNINDEXED, backup, service_collections

ROOT = Path(__file__).resolve().parents[3]
SCRIPTS = [ROOT / "scripts" / "backup.sh", ROOT / "scripts" / "restore.sh"]
CREATED = datetime(2026, 12, 1, 3, 0, tzinfo=UTC)
DOCUMENTS: list[dict[str, Any]] = [
    {"_id": "m1", "n": 1, "big": Int64(1), "at": datetime(2025, 6, 8, 21, 0, tzinfo=UTC)},
    {"_id": "m2", "data": b"\x00\xff", "none": None, "nested": {"list": [1, {"a": 2.5}]}},
]
MESSAGES_INDEX = {
    "v": 2,
    "key": {"tenant_id": 1, "channel": 1, "channel_message_id": 1},
    "name": "tenant_channel_message_id_unique",
    "unique": True,
    "partialFilterExpression": {"channel_message_id": {"$type": "string"}},
}
ID_INDEX = {"v": 2, "key": {"_id": 1}, "name": "_id_"}


class FakeCollection:
    def __init__(self, documents: list[dict[str, Any]], indexes: list[dict[str, Any]]) -> None:
        self.documents, self.indexes = documents, indexes

    def find(self) -> list[RawBSONDocument]:
        return [RawBSONDocument(bson.encode(document)) for document in self.documents]

    def list_indexes(self) -> list[dict[str, Any]]:
        return self.indexes


class FakeDatabase:
    """What :func:`backup` reads of a pymongo Database."""

    name = "chat_service"

    def __init__(self, collections: dict[str, tuple[dict[str, Any], FakeCollection]]) -> None:
        self.collections = collections

    def list_collections(self) -> list[dict[str, Any]]:
        return [{"name": name, **info} for name, (info, _) in self.collections.items()]

    def get_collection(self, name: str, codec_options: Any = None) -> FakeCollection:
        return self.collections[name][1]


def write_backup(directory: Path) -> dict[str, Any]:
    """A two-collection backup written with the module's own pieces."""
    directory.mkdir()
    entries = {}
    for name, documents, indexes in (
        ("messages", DOCUMENTS, [ID_INDEX, MESSAGES_INDEX]),
        ("poison_events", [], [ID_INDEX]),
    ):
        count = write_documents(directory / data_file_name(name), map(bson.encode, documents))
        entries[name] = collection_entry(
            name, directory, documents=count, owned=True, options={}, indexes=indexes
        )
    content = manifest("chat_service", CREATED.isoformat(), entries)
    write_manifest(directory, content)
    return content


# --- which collections ---------------------------------------------------------------------


def collections_named_in_code() -> set[str]:
    """Every ``db["name"]`` / ``db[CONSTANT]`` in shared/ (but this command's own modules)."""
    found: set[str] = set()
    pattern = re.compile(r"\b_?db\[\s*(?:\"([A-Za-z_]+)\"|([A-Z][A-Z0-9_]*))\s*\]")
    for path in (ROOT / "shared").rglob("*.py"):
        if "ops" in path.relative_to(ROOT / "shared").parts:
            continue
        for literal, constant in pattern.findall(path.read_text(encoding="utf-8")):
            if constant:
                module = ".".join(path.relative_to(ROOT).with_suffix("").parts)
                literal = getattr(importlib.import_module(module), constant)
            found.add(literal)
    return found


def test_the_service_collections_are_those_the_code_writes() -> None:
    named = collections_named_in_code()

    assert named >= {"conversations", "messages", "audit", "pending_statuses", "poison_events"}
    assert set(service_collections(30)) == named
    assert set(UNINDEXED) <= named


def test_backup_copies_every_collection_and_marks_those_the_service_does_not_own(
    tmp_path: Path,
) -> None:
    db = FakeDatabase(
        {
            "messages": ({"type": "collection"}, FakeCollection(DOCUMENTS, [MESSAGES_INDEX])),
            "agent_notes": ({"type": "collection"}, FakeCollection([{"_id": 1}], [ID_INDEX])),
            "recent": ({"type": "view", "options": {"viewOn": "messages"}}, FakeCollection([], [])),
            "system.views": ({"type": "collection"}, FakeCollection([], [])),
        }
    )
    out = tmp_path / "backup"

    content = backup(db, out, owned=["messages", "audit"], created_at=CREATED)

    assert content == read_manifest_file(out)
    assert sorted(content["collections"]) == ["agent_notes", "messages"]
    assert content["collections"]["messages"]["owned"] is True
    assert content["collections"]["agent_notes"]["owned"] is False
    assert content["absent"] == ["audit"]
    assert [(s["name"], s["type"]) for s in content["skipped"]] == [
        ("recent", "view"),
        ("system.views", "collection"),
    ]
    assert content["created_at"] == "2026-12-01T03:00:00+00:00"
    assert verify(out) == content


def read_manifest_file(directory: Path) -> Any:
    return json.loads((directory / "manifest.json").read_text())


# --- data files and manifest ---------------------------------------------------------------


def test_documents_round_trip_byte_for_byte_and_the_file_is_reproducible(tmp_path: Path) -> None:
    raw = [bson.encode(document) for document in DOCUMENTS]

    assert write_documents(tmp_path / "a.bson.gz", raw) == 2
    assert write_documents(tmp_path / "b.bson.gz", raw) == 2

    assert list(read_documents(tmp_path / "a.bson.gz")) == raw
    assert sha256_file(tmp_path / "a.bson.gz") == sha256_file(tmp_path / "b.bson.gz")
    assert sha256_file(tmp_path / "a.bson.gz") == (
        hashlib.sha256((tmp_path / "a.bson.gz").read_bytes()).hexdigest()
    )


@pytest.mark.parametrize(
    "content", [b"\x05\x00\x00", b"\x10\x00\x00\x00abc", b"\x03\x00\x00\x00\x00"]
)
def test_a_truncated_or_malformed_stream_is_refused(tmp_path: Path, content: bytes) -> None:
    import gzip

    path = tmp_path / "x.bson.gz"
    path.write_bytes(gzip.compress(content))

    with pytest.raises(BackupError, match=r"x\.bson\.gz"):
        list(read_documents(path))


def test_a_file_that_is_not_gzip_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "x.bson.gz"
    path.write_bytes(b"not gzip at all")

    with pytest.raises(BackupError, match="unreadable"):
        list(read_documents(path))


def test_index_specs_lose_the_id_index_and_the_version_but_keep_every_option() -> None:
    assert index_spec(ID_INDEX) is None
    assert index_spec({**MESSAGES_INDEX, "ns": "chat_service.messages"}) == {
        "key": MESSAGES_INDEX["key"],
        "name": "tenant_channel_message_id_unique",
        "unique": True,
        "partialFilterExpression": {"channel_message_id": {"$type": "string"}},
    }


def test_extended_json_keeps_every_type() -> None:
    spec = {
        "key": {"recorded_at": 1, "seq": Int64(-1)},
        "name": "x",
        "expireAfterSeconds": 2_592_000,
        "partialFilterExpression": {
            "at": {"$gt": datetime(2025, 1, 1, tzinfo=UTC)},
            "text": Regex("^a", "i"),
        },
    }
    encoded = to_extended_json(spec)

    assert encoded["key"] == {"recorded_at": {"$numberInt": "1"}, "seq": {"$numberLong": "-1"}}
    decoded = from_extended_json(json.loads(json.dumps(encoded)))
    assert bson.encode(decoded) == bson.encode(spec)  # same types, same order


def test_the_manifest_names_counts_and_checksums_each_file(tmp_path: Path) -> None:
    content = write_backup(tmp_path / "b")

    messages = content["collections"]["messages"]
    assert content["format"] == "chat-service-mongodb-backup"
    assert content["format_version"] == 1
    assert content["database"] == "chat_service"
    assert messages["file"] == "messages.bson.gz"
    assert messages["documents"] == 2
    assert messages["sha256"] == sha256_file(tmp_path / "b" / "messages.bson.gz")
    assert messages["bytes"] == (tmp_path / "b" / "messages.bson.gz").stat().st_size
    assert [spec["name"] for spec in messages["indexes"]] == ["tenant_channel_message_id_unique"]
    assert content["collections"]["poison_events"]["indexes"] == []
    assert read_manifest_file(tmp_path / "b") == content


def test_a_collection_name_becomes_a_safe_file_name() -> None:
    assert data_file_name("messages") == "messages.bson.gz"
    assert data_file_name("a/b c") == "a%2Fb%20c.bson.gz"


# --- verify --------------------------------------------------------------------------------


def test_verify_accepts_an_intact_backup(tmp_path: Path) -> None:
    content = write_backup(tmp_path / "b")

    assert verify(tmp_path / "b") == content


def test_verify_names_the_collection_whose_file_changed(tmp_path: Path) -> None:
    write_backup(tmp_path / "b")
    data = tmp_path / "b" / "messages.bson.gz"
    content = bytearray(data.read_bytes())
    content[len(content) // 2] ^= 0xFF
    data.write_bytes(bytes(content))

    with pytest.raises(BackupError, match=r"collection 'messages'.*checksum.*corrupt"):
        verify(tmp_path / "b")


def test_verify_compares_the_document_count(tmp_path: Path) -> None:
    content = write_backup(tmp_path / "b")
    content["collections"]["messages"]["documents"] = 3
    (tmp_path / "b" / "manifest.json").write_text(json.dumps(content))

    with pytest.raises(BackupError, match=r"'messages'.*holds 2 documents, the manifest says 3"):
        verify(tmp_path / "b")


@pytest.mark.parametrize(
    ("change", "message"),
    [
        (lambda c: c["collections"]["messages"].update(file="../messages.bson.gz"), "bad file"),
        (lambda c: c.update(format_version=2), "format version 2"),
        (lambda c: c.update(format="other"), "not a chat-service-mongodb-backup"),
    ],
)
def test_verify_refuses_a_manifest_it_cannot_trust(
    tmp_path: Path, change: Any, message: str
) -> None:
    content = write_backup(tmp_path / "b")
    change(content)
    (tmp_path / "b" / "manifest.json").write_text(json.dumps(content))

    with pytest.raises(BackupError, match=message):
        verify(tmp_path / "b")


def test_verify_refuses_a_missing_file_or_manifest(tmp_path: Path) -> None:
    write_backup(tmp_path / "b")
    (tmp_path / "b" / "poison_events.bson.gz").unlink()
    with pytest.raises(
        BackupError, match=re.escape("'poison_events': poison_events.bson.gz is missing")
    ):
        verify(tmp_path / "b")

    with pytest.raises(BackupError, match=re.escape("not a backup: it has no manifest.json")):
        verify(tmp_path)


# --- the output directory ------------------------------------------------------------------


def test_the_backup_appears_only_when_complete_and_private(tmp_path: Path) -> None:
    out = tmp_path / "nested" / "backup"
    with pytest.raises(RuntimeError), staged_directory(out) as staging:
        (staging / "half").write_text("written")
        raise RuntimeError("interrupted")
    assert not out.exists()
    assert list(out.parent.iterdir()) == []  # no staging directory left behind

    with staged_directory(out) as staging:
        (staging / "done").write_text("written")
    assert [p.name for p in out.iterdir()] == ["done"]
    assert stat.S_IMODE(out.stat().st_mode) == 0o700


def test_an_existing_empty_directory_is_used_and_a_non_empty_one_refused(tmp_path: Path) -> None:
    empty = tmp_path / "empty"
    empty.mkdir()
    with staged_directory(empty) as staging:
        (staging / "file").write_text("x")
    assert (empty / "file").exists()

    with pytest.raises(BackupError, match="exists and is not empty"), staged_directory(empty):
        pass
    assert [p.name for p in empty.iterdir()] == ["file"]


# --- credentials ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("uri", "hosts"),
    [
        (
            "mongodb://chat:s3cret@mongodb-0.mongodb:27017/?replicaSet=rs0",
            "mongodb-0.mongodb:27017",
        ),
        ("mongodb://chat:s3%2Fcr%40t@h1:1,h2:2/chat?authSource=admin", "h1:1,h2:2"),
        ("mongodb+srv://chat:s3cret@cluster0.example.net/", "cluster0.example.net"),
        ("mongodb://127.0.0.1:27017/", "127.0.0.1:27017"),
        # Unescaped "/", "@" or "?" in a password (pymongo refuses such a URI): never echoed.
        ("mongodb://chat:pa/ss@word@h:1/", "h:1"),
        ("mongodb://chat:pass?word@h:1/", "the configured server"),
        ("mongodb://chat:123/word@h:1/", "h:1"),
    ],
)
def test_hosts_are_named_without_credentials(uri: str, hosts: str) -> None:
    assert command.hosts_of(uri) == hosts


def test_redaction_removes_the_user_information_raw_and_decoded() -> None:
    uri = "mongodb://chat:s3%2Fcr%40t@h1:1/"
    text = "auth failed for chat:s3%2Fcr%40t (password s3%2Fcr%40t, decoded s3/cr@t)"

    redacted = command.redact(text, uri)

    assert redacted == "auth failed for *** (password ***, decoded ***)"
    assert command.redact("nothing secret", "mongodb://h:1/") == "nothing secret"


def test_the_reason_of_a_server_selection_error_is_its_first_part() -> None:
    message = (
        "127.0.0.1:1: [Errno 111] Connection refused (configured timeouts: socketTimeoutMS: "
        "20000.0ms, connectTimeoutMS: 20000.0ms), Timeout: 5.0s, Topology Description: <…>"
    )

    assert command._first_reason(message) == "127.0.0.1:1: [Errno 111] Connection refused"


def test_a_uri_the_driver_refuses_is_reported_without_echoing_it(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    uri = "mongodb://chat:pa:ss@127.0.0.1:1/"  # an unescaped ":" in the password
    argv = ["backup", "--uri", uri, "--database", "x", "--out", str(tmp_path / "b")]

    assert command.main(argv) == 1

    captured = capsys.readouterr()
    assert captured.err.startswith("backup failed: the MongoDB URI cannot be used (")
    assert "pa:ss" not in captured.err and captured.out == ""
    assert not (tmp_path / "b").exists()


# --- the command line ----------------------------------------------------------------------


@pytest.mark.parametrize(
    "argv", [[], ["backup"], ["restore"], ["verify"], ["backup", "--out", "x", "--force"]]
)
def test_usage_errors_exit_2(argv: list[str], capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exited:
        command.main(argv)

    assert exited.value.code == 2
    assert "usage:" in capsys.readouterr().err


def test_verify_prints_a_summary_or_exits_1(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    write_backup(tmp_path / "b")

    assert command.main(["verify", "--from", str(tmp_path / "b")]) == 0
    summary = json.loads(capsys.readouterr().out)
    assert summary["verified"] is True
    assert summary["collections"]["messages"] == {
        "documents": 2,
        "indexes": ["tenant_channel_message_id_unique"],
        "owned": True,
    }

    (tmp_path / "b" / "messages.bson.gz").write_bytes(b"")
    assert command.main(["verify", "--from", str(tmp_path / "b")]) == 1
    captured = capsys.readouterr()
    assert captured.out == ""
    assert captured.err.startswith("verify failed: collection 'messages'")
    assert len(captured.err.splitlines()) == 1


# --- the scripts ---------------------------------------------------------------------------


@pytest.mark.parametrize("script", SCRIPTS, ids=[s.name for s in SCRIPTS])
def test_the_script_is_shellcheck_clean_and_explains_itself(script: Path) -> None:
    shellcheck = Path(sys.executable).parent / "shellcheck"
    for options in ([], ["-x"]):
        checked = subprocess.run(
            [str(shellcheck), *options, str(script)], capture_output=True, text=True, check=False
        )
        assert checked.returncode == 0, checked.stdout

    helped = subprocess.run([str(script), "--help"], capture_output=True, text=True, check=False)
    assert helped.returncode == 0, helped.stderr
    assert helped.stdout.startswith(f"Usage: scripts/{script.name} ")
    assert "Exit status" in helped.stdout

    bare = subprocess.run([str(script)], capture_output=True, text=True, check=False)
    assert bare.returncode == 2 and "Usage" in bare.stderr
