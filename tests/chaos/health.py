"""Health probes of every service, all through the soak, and their p99 latency.

One process per service (``python -m tests.chaos.health NAME ADDRESS OUT``: not a thread of
the soak, whose own work — restarting services, creating trainings, holding streams — would
otherwise delay the probes' callbacks and be counted as the service's latency) starts a
``grpc.health.v1.Health/Check`` every ``INTERVAL_S`` (without waiting for the previous one)
and records when it started (``time.monotonic``, one clock for every process of the machine),
how long it took and what came back, one JSON line per probe. A probe that times out counts
as slow (its latency is the time it waited). Probes made while the service was down (killed,
not yet serving again, plus ``RESTART_GRACE_S`` for the probe's channel to reconnect) are not
latency samples: a dead process is not a slow one. They are counted apart, refusals among
them too.
"""

from __future__ import annotations

import contextlib
import dataclasses
import json
import math
import subprocess
import sys
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

import grpc
from grpc_health.v1 import health_pb2, health_pb2_grpc

from tests.chaos.cluster import DownWindow

INTERVAL_S = 0.1
PROBE_TIMEOUT_S = 5.0
RESTART_GRACE_S = 1.0
P99_LIMIT_S = 0.5
REPO_ROOT = Path(__file__).resolve().parents[2]
# Reconnect quickly after a restart instead of gRPC's default backoff (1 s and growing).
_CHANNEL_OPTIONS = [
    ("grpc.initial_reconnect_backoff_ms", 100),
    ("grpc.min_reconnect_backoff_ms", 100),
    ("grpc.max_reconnect_backoff_ms", 250),
]


@dataclass(frozen=True)
class Probe:
    start: float  # time.monotonic()
    latency_s: float
    outcome: str  # "SERVING", "NOT_SERVING", ... or a gRPC status code name


@dataclass
class HealthReport:
    name: str
    samples: int = 0
    p50_s: float = 0.0
    p99_s: float = 0.0
    max_s: float = 0.0
    slowest: list[tuple[float, float, str]] = field(default_factory=list)  # (at_s, latency, what)
    failures: dict[str, int] = field(default_factory=dict)  # outside down windows
    during_restart: int = 0
    refused_during_restart: int = 0

    def describe(self) -> str:
        text = (
            f"{self.name}: {self.samples} probes, p50 {self.p50_s * 1000:.0f} ms, "
            f"p99 {self.p99_s * 1000:.0f} ms, max {self.max_s * 1000:.0f} ms; "
            f"{self.during_restart} while down/restarting "
            f"({self.refused_during_restart} refused)"
        )
        if self.failures:
            text += f"; failed outside restarts: {self.failures}"
        if self.p99_s >= P99_LIMIT_S:
            slow = ", ".join(f"t={at:.1f}s {lat * 1000:.0f} ms {w}" for at, lat, w in self.slowest)
            text += f"; slowest: {slow}"
        return text


class HealthProber:
    """The probing process of one service, and its probes once stopped."""

    def __init__(self, name: str, address: str, out_dir: Path) -> None:
        self.service = name
        self.address = address
        self.out = out_dir / f"health-{name}.jsonl"
        self.probes: list[Probe] = []
        self._process: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        self._process = subprocess.Popen(
            [sys.executable, "-m", "tests.chaos.health", self.service, self.address, str(self.out)],
            cwd=REPO_ROOT,
            stdin=subprocess.PIPE,  # closed: stop
        )

    def stop(self) -> None:
        process = self._process
        if process is not None and process.stdin is not None and not process.stdin.closed:
            process.stdin.close()

    def join(self, timeout: float | None = None) -> None:
        process = self._process
        if process is None:
            return
        try:
            process.wait(timeout)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
        if self.out.exists():
            self.probes = [Probe(**json.loads(line)) for line in self.out.read_text().splitlines()]

    def report(self, down: list[DownWindow], soak_start: float) -> HealthReport:
        def is_down(t: float) -> bool:
            return any(
                w.start <= t and (w.end is None or t <= w.end + RESTART_GRACE_S) for w in down
            )

        out = HealthReport(self.service)
        latencies: list[tuple[float, Probe]] = []
        for probe in self.probes:
            if is_down(probe.start) or is_down(probe.start + probe.latency_s):
                out.during_restart += 1
                if probe.outcome != "SERVING":
                    out.refused_during_restart += 1
                continue
            latencies.append((probe.latency_s, probe))
            if probe.outcome != "SERVING":
                out.failures[probe.outcome] = out.failures.get(probe.outcome, 0) + 1
        if not latencies:
            return out
        latencies.sort(key=lambda pair: pair[0])
        values = [lat for lat, _ in latencies]
        out.samples = len(values)
        out.p50_s = percentile(values, 50)
        out.p99_s = percentile(values, 99)
        out.max_s = values[-1]
        out.slowest = [
            (p.start - soak_start, lat, p.outcome) for lat, p in reversed(latencies[-5:])
        ]
        return out


def percentile(sorted_values: list[float], pct: float) -> float:
    """The nearest-rank percentile of an ascending list."""
    rank = max(1, math.ceil(pct / 100 * len(sorted_values)))
    return sorted_values[rank - 1]


def probe_until_stdin_closes(address: str, out: Path) -> None:
    """The probing process: a probe every ``INTERVAL_S`` until standard input closes, then
    the answers to the probes still under way (each within ``PROBE_TIMEOUT_S``)."""
    halt = threading.Event()
    threading.Thread(target=lambda: (sys.stdin.read(), halt.set()), daemon=True).start()
    probes: list[Probe] = []

    def record(start: float, call: grpc.Future) -> None:
        latency = time.monotonic() - start
        try:
            reply = call.result()
            outcome = health_pb2.HealthCheckResponse.ServingStatus.Name(reply.status)
        except grpc.RpcError as exc:
            code = exc.code() if isinstance(exc, grpc.Call) else None
            outcome = code.name if code is not None else "ERROR"
        except grpc.FutureCancelledError:
            outcome = "CANCELLED"
        probes.append(Probe(start, latency, outcome))  # list.append: thread-safe

    pending: list[grpc.Future] = []
    with grpc.insecure_channel(address, options=_CHANNEL_OPTIONS) as channel:
        stub = health_pb2_grpc.HealthStub(channel)
        next_at = time.monotonic()
        while not halt.is_set():
            start = time.monotonic()
            call = stub.Check.future(health_pb2.HealthCheckRequest(), timeout=PROBE_TIMEOUT_S)
            call.add_done_callback(lambda done, at=start: record(at, done))
            pending = [c for c in pending if not c.done()] + [call]
            next_at = max(next_at + INTERVAL_S, time.monotonic())
            halt.wait(next_at - time.monotonic())
        for call in pending:
            with contextlib.suppress(grpc.RpcError, grpc.FutureCancelledError):
                call.result(timeout=PROBE_TIMEOUT_S + 1)
    out.write_text("".join(json.dumps(dataclasses.asdict(p)) + "\n" for p in list(probes)))


if __name__ == "__main__":
    probe_until_stdin_closes(sys.argv[2], Path(sys.argv[3]))
