"""Backup and restore against a real MongoDB-protocol server: a database filled by the
service's own stores (and a document of every BSON type), backed up, dropped and restored
comes back byte for byte with the same indexes; a restore never overwrites data without
--force; a corrupt backup, an unreachable server and a non-empty --out are refused with one
line that holds no credential. Once through scripts/backup.sh and scripts/restore.sh too."""

from __future__ import annotations

import json
import os
import subprocess
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from bson import Binary, Code, Decimal128, Int64, MaxKey, MinKey, ObjectId, Regex, Timestamp
from bson.codec_options import CodecOptions
from bson.raw_bson import RawBSONDocument
from cloudevents.http import CloudEvent

from shared.audit import AuditLog
from shared.caching import clear_all
from shared.devstack.servers import free_port
from shared.errors import BadRequest
from shared.ops.backup import main
from shared.store.conversations import ConversationStore
from shared.store.indexes import ensure_indexes
from shared.store.messages import MessageStore
from shared.store.poison import PoisonStore
from tests.builders import inbound_message, outbound_message

pytestmark = pytest.mark.integration

ROOT = Path(__file__).resolve().parents[2]
NOW = datetime(2025, 6, 8, 21, 0, 0, 123_000, tzinfo=UTC)  # BSON dates hold milliseconds
EVERY_TYPE: dict[str, Any] = {
    "_id": ObjectId("665f0a0b0c0d0e0f10111213"),
    "tenant_id": "acme",
    "at": datetime(2025, 1, 2, 3, 4, 5, 678_000, tzinfo=UTC),
    "nested": {"list": [1, "two", {"three": 3.0}, [None]], "empty": {}, "none": None},
    "bytes": b"\x00\xff raw",
    "uuid": Binary(uuid.UUID("12345678-1234-5678-1234-567812345678").bytes, 4),
    "int32": 7,
    "int64": Int64(7),
    "large": 2**62 + 1,
    "smallest": -(2**63),
    "double": 0.1,
    "decimal": Decimal128("12.3450"),
    "bool": False,
    "text": "héllo 👋",
    "regex": Regex("^wa", "i"),
    "timestamp": Timestamp(1_700_000_000, 7),
    "code": Code("function () { return 1; }"),
    "min": MinKey(),
    "max": MaxKey(),
}
RAW = CodecOptions(document_class=RawBSONDocument)


@pytest.fixture
def filled(mongodb: Any) -> Iterator[Any]:
    """The test's database with every collection of the service (written by its own code),
    a document of every BSON type, and a collection the service does not own."""
    clear_all()  # the command reads MONGODB_URI / MONGODB_DATABASE through get_settings()
    ensure_indexes(mongodb, audit_retention_days=30)
    messages = MessageStore(mongodb)
    for n in range(3):
        message = inbound_message(platform_message_id=f"wamid.{n}", text=f"message {n}")
        messages.insert_inbound(f"event-{n}", message, NOW)
        ConversationStore(mongodb).record_inbound(message, NOW)
    messages.insert_outbound([outbound_message(message_id=f"reply-{n}") for n in range(2)], NOW)
    event = CloudEvent(
        {"id": "e-1", "source": "test", "type": "com.chatbot.message.received.v1"},
        {"tenant_id": "acme", "text": "hi"},
    )
    AuditLog(mongodb, clock=lambda: NOW).record(event)
    PoisonStore(mongodb).record("message-processor", event, BadRequest("no sender"), NOW)
    mongodb["pending_statuses"].insert_one(
        {"_id": "acme|whatsapp|wamid.9|read", "tenant_id": "acme", "received_at": NOW}
    )
    mongodb["messages"].insert_one(EVERY_TYPE)
    mongodb["agent_notes"].insert_many([{"note": "not ours", "at": NOW}, {"note": Int64(2)}])
    mongodb["agent_notes"].create_index([("note", 1), ("at", -1)], name="note_at", sparse=True)
    yield mongodb
    clear_all()


