"""Ingress alone: ``whatsapp-webhook`` (verify, Kafka ``acks=all``, Redis dedupe mark; no
KafkaSource dispatcher, so nothing consumes what it publishes) against the bare function,
loaded by wrk with pre-signed unique WhatsApp bodies, runs interleaved A B A B.

Both run as their containers do (``WORKERS=1``, ``THREADS`` from the options) and both are up
for the whole section, so each run finds the other idle. The duplicate row repeats one body
that was already published: a Redis dedupe hit, no produce.
"""

from __future__ import annotations

import statistics
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import launch
import wrk
from launch import BASELINE, Target
from report import Line, at_least, at_most

from shared.channels import whatsapp
from shared.devstack import servers
from shared.devstack.traffic import whatsapp_body
from shared.web import HEALTH_PATH

SECTION = "ingress"
WEBHOOK = Target(
    "whatsapp-webhook", launch.ROOT / "functions/whatsapp-webhook/main.py", "/metrics", HEALTH_PATH
)
RATIO_GOAL = at_least(0.5, "ratio")
P99_GOAL_MS = at_most(25)
# Bodies per webhook run: more than it can answer in the run, so none is sent twice (the Lua
# script reports it if one was).
BODIES_PER_SECOND = 3000
WARMUP_S = 1  # wrk takes whole seconds


@dataclass(frozen=True)
class Options:
    seconds: int  # per run (wrk takes whole seconds)
    pairs: int  # A B pairs
    alone_runs: int  # clients-alone runs, one after each of the last pairs
    connections: int
    wrk_threads: int


def signed_bodies(
    secret: str, phone_number_id: str, count: int, tag: str
) -> Iterator[tuple[str, bytes]]:
    for i in range(count):
        wa_id = f"1555{i % 10_000_000:07d}"
        body = whatsapp_body(phone_number_id, wa_id, "Hello", f"wamid.BENCH{tag}{i:07d}")
        yield whatsapp.sign(secret, body), body


def section(
    options: Options, env: Mapping[str, str], work: Path, secret: str, phone_number_id: str
) -> tuple[list[Line], dict[str, Any]]:
    wrk.binary()  # missing: say how to install it before anything starts
    c, s = options.connections, options.seconds
    print(f"wrk -t{options.wrk_threads} -c{c}, {s:g} s per run, {options.pairs} pairs A B, after")
    print(f"{WARMUP_S:g} s of warm-up each; every webhook run sends bodies never sent before.")
    count = int(BODIES_PER_SECOND * s) + 1000
    files = {}
    for run in ("warm", *(f"run{i}" for i in range(options.pairs))):
        files[run] = work / f"bodies-{run}.txt"
        wrk.write_bodies(files[run], signed_bodies(secret, phone_number_id, count, run))
    duplicate = work / "bodies-duplicate.txt"
    first = next(iter(files["warm"].read_bytes().splitlines()))  # published by the warm-up
    duplicate.write_bytes((first + b"\n") * options.wrk_threads)

    started = [launch.start(t, servers.free_port(), env, work) for t in (BASELINE, WEBHOOK)]
    try:
        for running in started:
            deadline = launch.deadline(30)
            launch.wait_for(running, running.target.ready_path, lambda st: st == 200, deadline)
        hello, webhook = (r.url + "/" for r in started)
        _answers_a_signed_message(started[1], files["warm"])

        def load(name: str, url: str, bodies: Path, seconds: int = s) -> wrk.WrkResult:
            return wrk.run(
                name,
                url,
                bodies,
                whatsapp.SIGNATURE_HEADER,
                work,
                seconds=seconds,
                connections=c,
                threads=options.wrk_threads,
            )

        load("warm-up", hello, files["warm"], WARMUP_S)
        load("warm-up", webhook, files["warm"], WARMUP_S)
        base_runs, unique_runs, alone_runs = [], [], []
        for i in range(options.pairs):
            base_runs.append(load(f"baseline #{i + 1}", hello, files[f"run{i}"]))
            unique_runs.append(load(f"unique #{i + 1}", webhook, files[f"run{i}"]))
            # In the same rhythm: one measurement after the others drifts with the machine.
            if i >= options.pairs - options.alone_runs:
                alone_runs.append(clients_alone(env, seconds=min(s, 5), threads=threads_of(env)))
        duplicate_run = load("duplicate", webhook, duplicate)
    finally:
        for running in started:
            running.kill()
    ceiling = statistics.fmean(alone_runs)

    base_rps, base_p99 = _mean_rps(base_runs), _mean_p99(base_runs)
    rows = [*base_runs, *unique_runs, duplicate_run]
    for row in rows:
        print(
            f"  {row.name:<14} {row.rps:8.0f} req/s  p50 {row.p50_ms:6.1f} ms  "
            f"p99 {row.p99_ms:6.1f} ms  non-2xx {row.non_2xx}  repeated bodies {row.repeated}"
        )
    print()
    print(
        f"  clients alone: {ceiling:.0f} messages/s, the mean of "
        f"{' '.join(f'{r:.0f}' for r in alone_runs)} (dedupe read, produce acks=all, mark; "
        f"{threads_of(env)} threads of one process, no HTTP)"
    )
    print()
    unique_note = _note(unique_runs)
    lines = [
        Line(SECTION, "ingress unique: req/s vs bare function", _mean_rps(unique_runs), "req/s",
             base_rps, RATIO_GOAL, unique_note),
        Line(SECTION, "ingress unique: p99", _mean_p99(unique_runs), "ms", base_p99,
             P99_GOAL_MS),
        Line(SECTION, "ingress duplicate: req/s vs bare function", duplicate_run.rps, "req/s",
             base_rps, RATIO_GOAL, _note([duplicate_run], duplicates_expected=True)),
        Line(SECTION, "ingress duplicate: p99", duplicate_run.p99_ms, "ms", base_p99,
             P99_GOAL_MS),
        Line(SECTION, "ingress clients alone (no HTTP): msg/s vs bare function", ceiling,
             "req/s", base_rps, None,
             "the webhook's Redis and Kafka work alone: what a worker could answer at best"),
        # The proposed target (docs/performance.md, Ingress): against the clients alone.
        Line(SECTION, "ingress unique: req/s vs clients alone (proposed)",
             _mean_rps(unique_runs), "req/s", ceiling, at_least(0.4, "ratio")),
    ]  # fmt: skip
    data = {
        "connections": c,
        "wrk_threads": options.wrk_threads,
        "seconds_per_run": s,
        "runs": [row.to_json() for row in rows],
        "baseline_rps": round(base_rps, 1),
        "unique_rps": round(_mean_rps(unique_runs), 1),
        "duplicate_rps": round(duplicate_run.rps, 1),
        "clients_alone_rps": round(ceiling, 1),
        "clients_alone_runs_rps": [round(r, 1) for r in alone_runs],
    }
    return lines, data


