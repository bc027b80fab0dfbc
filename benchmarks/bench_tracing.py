#!/usr/bin/env python3
"""The cost of OpenTelemetry traces (part of ``make bench``): unary latency and short trainings.

Real ``ktrdr backend serve`` / ``ktrdr host serve`` processes that differ only in the
``OTEL_*`` variables: off (none set: the default; the baseline), off2 (unary only: a second
backend like off, its ratio to off is the noise floor) and on (``OTEL_TRACES_EXPORTER=otlp``
to an OTLP receiver in this process, the real ``TraceService``: every span is exported).

1. Unary latency: ``GetTrainingConfig`` ``--calls`` times per backend per round over one warm
   channel each, backends in a rotating order; each round's median per-call latency over
   off's. "on": an untraced caller (no ``traceparent``: a read starts no trace, the check
   is all it costs); "on-traced": the same backend called with a ``traceparent`` (by
   default a traced caller's read is shown by its client span, not recorded again by the
   server); "reads-traced": a backend with ``KTRDR_TRACE_READS=true`` called with a
   ``traceparent``, so each call is a server span, exported: the price of recording reads.
   The traced callers' rows are against "off-traced" (the off backend called with the same
   ``traceparent``: the header's own cost is the caller's, with tracing on or off).
2. Trainings: the tiny strategy (``--epochs``), local (the backend's worker process) and host
   mode (each backend with its own host, traced like it), on and off alternating; seconds from
   CreateTraining to COMPLETED seen by a WatchOperation client, over off's of the same round.
   On: the operation, session, worker and step spans and their export. The services' worker
   pools as configured by default (a warm forkserver: a worker that waits has imported the
   exporter when tracing is on; with ``..._WORKER_SPARES=0`` each cold worker imports it on
   the run's time, ~0.2 s).

Ratios: median [min..max] over the rounds; above 1 means slower than off. Target: off2 = 1.00
(within the noise), on <= 1.03.

Usage: python benchmarks/bench_tracing.py [--rounds N] [--calls N] [--training-rounds N]
       [--epochs N] [--quick] [--unary-only]
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from pathlib import Path

from bench_metrics import DATA, NO_SPARES, ROOT, rotated, train_once
from ratios import report

from ktrdr.training.v1 import backend_pb2 as pb
from ktrdr.training.v1 import backend_pb2_grpc
from tests.support.otlp_receiver import OtlpReceiver
from tests.support.processes import Service, channel_to, start_backend, start_host
from tests.support.strategies import TINY_STRATEGY_YAML

assert ROOT.is_dir()
TARGET = "<= 1.03"
# A traced caller's context: the backend makes a server span per call under it.
CALLER_CONTEXT = (("traceparent", "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"),)


def bench_unary(work: Path, receiver: OtlpReceiver, rounds: int, calls: int) -> None:
    names = ["off", "off2", "on", "off-traced", "on-traced", "reads-traced"]
    services: list[Service] = []
    try:
        stubs = {}
        for name in ("off", "off2", "on", "reads"):
            env = {
                "off": {},
                "off2": {},
                "on": receiver.env(),
                "reads": {**receiver.env(), "KTRDR_TRACE_READS": "true"},
            }[name]
            backend = start_backend(work / name, DATA, [], env={**NO_SPARES, **env})
            services.append(backend)
            stubs[name] = backend_pb2_grpc.BackendStub(channel_to(backend.address))
        request = pb.GetTrainingConfigRequest()
        for stub in stubs.values():  # connect, token cache, first-call paths
            for _ in range(max(20, calls // 10)):
                stub.GetTrainingConfig(request, timeout=10)
        medians: dict[str, list[float]] = {name: [] for name in names}
        for round_ in range(rounds):
            for name in rotated(names, round_):
                call = stubs[name.split("-")[0]].GetTrainingConfig
                metadata = CALLER_CONTEXT if name.endswith("-traced") else ()
                times = []
                for _ in range(calls):
                    start = time.perf_counter()
                    call(request, timeout=10, metadata=metadata)
                    times.append(time.perf_counter() - start)
                medians[name].append(statistics.median(times))
        print(
            "GetTrainingConfig median latency, ms: "
            + ", ".join(f"{n} {statistics.median(v) * 1e3:.3f}" for n, v in medians.items())
        )
        figures = (  # a traced caller's calls carry a traceparent: against off called alike
            ("off2", "off", "tracing off (2nd backend)", "1.00"),
            ("on", "off", "tracing on", TARGET),
            ("on-traced", "off-traced", "tracing on, caller traced", TARGET),
            ("reads-traced", "off-traced", "tracing on, caller traced, reads recorded", "(a span)"),
        )
        for name, against, figure, target in figures:
            ratios = [a / b for a, b in zip(medians[name], medians[against], strict=True)]
            report(f"unary latency, {figure}", against, ratios, target)
    finally:
        for service in reversed(services):
            service.stop()


def bench_trainings(work: Path, receiver: OtlpReceiver, rounds: int, epochs: int) -> None:
    yaml_text = TINY_STRATEGY_YAML.replace("epochs: 4", f"epochs: {epochs}")
    services: list[Service] = []
    try:
        stubs = {}
        for name in ("off", "on"):
            env = receiver.env() if name == "on" else {}
            host = start_host(work / f"{name}-host", DATA, env=env)
            services.append(host)
            backend = start_backend(work / name, DATA, [host.address], env=env)
            services.append(backend)
            stubs[name] = backend_pb2_grpc.BackendStub(channel_to(backend.address))
        for mode, label in ((pb.EXECUTION_MODE_LOCAL, "local"), (pb.EXECUTION_MODE_HOST, "host")):
            for stub in stubs.values():  # warm-up: each backend's (and host's) first run
                train_once(stub, yaml_text, mode)
            seconds: dict[str, list[float]] = {"off": [], "on": []}
            for round_ in range(rounds):
                for name in rotated(["off", "on"], round_):
                    seconds[name].append(train_once(stubs[name], yaml_text, mode))
            print(
                f"{label} training ({epochs} epochs), median s: "
                + ", ".join(f"{n} {statistics.median(v):.2f}" for n, v in seconds.items())
            )
            ratios = [a / b for a, b in zip(seconds["on"], seconds["off"], strict=True)]
            report(f"{label} training, tracing on", "off", ratios, TARGET)
    finally:
        for service in reversed(services):
            service.stop()
    spans = receiver.received()
    print(f"spans received: {len(spans)} in {receiver.requests} export request(s)")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--rounds", type=int, default=12, help="unary rounds")
    parser.add_argument("--calls", type=int, default=300, help="unary calls per backend/round")
    parser.add_argument("--training-rounds", type=int, default=6)
    parser.add_argument("--epochs", type=int, default=10)
    parser.add_argument("--quick", action="store_true", help="fewer rounds and calls")
    parser.add_argument("--unary-only", action="store_true", help="skip the trainings")
    args, _ = parser.parse_known_args()
    if args.quick:
        args.rounds, args.calls, args.training_rounds, args.epochs = 6, 150, 3, 5
    receiver = OtlpReceiver().start()
    try:
        with tempfile.TemporaryDirectory() as tmp:
            work = Path(tmp)
            bench_unary(work / "unary", receiver, args.rounds, args.calls)
            if not args.unary_only:
                bench_trainings(work / "trainings", receiver, args.training_rounds, args.epochs)
    finally:
        receiver.stop()
    return 0


if __name__ == "__main__":
    sys.exit(main())