def snapshot(db: Any) -> dict[str, Any]:
    """Every collection's documents as the server's bytes, its indexes and its options."""
    listed = {info["name"]: info for info in db.list_collections()}
    return {
        name: {
            "documents": sorted(d.raw for d in db.get_collection(name, codec_options=RAW).find()),
            "indexes": sorted(
                ({k: v for k, v in i.items() if k != "ns"} for i in db[name].list_indexes()),
                key=lambda index: str(index["name"]),
            ),
            "options": listed[name].get("options", {}),
        }
        for name in sorted(listed)
    }


def run(*argv: str, capsys: pytest.CaptureFixture[str]) -> tuple[int, str, str]:
    status = main(list(argv))
    captured = capsys.readouterr()
    return status, captured.out, captured.err


def drop(db: Any) -> None:
    db.client.drop_database(db.name)
    assert db.list_collection_names() == []


def test_backup_then_restore_gives_back_every_document_and_index(
    filled: Any, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    before = snapshot(filled)
    stored = filled["messages"].find_one({"_id": EVERY_TYPE["_id"]})
    out = tmp_path / "backup"

    status, stdout, stderr = run("backup", "--out", str(out), capsys=capsys)

    assert status == 0, stderr
    summary = json.loads(stdout)
    assert summary["database"] == filled.name
    assert set(summary["collections"]) == set(before)
    assert summary["collections"]["messages"]["documents"] == 6
    assert summary["collections"]["conversations"]["indexes"] == [
        "tenant_channel_conversation_unique",
        "tenant_channel_participant",
        "tenant_state_last_message",
        "tenant_updated",
    ]
    assert summary["not_owned"] == ["agent_notes"]
    assert summary["collections"]["agent_notes"]["owned"] is False
    assert all(summary["collections"][name]["owned"] for name in set(before) - {"agent_notes"})
    manifest = json.loads((out / "manifest.json").read_text())
    assert sorted(p.name for p in out.iterdir()) == sorted(
        ["manifest.json", *(entry["file"] for entry in manifest["collections"].values())]
    )
    assert "backed up messages: 6 documents" in stderr

    drop(filled)
    status, stdout, stderr = run("restore", "--from", str(out), capsys=capsys)

    assert status == 0, stderr
    restored = json.loads(stdout)
    assert restored["restored_from"] == str(out)
    assert restored["collections"]["messages"]["documents"] == 6
    assert snapshot(filled) == before
    # Decoded as the service reads it: the same values of the same types, dates aware.
    document = filled["messages"].find_one({"_id": EVERY_TYPE["_id"]})
    assert document == stored == EVERY_TYPE
    assert [(k, type(v)) for k, v in document.items()] == [(k, type(v)) for k, v in stored.items()]
    assert document["at"].tzinfo is not None


def test_scripts_back_up_and_restore_with_paths_relative_to_the_caller(
    filled: Any, tmp_path: Path
) -> None:
    before = snapshot(filled)
    env = {**os.environ, "PYTHON": ""}  # let scripts/lib/python.sh choose the interpreter

    def script(name: str, *argv: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [str(ROOT / "scripts" / name), *argv],
            cwd=tmp_path,
            env=env,
            capture_output=True,
            text=True,
            timeout=120,
        )

    backed_up = script("backup.sh", "--out", "nightly")
    assert backed_up.returncode == 0, backed_up.stderr
    assert json.loads(backed_up.stdout)["backup"] == "nightly"
    assert (tmp_path / "nightly" / "manifest.json").is_file()

    drop(filled)
    restored = script("restore.sh", "--from", "nightly")
    assert restored.returncode == 0, restored.stderr
    assert snapshot(filled) == before


def test_restore_never_overwrites_documents_without_force(
    filled: Any, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    before = snapshot(filled)
    assert run("backup", "--out", str(tmp_path / "b"), capsys=capsys)[0] == 0
    filled["conversations"].insert_one({"_id": "acme:slack:T/C", "tenant_id": "acme"})
    filled["messages"].delete_one({"_id": "event-0"})
    filled["audit"].drop()
    changed = snapshot(filled)

    status, stdout, stderr = run("restore", "--from", str(tmp_path / "b"), capsys=capsys)

    assert status == 1
    assert stdout == ""
    assert stderr.startswith("restore failed: ")
    assert "conversations, messages" in stderr and "--force" in stderr
    assert len(stderr.splitlines()) == 1
    assert snapshot(filled) == changed

    status, stdout, stderr = run("restore", "--from", str(tmp_path / "b"), "--force", capsys=capsys)

    assert status == 0, stderr
    assert json.loads(stdout)["collections"]["messages"]["replaced"] is True
    assert snapshot(filled) == before


def test_a_tampered_backup_is_refused_before_anything_is_written(
    filled: Any, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "b"
    assert run("backup", "--out", str(out), capsys=capsys)[0] == 0
    data = out / "messages.bson.gz"
    content = bytearray(data.read_bytes())
    content[len(content) // 2] ^= 0x01
    data.write_bytes(bytes(content))
    drop(filled)

    status, stdout, stderr = run("restore", "--from", str(out), capsys=capsys)

    assert status == 1
    assert stdout == ""
    assert "collection 'messages'" in stderr and "corrupt" in stderr
    assert "Traceback" not in stderr
    assert filled.list_collection_names() == []


def test_an_unreachable_server_is_one_line_without_the_password(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    port = free_port()
    uri = f"mongodb://user:s3cret@127.0.0.1:{port}/"

    status, stdout, stderr = run(
        "backup", "--uri", uri, "--database", "chat_service", "--out", str(tmp_path / "b"),
        capsys=capsys,
    )  # fmt: skip

    assert status == 1
    assert stdout == ""
    assert stderr.startswith(f"backup failed: MongoDB at 127.0.0.1:{port} is unreachable")
    assert len(stderr.splitlines()) == 1
    assert "s3cret" not in stderr and "user" not in stderr
    assert not (tmp_path / "b").exists()

    # The same through the script, from the environment: no traceback from the process either.
    env = {**os.environ, "MONGODB_URI": uri, "MONGODB_DATABASE": "chat_service"}
    result = subprocess.run(
        [str(ROOT / "scripts" / "restore.sh"), "--from", str(tmp_path)],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 1
    assert result.stderr.startswith(f"restore failed: MongoDB at 127.0.0.1:{port} is unreachable")
    assert len(result.stderr.splitlines()) == 1
    assert "s3cret" not in result.stdout + result.stderr
    assert "Traceback" not in result.stderr


def test_an_out_directory_that_holds_files_is_refused(
    filled: Any, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "b"
    out.mkdir()
    (out / "previous.txt").write_text("keep me")

    status, stdout, stderr = run("backup", "--out", str(out), capsys=capsys)

    assert status == 1
    assert stdout == ""
    assert "exists and is not empty" in stderr
    assert [p.name for p in out.iterdir()] == ["previous.txt"]
    assert [p.name for p in tmp_path.iterdir()] == ["b"]  # no staging directory left behind


def test_a_restore_into_another_database_names_both(
    filled: Any, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    before = snapshot(filled)
    assert run("backup", "--out", str(tmp_path / "b"), capsys=capsys)[0] == 0
    other = filled.client[f"{filled.name}_restored"]
    try:
        status, stdout, stderr = run(
            "restore", "--from", str(tmp_path / "b"), "--database", other.name, capsys=capsys
        )

        assert status == 0, stderr
        summary = json.loads(stdout)
        assert summary["database"] == other.name
        assert summary["backup"]["database"] == filled.name
        assert snapshot(other) == before
    finally:
        filled.client.drop_database(other.name)
