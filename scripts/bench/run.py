"""``make bench`` / ``make bench-quick``: the performance targets of the Chat Service, measured.

Every line: scenario, figure, baseline (measured in the same run), ratio, target, PASS/FAIL.
Sections: ingress (wrk against ``whatsapp-webhook`` alone and the bare function), round trips
per bot turn, end to end on the whole local stack, cold start and memory. ``--quick`` runs the
same lines with fewer and shorter samples (about a minute). Results go to
``bench-results/<time>.json`` and ``bench-results/latest.json`` (git-ignored), which
``python -m shared.capacity`` reads.

These machines are noisy: compare ratios within one run, never absolute numbers across runs.
Nothing here fails on a number; the exit code is 1 only when something did not start. Every
server and function is a child process stopped by pid.
"""

from __future__ import annotations

import argparse
import io
import json
import os
import platform
import secrets
import shutil
import sys
import tempfile
import time
import traceback
from collections.abc import Callable, Sequence
from datetime import UTC, datetime
from importlib import metadata
from pathlib import Path
from typing import Any

import coldstart
import endtoend
import ingress
import launch
import turns
import wrk
from launch import ROOT
from report import Line, lines_table, tally

from shared.devstack import dependencies, servers
from shared.devstack.dependencies import ensure_topics
from shared.devstack.devtenant import write_tenants_file
from shared.devstack.functions import discover
from shared.settings import Settings

RESULTS = ROOT / "bench-results"
SECTIONS = ("ingress", "roundtrips", "e2e", "cold")


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--quick", action="store_true", help="fewer, shorter samples (about a minute)")
    p.add_argument("--only", default=",".join(SECTIONS), help="sections to run, comma-separated")
    p.add_argument("--functions", default="", help="cold start: these (default: every one)")
    p.add_argument("--threads", type=int, default=4, help="THREADS per function (WORKERS=1)")
    p.add_argument("--results", type=Path, default=RESULTS, help="the results folder")
    p.add_argument("--no-save", action="store_true", help="do not write the JSON results")
    return p.parse_args(argv)


def machine(threads: int) -> dict[str, Any]:
    model = ""
    try:
        cpuinfo = Path("/proc/cpuinfo").read_text()
        model = next(
            (ln.split(":", 1)[1].strip() for ln in cpuinfo.splitlines() if "model name" in ln),
            "",
        )
    except OSError:
        pass
    return {
        "cores": os.cpu_count() or 0,
        "usable_cores": len(os.sched_getaffinity(0)),
        "cpu": model,
        "memory_gib": round(os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / 2**30, 1),
        "load_average_at_start": [round(x, 2) for x in os.getloadavg()],
        "python": platform.python_version(),
        "functions_framework": metadata.version("functions-framework"),
        "workers": 1,
        "threads": threads,
    }