def _mean_rps(runs: list[wrk.WrkResult]) -> float:
    return statistics.fmean(r.rps for r in runs)


def _mean_p99(runs: list[wrk.WrkResult]) -> float:
    return statistics.fmean(r.p99_ms for r in runs)


def _note(runs: list[wrk.WrkResult], duplicates_expected: bool = False) -> str:
    problems = []
    bad = sum(r.non_2xx + r.socket_errors for r in runs)
    if bad:
        problems.append(f"{bad} requests failed (non-2xx or socket errors)")
    repeated = sum(r.repeated for r in runs)
    if repeated and not duplicates_expected:
        problems.append(f"{repeated} requests re-sent a body (dedupe hits counted in)")
    return "; ".join(problems)


def _answers_a_signed_message(running: launch.Running, bodies: Path) -> None:
    """The first body, once: a webhook that refuses it (a bad tenant file, a broken build)
    would make every number below a number of errors."""
    signature, _, body = bodies.read_bytes().split(b"\n", 1)[0].partition(b"\t")
    headers = {"Content-Type": "application/json", whatsapp.SIGNATURE_HEADER: signature.decode()}
    answer = httpx.post(running.url + "/", content=body, headers=headers, trust_env=False)
    if answer.status_code != 200:
        raise running.failure(f"answered {answer.status_code} to a signed message")


def threads_of(env: Mapping[str, str]) -> int:
    return int(env.get("THREADS", "4"))


def clients_alone(env: Mapping[str, str], *, seconds: float, threads: int) -> float:
    """Messages a second that the webhook's dependency work alone sustains: the dedupe read
    (``MGET`` of the mark and the sender's two counters), the produce with ``acks=all`` and the
    mark (a pipeline: the mark, and the counters counted up), from ``threads`` threads of this
    process on the same servers, with no HTTP, no parsing, no signature. One worker answers at
    most this many unique messages whatever the web layer does."""
    import threading
    import time
    import uuid

    from shared import events
    from shared.idempotency import Deduplicator, dedupe_key, sender_count_key
    from shared.kafka import EventProducer
    from shared.models import Channel, InboundMessage, MessageKind, Sender
    from shared.settings import Settings

    def example_inbound(platform_id: str) -> InboundMessage:
        return InboundMessage(
            tenant_id="bench", channel=Channel("whatsapp"), account_id="1065", chat_id="1555",
            platform_message_id=platform_id, sender=Sender("1555", "Bench"),
            kind=MessageKind.TEXT, timestamp="2026-01-01T00:00:00Z", text="Hello",
        )  # fmt: skip

    settings = Settings.from_env(env)
    producer, dedupe = EventProducer(settings), Deduplicator(settings.redis_url)
    done = [0] * threads
    stop = time.monotonic() + seconds

    def one_thread(number: int) -> None:
        while time.monotonic() < stop:
            message = example_inbound(f"bench.{uuid.uuid4().hex}")
            ids = ("whatsapp", message.tenant_id, message.account_id)
            key = dedupe_key(*ids, message.platform_message_id, ttl_s=60)
            now = int(time.time())
            # The sender's counters as the webhook keeps them (a sender per message, as in the
            # bodies wrk sends): this minute's and this 10-second window's.
            counters = [sender_count_key(*ids, f"s{number}.{done[number]}", now // span, span)
                        for span in (60, 10)]  # fmt: skip
            dedupe.read([key], counters)
            producer.publish([(settings.inbound_topic, events.message_received(message))])
            dedupe.mark([key], counters)
            done[number] += 1

    try:
        producer.publish([(settings.inbound_topic, events.message_received(example_inbound("w")))])
        started = time.monotonic()
        workers = [threading.Thread(target=one_thread, args=(n,)) for n in range(threads)]
        for worker in workers:
            worker.start()
        for worker in workers:
            worker.join()
        return sum(done) / (time.monotonic() - started)
    finally:
        producer.close()
