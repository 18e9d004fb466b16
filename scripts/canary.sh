#!/usr/bin/env bash
# Automated canary analysis: shift traffic to a Service's newest revision step by step while
# Prometheus says it is as good as the stable one; roll back by itself when it is not.
set -euo pipefail

usage() {
  cat <<'USAGE'
Usage: scripts/canary.sh SERVICE PERCENT [--steps 25,50,100] [--window 300] [--interval 30]
                         [--max-error-ratio 0.01] [--max-p95-ms 1000]
                         [--max-latency-ratio 1.5] [--min-requests 20] [-n NAMESPACE]

Tags the newest ready revision "canary" and the one serving most traffic "stable", sends
PERCENT % to the canary, and watches Knative's per-revision request metrics in Prometheus
(PROMETHEUS_URL) for --window seconds per step, every --interval seconds. Within the SLO it
moves to the next step and finally promotes the canary (exit 0); over it, or with too few
requests to judge, it sends everything back to the stable revision (exit 1).
Defaults and what they mean: docs/runbooks/canary.md.
USAGE
}

# shellcheck source=lib/python.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib/python.sh"
run_module "shared.ops.canary" "$@"
