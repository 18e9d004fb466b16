"""The embedded MongoDB server's launcher: its stop wakes the thread blocked in accept()."""

from __future__ import annotations

import contextlib
import socket
import threading
from types import SimpleNamespace

import pytest

from shared.devstack import mongod


def test_the_stop_wakes_a_thread_blocked_in_accept() -> None:
    listening = socket.create_server(("127.0.0.1", 0))
    accepting = threading.Thread(target=lambda: _accept(listening), daemon=True)
    accepting.start()
    woken: list[bool] = []

    def original_stop(server: object) -> None:  # secantus: close, then join the thread
        listening.close()
        accepting.join(timeout=10)
        woken.append(not accepting.is_alive())

    mongod._waking_accept(original_stop)(SimpleNamespace(_socket=listening))
    assert woken == [True]


def test_the_patch_is_applied_once(monkeypatch: pytest.MonkeyPatch) -> None:
    from secantus import server, storage

    # Put back at the end what the patch replaces (it is meant for the server's process).
    monkeypatch.setattr(server.SecantusDBServer, "stop", server.SecantusDBServer.stop)
    picker = storage.Storage._try_index_id_keys
    monkeypatch.setattr(storage.Storage, "_try_index_id_keys", picker)
    mongod.patch()
    stop = server.SecantusDBServer.stop
    mongod.patch()
    assert server.SecantusDBServer.stop is stop and stop._waking_accept


def _accept(listening: socket.socket) -> None:
    with contextlib.suppress(OSError):
        listening.accept()
