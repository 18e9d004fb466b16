"""Cold start and memory: every function against the bare function, launched the same way,
from bytecode compiled beforehand as the image ships it.

- launch → the first answer of any status on ``/metrics`` (the module imported, gunicorn
  serving), and → the first 200 on ``/api/v2/health`` with Kafka, Redis and MongoDB up (the
  health check's lazy client imports and connections included); the baseline: ``GET /``.
  Healthy is also shown less the import of the client libraries the health check loads (the
  proposed target, docs/performance.md), measured in a fresh interpreter after ``create_app``.
  Launches are interleaved (the bare function before every four functions and once more at
  the end), medians.
- ``create_app`` of every function in one interpreter: which heavy client libraries it loads
  (none should be: clients are made after gunicorn forks).
- the worker's resident memory after 1,000 requests: ``whatsapp-webhook`` answering signed
  unique messages against the bare function answering the same POSTs (:class:`Memory`, in
  the background while the bench does untimed work).
"""

from __future__ import annotations

import contextlib
import statistics
import subprocess
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import launch
import load
import procstat
from launch import BASELINE, Target
from report import Line, at_most

from shared.channels import whatsapp
from shared.devstack import servers
from shared.devstack.traffic import whatsapp_body

SECTION = "cold start"
FIRST_ANSWER_GOAL = at_most(1.3, "ratio")
HEALTHY_GOAL = at_most(1.5, "ratio")
RSS_GOAL = at_most(1.5, "ratio")
RSS_PROPOSED_GOAL = at_most(2.0, "ratio")
RSS_REQUESTS = 1000
# The bare function is launched again after this many functions: every ratio is against the
# median of several of its launches spread over the section, not one (``--quick`` runs each
# function once) that happened to be fast or slow.
BASELINE_EVERY = 4


def section(
    functions: list[str],
    env: Mapping[str, str],
    work: Path,
    runs: int,
    memory: Memory,
) -> tuple[list[Line], dict[str, Any]]:
    """``memory``: started earlier, overlapping untimed work (it is waited for here, before
    the first timed launch)."""
    try:
        base_rss, webhook_rss = memory.result()
        rss_note = ""
    except Exception as exc:  # reported on its lines; the launch lines are still measured
        base_rss = webhook_rss = None
        rss_note = (str(exc).splitlines() or [type(exc).__name__])[0]
        print(f"!!! worker memory not measured: {type(exc).__name__}: {exc}")
    targets = [BASELINE, *(launch.function_target(name) for name in functions)]
    launch.compile_bytecode(targets)
    order = launch_order(targets[1:], runs)
    print(
        f"{len(targets) - 1} functions x {runs} launches, the bare function before every "
        f"{BASELINE_EVERY} and at the end ({order.count(BASELINE)} launches); medians."
    )
    samples: dict[str, tuple[list[float], list[float]]] = {t.name: ([], []) for t in targets}
    failed: dict[str, str] = {}  # a function that did not start: the others are still measured
    for target in order:
        if target.name in failed:
            continue
        try:
            first, ready = launch.cold_start(target, servers.free_port(), env, work)
        except launch.BenchError as exc:
            if target is BASELINE:
                raise
            failed[target.name] = str(exc).splitlines()[0]
            print(f"!!! {exc}")
            continue
        samples[target.name][0].append(first)
        samples[target.name][1].append(ready)
    medians = {
        name: (statistics.median(firsts) * 1000, statistics.median(readies) * 1000)
        for name, (firsts, readies) in samples.items()
        if name not in failed
    }
    base_first, base_ready = medians[BASELINE.name]
    clients = _client_imports(
        [t for t in targets[1:] if t.name not in failed], env, 3 if runs > 1 else 1
    )
    lines: list[Line] = []
    for name in functions:
        measured = medians.get(name)
        lines.append(
            Line(SECTION, f"{name}: launch -> first answer", measured and measured[0], "ms",
                 base_first, FIRST_ANSWER_GOAL, failed.get(name, ""))
        )  # fmt: skip
        lines.append(
            Line(SECTION, f"{name}: launch -> healthy", measured and measured[1], "ms",
                 base_ready, HEALTHY_GOAL)
        )  # fmt: skip
        # The proposed target (docs/performance.md): the same, less what importing the client
        # libraries its health check needs costs (measured in a fresh interpreter).
        probed = clients.get(name, failed.get(name, ""))
        less = measured[1] - probed if measured and isinstance(probed, float) else None
        lines.append(
            Line(SECTION, f"{name}: launch -> healthy less client imports", less, "ms",
                 base_ready, HEALTHY_GOAL,
                 f"client imports {probed:.0f} ms" if less is not None else str(probed))
        )  # fmt: skip

    imported = launch.imports(targets, env)
    heavy = {name: sample.heavy for name, sample in imported.items() if sample.heavy}
    lines.append(
        Line(
            SECTION,
            "heavy client modules loaded by create_app",
            float(sum(len(modules) for modules in heavy.values())),
            "",
            None,
            at_most(0),
            "; ".join(f"{name}: {', '.join(mods)}" for name, mods in heavy.items()),
        )
    )

    lines.append(
        Line(SECTION, f"whatsapp-webhook: worker RSS after {RSS_REQUESTS:,} requests",
             webhook_rss, "MiB", base_rss, RSS_GOAL, rss_note)
    )  # fmt: skip
    # The proposed target (docs/performance.md, Cold start and memory): kafka-python and
    # redis-py alone, imported, take more than the 1.5x target leaves.
    lines.append(
        Line(SECTION, "whatsapp-webhook: worker RSS (proposed)", webhook_rss, "MiB", base_rss,
             RSS_PROPOSED_GOAL, rss_note or "the Kafka and Redis clients alone add ~18 MiB")
    )  # fmt: skip
    data = {
        "runs": runs,
        "milliseconds": {
            name: {"first_answer": round(first, 1), "healthy": round(ready, 1)}
            for name, (first, ready) in medians.items()
        },
        "client_imports_ms": {
            name: round(ms, 1) for name, ms in clients.items() if isinstance(ms, float)
        },
        "create_app_ms_one_interpreter": {
            name: round(sample.create_app_s * 1000, 1) for name, sample in imported.items()
        },
        "heavy_modules": heavy,
        "worker_rss_mib": {"baseline": base_rss, "whatsapp-webhook": webhook_rss},
        "did_not_start": [f"{name}: {why}" for name, why in failed.items()]
        + ([f"worker memory: {rss_note}"] if rss_note else []),
    }
    return lines, data


