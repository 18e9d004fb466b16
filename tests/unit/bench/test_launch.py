"""How the cold-start benchmark reads ``python -X importtime``: the client libraries a health
check imports, each counted once, at its outermost line."""

from __future__ import annotations

from tests.unit.bench.support import bench_module

launch = bench_module("launch")

# A module's line follows those of what it imported, two spaces deeper (CPython's format).
IMPORTTIME = """\
import time: self [us] | cumulative | imported package
import time:       300 |        300 |       kafka.codec
import time:       200 |        500 |     kafka.record
import time:       100 |       9000 |   kafka
import time:        50 |         50 |   shared.kafka.topics
import time:       400 |      10000 | shared.kafka.producers
import time:        30 |         30 |     ssl
import time:       200 |       7000 |   redis.asyncio
import time:       900 |       8000 | redis
import time:        10 |         10 | json
""".splitlines()


def test_each_client_library_is_counted_once_where_it_was_imported() -> None:
    # kafka (inside our own module: counted), redis (with its submodules, once); not json.
    assert launch.heavy_import_us(IMPORTTIME) == 9000 + 8000


def test_nothing_heavy_is_nothing() -> None:
    assert launch.heavy_import_us(["import time:        10 |         10 | json"]) == 0
    assert launch.heavy_import_us([]) == 0
