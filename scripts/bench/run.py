"""`make bench`: cold start, import time and warm throughput, as ratios against a baseline.

The baseline is a bare functions-framework HTTP function (``scripts/bench/hello``), measured in
the same run on the same machine: these machines are noisy, so only the ratios mean anything
from one run to the next. Nothing here passes or fails on a number; the exit code is 1 only
when something did not start. Every server and function is a child process stopped by pid.
"""

from __future__ import annotations

import argparse
import copy
import json
import os
import platform
import secrets
import shutil
import statistics
import sys
import tempfile
import time
import uuid
from collections.abc import Callable, Sequence
from importlib import metadata
from pathlib import Path
from typing import Any

import launch
import load
from launch import ROOT, BenchError, Target

from shared.channels import whatsapp
from shared.devstack import servers
from shared.devstack.dependencies import ensure_topics
from shared.devstack.functions import discover
from shared.settings import Settings
from shared.web import HEALTH_PATH

BASELINE = Target(
    "baseline (hello)", Path(__file__).resolve().parent / "hello" / "main.py", "/", "/"
)
SAMPLE = ROOT / "tests" / "data" / "whatsapp" / "text_message.json"
PHONE_NUMBER_ID = "106540352242922"  # the account in the sample payload
WARMUP_REQUESTS = 100


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--runs", type=int, default=5, help="cold starts and imports per function")
    p.add_argument("--requests", type=int, default=2000, help="requests per throughput row")
    p.add_argument("--seconds", type=float, default=15.0, help="time cap per throughput row")
    p.add_argument("--concurrency", type=int, default=8, help="client threads")
    p.add_argument("--threads", type=int, default=4, help="THREADS per function (WORKERS=1)")
    p.add_argument("--functions", default="", help="comma-separated (default: all in functions/)")
    p.add_argument("--only", default="cold,import,load", help="sections to run")
    p.add_argument("--out", type=Path, help="also write the results as JSON here")
    return p.parse_args(argv)


def median_ms(values: Sequence[float]) -> float:
    return statistics.median(values) * 1000


def ratio(value: float, base: float) -> str:
    return f"{value / base:.2f}x" if base else "-"


def table(headers: Sequence[str], rows: Sequence[Sequence[str]], text: int = 1) -> None:
    """The first ``text`` columns and a last non-numeric column left-aligned, numbers right."""
    widths = [max(len(h), *(len(r[i]) for r in rows)) for i, h in enumerate(headers)]
    left = {i for i in range(len(headers)) if i < text or not rows[0][i][:1].isdigit()}

    def line(cells: Sequence[str]) -> str:
        return "  ".join(
            c.ljust(w) if i in left else c.rjust(w)
            for i, (c, w) in enumerate(zip(cells, widths, strict=True))
        ).rstrip()

    print(line(headers))
    print("  ".join("-" * w for w in widths))
    for row in rows:
        print(line(row))
    print()


def cold_section(targets: list[Target], env: dict[str, str], logs: Path, runs: int) -> Any:
    print("1. Cold start: launch -> first answer of any status on the probe path, and -> first")
    print(f"   200 on GET {HEALTH_PATH} (real Kafka, Redis, MongoDB up); the baseline: GET /.")
    print(f"   Probe path: GET /metrics (no dependency). Medians of {runs}, launches interleaved.")
    samples: dict[str, tuple[list[float], list[float]]] = {t.name: ([], []) for t in targets}
    for _ in range(runs):
        for target in targets:
            first, ready = launch.cold_start(target, servers.free_port(), env, logs)
            samples[target.name][0].append(first)
            samples[target.name][1].append(ready)
    base_first, base_ready = (median_ms(s) for s in samples[BASELINE.name])
    rows, out = [], {}
    for name, (firsts, readies) in samples.items():
        first, ready = median_ms(firsts), median_ms(readies)
        out[name] = {"first_answer_ms": round(first, 1), "ready_ms": round(ready, 1)}
        rows.append([name, f"{first:.0f} ms", ratio(first, base_first)])
        rows[-1] += [f"{ready:.0f} ms", ratio(ready, base_ready)]
    table(["function", "first answer", "ratio", "healthy (200)", "ratio"], rows)
    return out


