"""The embedded MongoDB-protocol server (PyPI ``secantusdb``), launched with one planner fix.

``python -m shared.devstack.mongod <secantusd-py arguments>`` is ``secantusd-py`` itself, after
one change to how its write paths pick candidate documents.

Why: a ``findAndModify`` that matches a document writes it with the filter
``{"_id": <matched id>, "$and": [<the query>]}`` (secantusdb 0.7.0b3, ``commands.py``), and
the server's candidate picker gives up on any filter with a top-level operator — so every
``findAndModify`` that matched anything scanned the whole collection to write one document.
The bot turn makes several (the inbound message's processing steps, the conversation, the
reply's delivery claim); seen with py-spy during the 2,000-message conversation test: 80 % of
the server's samples in these scans, replies slowing from 6/s to 2/s as ``messages`` grew.
MongoDB itself serves such a filter from the ``_id`` index; this does the same: with an
``_id`` equality in the filter, the candidates are the documents with that ``_id`` (the
callers check every candidate against the whole filter, as they do for any index lookup that
serves one clause). Production runs MongoDB: nothing here is deployed.

And one change to its stop: the server closes its listening socket and then waits up to 2 s
for its accept thread, which ``close()`` does not wake from a blocking ``accept()`` (Linux);
``shutdown()`` does, so a stop takes milliseconds instead of 2 s (every stack and test server).
"""

from __future__ import annotations

import contextlib
import socket
import sys
from typing import Any


def _by_id_first(original: Any) -> Any:
    def pick(
        self: Any, db: str, coll: str, filter: dict[str, Any], *, collation: Any = None
    ) -> Any:
        if (
            collation is None
            and isinstance(filter, dict)
            and "_id" in filter
            and len(filter) > 1
            and not isinstance(filter["_id"], dict)
        ):
            found = original(self, db, coll, {"_id": filter["_id"]})
            if found is not None:
                return found
        return original(self, db, coll, filter, collation=collation)

    return pick


def _waking_accept(original: Any) -> Any:
    def stop(self: Any) -> None:
        listening = self._socket
        if listening is not None:
            with contextlib.suppress(OSError):
                listening.shutdown(socket.SHUT_RDWR)
        original(self)

    return stop


def patch() -> None:
    from secantus import server, storage

    picker = storage.Storage._try_index_id_keys
    if not getattr(picker, "_by_id_first", False):
        pick = _by_id_first(picker)
        pick._by_id_first = True
        storage.Storage._try_index_id_keys = pick
    stop = server.SecantusDBServer.stop
    if not getattr(stop, "_waking_accept", False):
        quick = _waking_accept(stop)
        quick._waking_accept = True
        server.SecantusDBServer.stop = quick


def main() -> int:
    patch()
    from secantus.cli import main as serve

    sys.argv[0] = "secantusd-py"
    return int(serve() or 0)


if __name__ == "__main__":
    sys.exit(main())