class Run:
    """The lines and data of every section, and whether anything failed to start."""

    def __init__(self) -> None:
        self.lines: list[Line] = []
        self.data: dict[str, Any] = {}
        self.did_not_start: list[str] = []

    def section(
        self,
        number: int,
        key: str,
        title: str,
        body: Callable[[], tuple[list[Line], dict[str, Any]]],
        planned: list[Line],
    ) -> None:
        """Run one section and print its lines; a section that cannot start prints its
        planned lines as not measured and the reason, and the run exits 1 in the end."""
        print(f"\n{number}. {title}")
        print("-" * (len(title) + 3))
        started = time.monotonic()
        try:
            lines, data = body()
        except (launch.BenchError, servers.ServerError, wrk.WrkMissing, RuntimeError) as exc:
            message = f"{type(exc).__name__}: {exc}"
            print(f"!!! {title} did not run: {message}")
            if not isinstance(exc, wrk.WrkMissing | launch.BenchError | servers.ServerError):
                traceback.print_exc()
            self.did_not_start.append(f"{key}: {message}")
            lines, data = planned, {"error": message}
        data["seconds"] = round(time.monotonic() - started, 1)
        for failure in data.get("did_not_start", []):
            self.did_not_start.append(f"{key}: {failure}")
        print()
        print(lines_table(lines))
        print(f"({data['seconds']:.0f} s)")
        self.lines += lines
        self.data[key] = data


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    if isinstance(sys.stdout, io.TextIOWrapper):  # each line as it is printed, even into a pipe
        sys.stdout.reconfigure(line_buffering=True)
    only = set(args.only.split(","))
    quick = args.quick
    started_at = datetime.now(UTC)
    command = "make bench-quick" if quick else "make bench"
    facts = machine(args.threads)
    print(
        f"Chat Service benchmark ({'quick' if quick else 'full'}), "
        f"{started_at:%Y-%m-%d %H:%M} UTC: {facts['usable_cores']} cores ({facts['cpu']}), "
        f"Python {facts['python']}, functions-framework {facts['functions_framework']}, "
        f"WORKERS=1 THREADS={args.threads}, loopback only, load average "
        f"{facts['load_average_at_start'][0]} at start."
    )
    print("Compare ratios within one run; absolute numbers drift between runs on shared machines.")
    run = Run()
    work = Path(tempfile.mkdtemp(prefix="chat-bench-"))  # logs, bodies, the e2e stack
    own: list[servers.Server] = []
    memory: coldstart.Memory | None = None  # measured in the background (see below)
    t0 = time.monotonic()
    try:
        # Ingress and cold start: the servers a webhook needs, fresh (MongoDB in memory).
        kafka = _started(own, servers.start_kafka(log_path=work / "kafka.log"))
        redis = _started(own, servers.start_redis(log_path=work / "redis.log"))
        mongodb = _started(
            own, servers.start_mongodb(log_path=work / "mongodb.log", standalone=True)
        )
        postgres = dependencies.postgres({}, work, work, standard_ports=False)
        if postgres.server is not None:
            own.append(postgres.server)
        settings = Settings.from_env(os.environ)
        ensure_topics(kafka.url, [settings.inbound_topic, settings.status_topic])
        # The local stack's dev tenant (an account on every channel, random secrets).
        tenants = work / "tenants.json"
        whatsapp = write_tenants_file(tenants, {})["whatsapp"][0]
        secret, phone_number_id = whatsapp["app_secret"], whatsapp["phone_number_id"]
        env = launch.function_env(kafka.url, redis.url, mongodb.url, tenants, args.threads)
        env.update(POSTGRES_URL=postgres.url, ANALYTICS_HASH_KEY=secrets.token_urlsafe(32))

        if "ingress" in only:
            options = ingress.Options(
                seconds=1 if quick else 10,  # wrk takes whole seconds
                pairs=2 if quick else 3,
                alone_runs=1 if quick else 3,
                connections=8,
                wrk_threads=2,
            )
            run.section(
                1,
                "ingress",
                "Ingress: whatsapp-webhook alone vs the bare function (wrk, A B A B)",
                lambda: ingress.section(options, env, work, secret, phone_number_id),
                _planned("ingress", ingress.SECTION),
            )
        # Counted (never timed) in a child process while the end-to-end stack starts; the
        # worker memory of the cold-start section is measured meanwhile too (memory does not
        # depend on sharing the cores; the stack's start is not a figure).
        counting = (
            turns.Pending(kafka.url, redis.url, mongodb.url, work) if "roundtrips" in only else None
        )
        memory = coldstart.Memory(env, work, secret, phone_number_id) if "cold" in only else None
        if "e2e" in only:
            e2e = endtoend.Options(
                steady_s=6.0 if quick else 30.0,
                step_s=2.0 if quick else 10.0,
                wait_s=4.0 if quick else 10.0,
                idle_s=2.0 if quick else 5.0,
                first_rate=20.0,
                growth=1.6 if quick else 1.4,
                max_rate=400.0,
                ceiling_inserts=300 if quick else 2000,
                refine=not quick,
            )
            run.section(
                2,
                "end_to_end",
                "End to end on the whole local stack: webhook 2xx -> reply at the sandbox",
                lambda: endtoend.section(
                    e2e,
                    work,
                    lambda line: print(line, flush=True),
                    ready=_waiting(counting, memory),
                    meanwhile=_meanwhile(counting, memory),
                ),
                _planned("e2e", endtoend.SECTION),
            )
        if counting is not None:
            run.section(
                3,
                "roundtrips",
                "Round trips per bot turn (scripts/bench/roundtrips.py)",
                counting.section,
                _planned("roundtrips", turns.SECTION),
            )
        endtoend.stopped()  # its stack stopped while the round trips were counted
        if memory is not None:
            names = args.functions.split(",") if args.functions else discover(ROOT / "functions")
            runs = 1 if quick else 9
            run.section(
                4,
                "cold_start",
                "Cold start and memory vs the bare function",
                lambda: coldstart.section(names, env, work, runs, memory),
                _planned("cold", coldstart.SECTION, names),
            )
    except (servers.ServerError, launch.BenchError) as exc:
        print(f"\nbench: {exc}\n(logs kept in {work})", file=sys.stderr)
        return 1
    finally:
        if memory is not None:
            memory.close()
        endtoend.stopped()
        for server in reversed(own):
            server.stop()

    total_s = time.monotonic() - t0
    counts = tally(run.lines)
    print(f"\nSummary ({command}, {total_s:.0f} s)")
    print("=" * 40)
    print(lines_table(run.lines))
    print(
        f"\n{counts['PASS']} PASS, {counts['FAIL']} FAIL, {counts['n/a']} not measured, "
        f"{counts['-']} for information. FAIL is a number to look at (noisy 2-core machine), "
        "not an error: docs/performance.md says how to read them."
    )
    if not args.no_save:
        document = {
            "date": started_at.isoformat(timespec="seconds"),
            "command": command,
            "argv": sys.argv[1:] if argv is None else list(argv),
            "quick": quick,
            "seconds": round(total_s, 1),
            "machine": facts,
            "lines": [line.to_json() for line in run.lines],
            "sections": run.data,
            "capacity_inputs": capacity_inputs(run.data),
            "did_not_start": run.did_not_start,
        }
        saved = save(document, args.results, started_at)
        print(f"results: {saved.relative_to(ROOT) if saved.is_relative_to(ROOT) else saved}")
    if run.did_not_start:
        print(f"(logs kept in {work})", file=sys.stderr)
        return 1
    shutil.rmtree(work, ignore_errors=True)
    return 0