def import_section(targets: list[Target], env: dict[str, str], runs: int) -> Any:
    heavy = ", ".join(launch.HEAVY_MODULES)
    print("2. Import: functions_framework.create_app('handle', source) in a fresh interpreter")
    print("   (functions_framework itself imported first, not counted); 'process' is interpreter")
    print(f"   start -> exit. Medians of {runs}. After create_app, sys.modules checked for:")
    print(f"   {heavy}.")
    samples: dict[str, list[launch.ImportSample]] = {t.name: [] for t in targets}
    for _ in range(runs):
        for target in targets:
            samples[target.name].append(launch.import_time(target, env))
    base = samples[BASELINE.name]
    base_app = median_ms([s.create_app_s for s in base])
    base_proc = median_ms([s.process_s for s in base])
    rows, out = [], {}
    for name, runs_of in samples.items():
        app = median_ms([s.create_app_s for s in runs_of])
        proc = median_ms([s.process_s for s in runs_of])
        loaded = sorted({m for s in runs_of for m in s.heavy})
        out[name] = {"create_app_ms": round(app, 1), "process_ms": round(proc, 1), "heavy": loaded}
        rows.append([name, f"{app:.0f} ms", ratio(app, base_app), f"{proc:.0f} ms"])
        rows[-1] += [ratio(proc, base_proc), ", ".join(loaded) or "none (lazy)"]
    table(["function", "create_app", "ratio", "process", "ratio", "heavy modules loaded"], rows)
    return out


def whatsapp_requests(secret: str, count: int, tag: str) -> list[load.Request]:
    template = json.loads(SAMPLE.read_text(encoding="utf-8"))
    requests: list[load.Request] = []
    for i in range(count):
        doc = copy.deepcopy(template)
        message = doc["entry"][0]["changes"][0]["value"]["messages"][0]
        message["id"] = f"wamid.bench-{tag}-{i:06d}"
        message["timestamp"] = str(int(time.time()))
        body = json.dumps(doc).encode()
        headers = {"Content-Type": "application/json"}
        requests.append((body, {**headers, whatsapp.SIGNATURE_HEADER: whatsapp.sign(secret, body)}))
    return requests


def with_function(
    target: Target, env: dict[str, str], logs: Path, body: Callable[[str], load.LoadResult]
) -> load.LoadResult:
    running = launch.start(target, servers.free_port(), env, logs)
    try:
        launch.wait_for(running, target.ready_path, lambda s: s == 200, time.perf_counter() + 30)
        return body(running.url + "/")
    finally:
        running.stop()


def load_section(args: argparse.Namespace, env: dict[str, str], logs: Path, secret: str) -> Any:
    c, n, cap = args.concurrency, args.requests, args.seconds
    print(f"3. Warm throughput: POST / from {c} client threads (one httpx keep-alive client each),")
    print(f"   {n} requests or {cap:.0f} s, whichever first, after {WARMUP_REQUESTS} warm-ups.")
    print("   whatsapp-webhook answers after Kafka acks=all (Tansu) with a Redis dedupe mark;")
    print("   'duplicate' repeats one already-published signed body (dedupe hit, no produce).")
    tag = uuid.uuid4().hex[:12]
    warmup = whatsapp_requests(secret, WARMUP_REQUESTS, tag + "-warm")
    unique = whatsapp_requests(secret, n, tag)
    webhook = Target(
        "whatsapp-webhook", ROOT / "functions/whatsapp-webhook/main.py", "/metrics", HEALTH_PATH
    )

    def measured(name: str, requests: list[load.Request]) -> Callable[[str], load.LoadResult]:
        def go(url: str) -> load.LoadResult:
            opts: dict[str, Any] = {"concurrency": c, "max_seconds": cap}
            load.run("warm-up", url, warmup, max_requests=WARMUP_REQUESTS, **opts)
            return load.run(name, url, requests, max_requests=n, **opts)

        return go

    base = with_function(BASELINE, env, logs, measured("baseline (hello)", unique))
    fresh = with_function(webhook, env, logs, measured("whatsapp-webhook, unique", unique))
    dupe = with_function(webhook, env, logs, measured("whatsapp-webhook, duplicate", warmup[:1]))
    rows, out = [], {}
    for result in (base, fresh, dupe):
        out[result.name] = result.summary()
        bad = result.requests - result.statuses.get(200, 0)
        cpu = f"{100 * result.client_cpu_s / result.seconds:.0f}%" if result.seconds else "-"
        rows.append([result.name, str(result.requests), str(bad), f"{result.rps:.0f}"])
        rows[-1] += [ratio(result.rps, base.rps), f"{result.p50_ms:.1f}", f"{result.p95_ms:.1f}"]
        rows[-1] += [ratio(result.p50_ms, base.p50_ms), str(result.published)]
        rows[-1] += [str(result.duplicates), cpu]
    headers = ["row", "requests", "non-200", "req/s", "ratio", "p50 ms", "p95 ms", "p50 ratio"]
    table([*headers, "published", "duplicates", "client CPU"], rows)
    print("   client CPU: the load generator's own CPU time / wall time (100% = one core),")
    print("   on the same cores as the server; a saturated client caps every row alike.\n")
    return out


