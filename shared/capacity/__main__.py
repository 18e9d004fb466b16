"""``python -m shared.capacity --messages-per-day N [--peak-factor F]``: partitions, instances
and ``max-scale`` per function, MongoDB, Redis, Kafka and PostgreSQL load at peak, and what
saturates first — from the latest ``make bench`` results and documented assumptions."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from pathlib import Path

from shared.capacity import inputs
from shared.capacity.model import Figure, Plan, Rates, Traffic, plan

NEAR = 0.7  # a limit used this much at peak is worth a look


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(prog="python -m shared.capacity", description=__doc__)
    p.add_argument("--messages-per-day", type=float, required=True, help="end users' messages")
    p.add_argument("--peak-factor", type=float, default=3.0, help="busiest hour / mean (3)")
    p.add_argument(
        "--statuses-per-reply", type=float, default=2.0, help="delivery receipts per reply (2)"
    )
    p.add_argument(
        "--busiest-channel-share",
        type=float,
        default=0.6,
        help="share of the webhooks at the busiest channel's function (0.6)",
    )
    p.add_argument("--results", type=Path, default=inputs.LATEST, help="bench results JSON")
    p.add_argument("--overlay", type=Path, default=inputs.OVERLAY, help="what is deployed")
    return p.parse_args(argv)


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    results = inputs.load_results(args.results)
    rates = inputs.rates(results)
    deployed, where = inputs.deployment(args.overlay)
    traffic = Traffic(
        messages_per_day=args.messages_per_day,
        peak_factor=args.peak_factor,
        statuses_per_reply=args.statuses_per_reply,
        busiest_channel_share=args.busiest_channel_share,
    )
    print(report(plan(traffic, rates, deployed), rates, results is not None, where))
    return 0


def report(result: Plan, rates: Rates, have_results: bool, deployed_from: str) -> str:
    t = result.traffic
    out = [
        f"{t.messages_per_day:,.0f} messages/day, peak x{t.peak_factor:g} = "
        f"{result.peak_messages_per_s:,.1f} messages/s; {t.statuses_per_reply:g} statuses per "
        f"reply -> {result.webhook_requests_per_s:,.1f} webhook requests/s. Planned at "
        f"{t.utilization:.0%} of each capacity; max-scale = instances x {t.headroom:g}.",
        f"Deployed today: {deployed_from}.",
        "",
        _table(
            ["topic", "events/s", "bounded by", "per partition/s", "needs", "recommend", "has"],
            [
                [
                    p.name,
                    f"{p.events_per_s:,.1f}",
                    p.slowest,
                    f"{p.per_partition:,.1f}",
                    str(p.partitions),
                    str(p.recommended),
                    str(p.deployed),
                ]
                for p in result.topics
            ],
        ),
        "",
        _table(
            [
                "function",
                "load/s",
                "per instance/s",
                "limited by",
                "instances",
                "max-scale",
                "deployed",
            ],
            [
                [
                    f.name,
                    f"{f.load_per_s:,.1f}",
                    f"{f.per_instance:,.1f}",
                    f.limited_by,
                    str(f.instances),
                    str(f.max_scale),
                    str(f.deployed_max_scale or "-"),
                ]
                for f in result.functions
            ],
        ),
        "",
        _table(
            ["server", "load at peak", "capacity (assumed)", "used"],
            [
                [
                    s.name,
                    f"{s.load_per_s:,.0f} {s.unit}",
                    f"{s.capacity:,.0f}",
                    f"{s.utilization:.0%}",
                ]
                for s in result.servers
            ],
        ),
        f"Kafka in: {result.kafka_mib_per_s:,.2f} MiB/s produced (x replication on the brokers).",
        "",
        "Saturates first:",
    ]
    for limit in result.limits()[:5]:
        flag = (
            "SATURATED" if limit.utilization >= 1 else "near" if limit.utilization >= NEAR else "ok"
        )
        out.append(f"  {flag:<9} {limit.utilization:6.0%}  {limit.what} ({limit.detail})")
    out += ["", "Inputs (" + ("bench results" if have_results else "no bench results") + "):"]
    out += [f"  {name}: {figure.value:,.1f} ({figure.source})" for name, figure in _figures(rates)]
    return "\n".join(out)


def _figures(rates: Rates) -> list[tuple[str, Figure]]:
    listed = [
        ("webhook requests/s per instance", rates.webhook_rps),
        ("channel API ms (added to the dispatcher)", rates.channel_api_ms),
        ("MongoDB commands per turn", rates.mongodb_per_turn),
        ("Redis commands per turn", rates.redis_per_turn),
        ("Redis commands per webhook", rates.redis_per_webhook),
        ("MongoDB commands per further status", rates.mongodb_per_status),
        ("MongoDB commands per audited event", rates.mongodb_per_audit_event),
        ("Kafka record KiB", rates.record_kib),
        ("cores per instance", rates.cores_per_instance),
    ]
    for name, figure in rates.handler_cpu_ms.items():
        listed.append((f"{name} CPU ms per event", figure))
    for name, figure in rates.handler_service_ms.items():
        listed.append((f"{name} ms per event", figure))
    return listed


def _table(headers: list[str], rows: list[list[str]]) -> str:
    widths = [max(len(h), *(len(r[i]) for r in rows)) for i, h in enumerate(headers)]

    def line(cells: list[str]) -> str:
        return "  ".join(
            c.ljust(w) if i == 0 or not c[:1].isdigit() else c.rjust(w)
            for i, (c, w) in enumerate(zip(cells, widths, strict=True))
        ).rstrip()

    return "\n".join([line(headers), "  ".join("-" * w for w in widths), *map(line, rows)])


if __name__ == "__main__":
    sys.exit(main())