def _waiting(*pending: turns.Pending | coldstart.Memory | None) -> Callable[[], None]:
    """What the end-to-end section calls before it measures: the counting child and the
    memory measurement done."""

    def wait() -> None:
        for work in pending:
            if work is not None:
                work.wait()

    return wait


def _meanwhile(counting: turns.Pending | None, memory: coldstart.Memory | None) -> str:
    """What runs beside the end-to-end stack's start (its start time says so)."""
    pending = (("round trips counted", counting), ("worker memory measured", memory))
    return " and ".join(what for what, work in pending if work is not None)


def _started(own: list[servers.Server], server: servers.Server) -> servers.Server:
    own.append(server)
    return server


def capacity_inputs(sections: dict[str, Any]) -> dict[str, Any]:
    """What ``python -m shared.capacity`` reads: the per-instance rates and per-message costs
    this run measured (absent when their section did not run)."""
    inputs: dict[str, Any] = {}
    ingress_data = sections.get("ingress") or {}
    if "unique_rps" in ingress_data:
        inputs["webhook_rps_per_instance"] = ingress_data["unique_rps"]
        inputs["baseline_rps_per_instance"] = ingress_data["baseline_rps"]
    e2e = sections.get("end_to_end") or {}
    per_message = e2e.get("per_message") or {}
    if per_message:
        inputs["handler_cpu_ms_per_event"] = per_message.get("handler_cpu_ms_per_event")
        inputs["handler_service_ms"] = per_message.get("handler_service_ms")
        inputs["mongodb_commands_per_message"] = per_message.get("mongodb_commands")
        inputs["redis_commands_per_message"] = per_message.get("redis_commands")
        inputs["e2e_highest_steady_rate"] = e2e.get("highest_steady_rate")
    counted = turns.per_turn(sections.get("roundtrips") or {})
    if counted:
        inputs["roundtrips_per_turn"] = counted
    return inputs


def save(document: dict[str, Any], folder: Path, started_at: datetime) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    text = json.dumps(document, indent=2) + "\n"
    path = folder / f"{started_at:%Y%m%dT%H%M%SZ}{'-quick' if document['quick'] else ''}.json"
    path.write_text(text, encoding="utf-8")
    (folder / "latest.json").write_text(text, encoding="utf-8")
    return path


def _planned(key: str, section: str, names: Sequence[str] = ()) -> list[Line]:
    """The lines a section would have printed: not measured."""
    scenarios = {
        "ingress": [
            "ingress unique: req/s vs bare function",
            "ingress unique: p99",
            "ingress duplicate: req/s vs bare function",
            "ingress duplicate: p99",
            "ingress unique: req/s vs clients alone (proposed)",
        ],
        "e2e": [
            "e2e steady 10 msg/s: p50, p99, lost, duplicated",
            "e2e steady 10 msg/s: p50 vs the handlers' own time + 2 hops (proposed)",
            "e2e highest steady rate",
            "e2e highest steady rate vs CPU ceiling (proposed)",
        ],
        "roundtrips": [f"{k} round trips per turn (worst channel)" for k in ("MongoDB", "Redis")],
        "cold": [f"{n}: launch -> first answer / healthy" for n in names]
        + [
            "whatsapp-webhook: worker RSS after 1,000 requests",
            "whatsapp-webhook: worker RSS (proposed)",
        ],
    }[key]
    return [Line(section, scenario, None) for scenario in scenarios]


if __name__ == "__main__":
    sys.exit(main())
