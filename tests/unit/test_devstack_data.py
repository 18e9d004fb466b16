"""The local stack's MongoDB stays fast: a fresh data directory unless --keep-data, and a
warning once kept data grows past what the embedded server handles well."""

from __future__ import annotations

from pathlib import Path

from shared.devstack import devdata
from shared.devstack.__main__ import parse_args
from shared.devstack.devdata import WARN_DOCUMENTS, WARN_OPLOG_ENTRIES, DataSize
from shared.devstack.stack import Options


def test_a_fresh_directory_is_empty_and_says_whether_data_was_there(tmp_path: Path) -> None:
    data = tmp_path / "mongodb"
    assert devdata.fresh(data) is False  # nothing yet
    (data / "collection-1.wt").write_bytes(b"x")
    (data / "journal").mkdir()
    assert devdata.fresh(data) is True
    assert data.is_dir() and not any(data.iterdir())


def test_no_warning_while_the_data_is_small() -> None:
    assert DataSize(documents=WARN_DOCUMENTS, oplog_entries=0).warning() is None
    assert DataSize(documents=10, oplog_entries=WARN_OPLOG_ENTRIES).warning() is None


def test_a_warning_past_the_documents_the_server_handles_well() -> None:
    warning = DataSize(documents=WARN_DOCUMENTS + 1, oplog_entries=0).warning()
    assert warning is not None
    assert f"{WARN_DOCUMENTS + 1:,} documents" in warning
    assert "without --keep-data" in warning


def test_a_warning_for_an_oplog_left_by_a_replica_set_run() -> None:
    warning = DataSize(documents=100, oplog_entries=WARN_OPLOG_ENTRIES + 1).warning()
    assert warning is not None and "oplog" in warning


def test_make_run_starts_fresh_unless_asked_to_keep_the_data(tmp_path: Path) -> None:
    assert Options(state_dir=tmp_path).keep_data is False
    assert parse_args([]).keep_data is False
    assert parse_args(["--keep-data"]).keep_data is True