class Memory:
    """The worker RSS of ``whatsapp-webhook`` and of the bare function after
    ``RSS_REQUESTS`` requests each, measured in the background from the moment it is made.
    Memory, unlike time, does not depend on sharing the cores: the bench starts this while it
    does untimed work (the end-to-end stack starting), never beside a timed line."""

    def __init__(self, env: Mapping[str, str], work: Path, secret: str, phone_number_id: str):
        self._running: list[launch.Running] = []
        self._closed = False
        self._lock = threading.Lock()
        pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix="bench-memory")
        self._future = pool.submit(self._measure, env, work, secret, phone_number_id)
        pool.shutdown(wait=False)

    def _measure(
        self, env: Mapping[str, str], work: Path, secret: str, phone_number_id: str
    ) -> tuple[float | None, float | None]:
        webhook = launch.function_target("whatsapp-webhook")
        launch.compile_bytecode([BASELINE, webhook])  # as the cold starts run them
        requests = [
            (body, {"Content-Type": "application/json", whatsapp.SIGNATURE_HEADER: signature})
            for signature, body in _signed(secret, phone_number_id, RSS_REQUESTS)
        ]
        with ThreadPoolExecutor(max_workers=2) as both:
            base = both.submit(_rss_after, BASELINE, requests, env, work, self._started)
            hooked = both.submit(_rss_after, webhook, requests, env, work, self._started)
            return base.result(), hooked.result()

    def _started(self, running: launch.Running) -> None:
        with self._lock:
            self._running.append(running)
            closed = self._closed
        if closed:  # launched after close(): it is not wanted either
            running.kill()

    def wait(self) -> None:
        """Until both are measured, whatever the outcome (the next section is timed)."""
        with contextlib.suppress(Exception):
            self._future.result()

    def result(self) -> tuple[float | None, float | None]:
        """The bare function's, then the webhook's, in MiB; raises what the measurement
        raised."""
        return self._future.result()

    def close(self) -> None:
        """Whatever it launched killed (the bench ending early); measured or not."""
        with self._lock:
            self._closed = True
            running = list(self._running)
        for process in running:
            with contextlib.suppress(Exception):
                process.kill()


def launch_order(functions: Sequence[Target], runs: int) -> list[Target]:
    """``runs`` rounds of every function, the bare function before each ``BASELINE_EVERY`` of
    them, and once more at the very end."""
    order: list[Target] = []
    for _ in range(runs):
        for start in range(0, len(functions), BASELINE_EVERY):
            order += [BASELINE, *functions[start : start + BASELINE_EVERY]]
    return [*order, BASELINE]


def _client_imports(
    targets: list[Target], env: Mapping[str, str], runs: int
) -> dict[str, float | str]:
    """Each target's client imports (median of ``runs`` fresh interpreters), two probes at a
    time: one per core of these machines, so each still has a core to itself. A probe that
    fails leaves its target's line unmeasured, with the reason, and the others measured."""
    with ThreadPoolExecutor(max_workers=2) as pool:
        futures = {
            target.name: [pool.submit(launch.client_imports_ms, target, env) for _ in range(runs)]
            for target in targets
        }
        results: dict[str, float | str] = {}
        for name, pending in futures.items():
            try:
                results[name] = statistics.median(f.result() for f in pending)
            except (launch.BenchError, subprocess.TimeoutExpired) as exc:
                results[name] = str(exc).splitlines()[0]
                print(f"!!! {exc}")
        return results


def _signed(secret: str, phone_number_id: str, count: int) -> list[tuple[str, bytes]]:
    tag = str(time.time_ns())
    bodies = [
        whatsapp_body(phone_number_id, f"1666{i:07d}", "Hello", f"wamid.RSS{tag}{i:05d}")
        for i in range(count)
    ]
    return [(whatsapp.sign(secret, body), body) for body in bodies]


def _rss_after(
    target: Target,
    requests: Sequence[load.Request],
    env: Mapping[str, str],
    work: Path,
    started: Callable[[launch.Running], None],
) -> float | None:
    """A fresh process: healthy, ``len(requests)`` POSTs from 4 client threads, then its
    worker's resident memory in MiB. ``started``: told of the process as soon as it runs."""
    running = launch.start(target, servers.free_port(), env, work)
    started(running)
    try:
        launch.wait_for(running, target.ready_path, lambda s: s == 200, launch.deadline(30))
        result = load.run(
            target.name,
            running.url + "/",
            requests,
            concurrency=4,
            max_requests=len(requests),
            max_seconds=60,
        )
        if result.statuses.get(200, 0) != len(requests):
            raise launch.BenchError(f"{target.name} answered {dict(result.statuses)}")
        rss = procstat.worker_rss_kib(running.proc.pid)
        return None if rss is None else rss / 1024
    finally:
        running.kill()
