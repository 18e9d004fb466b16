"""The round-trip counter's labels and sums (counting itself runs against real servers in
tests/integration/test_roundtrips.py)."""

from __future__ import annotations

from redis.connection import PythonRespSerializer  # type: ignore[attr-defined]  # types-redis lags redis 5+

from shared.perf.roundtrips import Tally, mongo_label, redis_label, total


def packed(*commands: tuple[str, ...]) -> list[bytes]:
    serializer = PythonRespSerializer(6000, encode)
    return [part for command in commands for part in serializer.pack(*command)]


def encode(value: object) -> bytes:
    return value if isinstance(value, bytes) else str(value).encode()


def test_a_redis_request_is_named_by_its_commands() -> None:
    assert redis_label(packed(("EVALSHA", "abc", "1", "k"))) == "EVALSHA"
    assert redis_label(packed(("LRANGE", "k", "0", "-1"), ("HGETALL", "h"))) == (
        "PIPELINE LRANGE HGETALL"
    )
    transaction = packed(("MULTI",), ("RPUSH", "k", "v"), ("EXEC",))
    assert redis_label(transaction) == "MULTI RPUSH EXEC"
    assert redis_label(b"*1\r\n$4\r\nPING\r\n") == "PING"


def test_a_mongodb_command_is_named_by_its_collection_and_statements() -> None:
    assert mongo_label("find", {"find": "messages", "filter": {}}) == "find messages"
    updates = {"update": "messages", "updates": [{}, {}]}
    assert mongo_label("update", updates) == "update messages (2)"
    assert mongo_label("ping", {"ping": 1}) == "ping"


def test_tallies_add_up() -> None:
    one = Tally(mongodb=["insert messages"], redis=["GET"])
    two = Tally(mongodb=["find messages"], kafka=["topic"])

    assert total([one, two]).counts() == {"mongodb": 2, "redis": 1, "kafka": 1}
    assert (one + two).to_dict()["detail"]["mongodb"] == ["insert messages", "find messages"]
