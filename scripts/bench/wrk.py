"""wrk (Debian's, C and Lua) as the load generator: a Python client on the same two cores would
cap the baseline it is compared with.

The requests are pre-signed and written to a file, one ``signature<TAB>body`` per line; the
Lua script (``LUA`` below) gives wrk thread k of n the lines k, k + n, k + 2n, … so no two
threads send the same body, and reports as one JSON line how many requests each thread sent
against how many bodies it had: more requests than bodies means some bodies went twice (a
dedupe hit on a webhook), which the caller reports.
"""

from __future__ import annotations

import json
import shutil
import subprocess
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

INSTALL_HINT = "apt-get install -y wrk"
MARK = "BENCH-WRK "

LUA = r"""
local path = os.getenv("BENCH_BODIES")
local header = os.getenv("BENCH_HEADER")
local threads = {}

function setup(thread)
  table.insert(threads, thread)
  thread:set("index", #threads - 1)
end

function init(args)
  local count = tonumber(os.getenv("BENCH_THREADS"))
  bodies, signatures, sent = {}, {}, 0
  local line_number = 0
  for line in io.lines(path) do
    if line_number % count == index then
      local tab = line:find("\t", 1, true)
      signatures[#signatures + 1] = line:sub(1, tab - 1)
      bodies[#bodies + 1] = line:sub(tab + 1)
    end
    line_number = line_number + 1
  end
  available = #bodies
end

function request()
  sent = sent + 1
  local i = (sent - 1) % #bodies + 1
  return wrk.format("POST", nil, {["Content-Type"] = "application/json",
                                  [header] = signatures[i]}, bodies[i])
end

function done(summary, latency, requests)
  local repeated = 0
  for _, thread in ipairs(threads) do
    local over = thread:get("sent") - thread:get("available")
    if over > 0 then repeated = repeated + over end
  end
  local e = summary.errors
  io.write(string.format(
    '%s{"requests": %d, "duration_us": %d, "non_2xx": %d, "connect": %d, "read": %d, ' ..
    '"write": %d, "timeout": %d, "p50_us": %d, "p99_us": %d, "max_us": %d, "repeated": %d}\n',
    os.getenv("BENCH_MARK"), summary.requests, summary.duration, e.status, e.connect, e.read,
    e.write, e.timeout, latency:percentile(50), latency:percentile(99), latency.max, repeated))
end
"""


class WrkMissing(RuntimeError):
    pass


def binary() -> str:
    found = shutil.which("wrk")
    if found is None:
        raise WrkMissing(f"wrk is not installed: {INSTALL_HINT} (Debian's package)")
    return found


@dataclass(frozen=True)
class WrkResult:
    name: str
    requests: int
    seconds: float
    non_2xx: int
    socket_errors: int
    p50_ms: float
    p99_ms: float
    max_ms: float
    repeated: int  # requests that re-sent a body this run had already sent

    @property
    def rps(self) -> float:
        return self.requests / self.seconds if self.seconds else 0.0

    def to_json(self) -> dict[str, float | int | str]:
        return {
            "name": self.name,
            "requests": self.requests,
            "seconds": round(self.seconds, 3),
            "rps": round(self.rps, 1),
            "p50_ms": round(self.p50_ms, 2),
            "p99_ms": round(self.p99_ms, 2),
            "max_ms": round(self.max_ms, 2),
            "non_2xx": self.non_2xx,
            "socket_errors": self.socket_errors,
            "repeated_bodies": self.repeated,
        }


def write_bodies(path: Path, signed: Iterable[tuple[str, bytes]]) -> int:
    """``signature<TAB>body`` lines; a body must be one line of JSON (``json.dumps`` is)."""
    count = 0
    with open(path, "wb") as out:
        for signature, body in signed:
            if b"\n" in body or b"\t" in signature.encode():
                raise ValueError("a body for wrk must be a single line")
            out.write(signature.encode() + b"\t" + body + b"\n")
            count += 1
    return count


def parse(name: str, output: str) -> WrkResult:
    lines = [ln for ln in output.splitlines() if ln.startswith(MARK)]
    if not lines:
        raise RuntimeError(f"wrk printed no result line:\n{output[-2000:]}")
    data = json.loads(lines[-1][len(MARK) :])
    return WrkResult(
        name=name,
        requests=int(data["requests"]),
        seconds=data["duration_us"] / 1e6,
        non_2xx=int(data["non_2xx"]),
        socket_errors=sum(int(data[k]) for k in ("connect", "read", "write", "timeout")),
        p50_ms=data["p50_us"] / 1000,
        p99_ms=data["p99_us"] / 1000,
        max_ms=data["max_us"] / 1000,
        repeated=int(data["repeated"]),
    )


def run(
    name: str,
    url: str,
    bodies: Path,
    header: str,
    work: Path,
    *,
    seconds: int,
    connections: int = 8,
    threads: int = 2,
) -> WrkResult:
    """``wrk -t threads -c connections -d seconds`` POSTing the file's bodies to ``url``."""
    script = work / "bench-bodies.lua"
    if not script.exists():
        script.write_text(LUA, encoding="utf-8")
    argv = [binary(), f"-t{threads}", f"-c{connections}", f"-d{seconds}s", "--timeout", "5s"]
    env = {
        "BENCH_BODIES": str(bodies),
        "BENCH_HEADER": header,
        "BENCH_THREADS": str(threads),
        "BENCH_MARK": MARK,
        "PATH": "/usr/bin:/bin",
    }
    done = subprocess.run(  # noqa: S603 (wrk from PATH, our script and arguments)
        [*argv, "-s", str(script), url],
        env=env,
        capture_output=True,
        text=True,
        timeout=seconds + 30,
        check=False,
    )
    if done.returncode != 0:
        raise RuntimeError(f"wrk exited with {done.returncode}: {done.stderr[-2000:]}")
    return parse(name, done.stdout)