def function_env(
    kafka: str, redis: str, mongodb: str, tenants: Path, threads: int
) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k != "TENANTS_JSON"}  # it would win
    env.update(
        KAFKA_BROKERS=kafka,
        REDIS_URL=redis,
        MONGODB_URI=mongodb,
        TENANTS_FILE=str(tenants),
        WORKERS="1",
        THREADS=str(threads),
        PYTHONPATH=os.pathsep.join(filter(None, [str(ROOT), env.get("PYTHONPATH")])),
        PYTHONUNBUFFERED="1",
    )
    return env


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    sections = set(args.only.split(","))
    names = args.functions.split(",") if args.functions else discover(ROOT / "functions")
    targets = [
        BASELINE,
        *(Target(n, ROOT / "functions" / n / "main.py", "/metrics", HEALTH_PATH) for n in names),
    ]
    cores = os.cpu_count() or 0
    machine = {
        "cores": cores,
        "usable_cores": len(os.sched_getaffinity(0)),
        "python": platform.python_version(),
        "functions_framework": metadata.version("functions-framework"),
        "workers": 1,
        "threads": args.threads,
    }
    print(
        f"Chat Service benchmark: {cores} cores ({machine['usable_cores']} usable), "
        f"Python {machine['python']}, functions-framework {machine['functions_framework']}, "
        f"WORKERS=1 THREADS={args.threads}, loopback only."
    )
    print(
        "Compare ratios within one run; absolute numbers drift between runs on shared machines.\n"
    )
    results: dict[str, Any] = {"machine": machine}
    started: list[servers.Server] = []
    t0 = time.monotonic()
    work = Path(tempfile.mkdtemp(prefix="chat-bench-"))  # the servers' and functions' logs
    try:
        kafka = servers.start_kafka(log_path=work / "kafka.log")
        started.append(kafka)
        redis = servers.start_redis(log_path=work / "redis.log")
        started.append(redis)
        mongodb = servers.start_mongodb(log_path=work / "mongodb.log")
        started.append(mongodb)
        settings = Settings.from_env(os.environ)
        topics = [settings.inbound_topic, settings.status_topic, settings.outbound_topic]
        ensure_topics(kafka.url, [*topics, settings.audit_topic])
        secret = secrets.token_urlsafe(24)
        tenants = work / "tenants.json"
        account = {"phone_number_id": PHONE_NUMBER_ID, "app_secret": secret, "verify_token": "v"}
        tenants.write_text(json.dumps({"tenants": [{"id": "bench", "whatsapp": [account]}]}))
        env = function_env(kafka.url, redis.url, mongodb.url, tenants, args.threads)
        if "cold" in sections:
            results["cold_start"] = cold_section(targets, env, work, args.runs)
        if "import" in sections:
            results["import"] = import_section(targets, env, args.runs)
        if "load" in sections:
            results["throughput"] = load_section(args, env, work, secret)
    except (BenchError, servers.ServerError) as exc:
        sys.stdout.flush()
        print(f"bench: {exc}\n(logs kept in {work})", file=sys.stderr)
        return 1
    finally:
        for server in reversed(started):
            server.stop()
    shutil.rmtree(work, ignore_errors=True)
    print(f"total {time.monotonic() - t0:.0f} s")
    if args.out:
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.write_text(json.dumps(results, indent=2) + "\n", encoding="utf-8")
        print(f"results written to {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
