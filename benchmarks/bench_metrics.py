#!/usr/bin/env python3
"""The cost of Prometheus metrics (part of ``make bench``): unary latency and short trainings.

Configurations differ only in ``METRICS_ADDRESS`` (the backend's and its host's):

- off: no metrics (the default; B, the baseline);
- off2 (unary only): a second backend exactly like off; its ratio to off is the noise floor;
- on: metrics on, its ``/metrics`` scraped once per round as Prometheus would.

1. Unary latency: real ``BackendApp`` servers in this process (token auth, as deployed), one
   warm channel each; ``GetTrainingConfig`` ``--calls`` times per backend per round, backends
   in a rotating order; the median per-call latency of each round divided by off's. In one
   process, so that no backend gets a quieter core than another for the whole run.
2. Trainings: real ``ktrdr backend serve`` / ``ktrdr host serve`` processes, the tiny strategy
   (``--epochs``), local (the backend's worker process) and host mode (each backend with its
   own host, metrics on or off like it), on and off alternating; seconds from CreateTraining
   to COMPLETED seen by a WatchOperation client, divided by off's of the same round. The
   services' default warm workers (each run forked from a forkserver that imported the
   training stack once; nothing imports in the background between runs): with a cold worker
   per run (``WORKER_SPARES=0``) each run's 3 s of imports made the ratios noise.

Ratios: median [min..max] over the rounds; above 1 means slower than off. Target: off2 = 1.00
(within the noise), on <= 1.03.

Usage: python benchmarks/bench_metrics.py [--rounds N] [--calls N] [--training-rounds N]
       [--epochs N] [--quick]
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import os
import statistics
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(ROOT), str(ROOT / "src"), str(ROOT / "host"), str(ROOT / "benchmarks")]
# the service processes find the same code
os.environ["PYTHONPATH"] = os.pathsep.join(
    [str(ROOT / "src"), str(ROOT / "host"), os.environ.get("PYTHONPATH", "")]
)

from ratios import report  # noqa: E402

from ktrdr.training.v1 import backend_pb2 as pb  # noqa: E402
from ktrdr.training.v1 import backend_pb2_grpc, common_pb2  # noqa: E402
from tests.support.processes import (  # noqa: E402
    Service,
    channel_to,
    free_port,
    start_backend,
    start_host,
)
from tests.support.strategies import TINY_STRATEGY_YAML  # noqa: E402

DATA = ROOT / "data" / "samples"
TARGET = "<= 1.03"
NO_SPARES = {"KTRDR_BACKEND_WORKER_SPARES": "0", "KTRDR_HOST_WORKER_SPARES": "0"}


def rotated(names: list[str], round_: int) -> list[str]:
    shift = round_ % len(names)
    return names[shift:] + names[:shift]


def scrape(port: int) -> int:
    """Bytes of one /metrics answer."""
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=10) as answer:
        return len(answer.read())


async def bench_unary(
    work: Path, rounds: int, calls: int
) -> tuple[dict[str, list[float]], dict[str, list[float]]]:
    """Per backend, the median per-call latency (seconds) of each round, and the process's CPU
    seconds per call (client and servers share this process; one backend is called at a
    time: less sensitive than wall time to other processes on a loaded machine)."""
    from ktrdr.backend import BackendApp, BackendSettings  # PyTorch too: seconds to import
    from ktrdr.security.channels import aio_channel
    from ktrdr.security.tokens import read_token_file

    names = ["off", "off2", "on"]
    apps, channels = {}, {}
    try:
        for name in names:
            settings = BackendSettings(
                address="127.0.0.1:0",
                data_dir=work / name,
                strategies_dir=work / name / "strategies",
                market_data_dir=DATA,
                default_mode="local",
                device="cpu",
                grace_s=0.2,
                worker_spares=0,
                metrics_address="127.0.0.1:0" if name == "on" else "",
            )
            apps[name] = app = BackendApp(settings)
            port = await app.start()
            token = read_token_file(work / name / "admin.token")
            channels[name] = aio_channel(f"127.0.0.1:{port}", token=token)
        stubs = {name: backend_pb2_grpc.BackendStub(ch) for name, ch in channels.items()}
        request = pb.GetTrainingConfigRequest()
        for stub in stubs.values():  # connect, token cache, first-call paths
            for _ in range(max(20, calls // 10)):
                await stub.GetTrainingConfig(request, timeout=10)
        endpoint = apps["on"].metrics_endpoint
        assert endpoint is not None
        medians: dict[str, list[float]] = {name: [] for name in names}
        cpu: dict[str, list[float]] = {name: [] for name in names}
        for round_ in range(rounds):
            for name in rotated(names, round_):
                call = stubs[name].GetTrainingConfig
                times = []
                cpu_start = time.process_time()
                for _ in range(calls):
                    start = time.perf_counter()
                    await call(request, timeout=10)
                    times.append(time.perf_counter() - start)
                cpu[name].append((time.process_time() - cpu_start) / calls)
                medians[name].append(statistics.median(times))
            await asyncio.to_thread(scrape, endpoint.port)
        return medians, cpu
    finally:
        for channel in channels.values():
            await channel.close()
        for app in apps.values():
            await app.stop()


def train_once(stub: backend_pb2_grpc.BackendStub, yaml_text: str, mode: pb.ExecutionMode) -> float:
    """Seconds from CreateTraining to COMPLETED seen by a WatchOperation client."""
    start = time.perf_counter()
    request = pb.CreateTrainingRequest(
        strategy_yaml=yaml_text,
        execution_mode=mode,
        overrides=common_pb2.TrainingOverrides(device="cpu", seed=7),
    )
    op = stub.CreateTraining(request, timeout=10).operation
    last = list(stub.WatchOperation(pb.WatchOperationRequest(operation_id=op.operation_id)))[-1]
    elapsed = time.perf_counter() - start
    assert last.status == pb.OPERATION_STATUS_COMPLETED, last
    return elapsed


def bench_trainings(work: Path, rounds: int, epochs: int) -> None:
    yaml_text = TINY_STRATEGY_YAML.replace("epochs: 4", f"epochs: {epochs}")
    services: list[Service] = []
    metrics_ports = (free_port(), free_port())  # the "on" backend's and host's
    try:
        stubs = {}
        for name in ("off", "on"):
            on = name == "on"
            host_env: dict[str, str] = {}
            backend_env: dict[str, str] = {}
            if on:
                host_env["KTRDR_HOST_METRICS_ADDRESS"] = f"127.0.0.1:{metrics_ports[1]}"
                backend_env["KTRDR_BACKEND_METRICS_ADDRESS"] = f"127.0.0.1:{metrics_ports[0]}"
            host = start_host(work / f"{name}-host", DATA, env=host_env)
            services.append(host)
            backend = start_backend(work / name, DATA, [host.address], env=backend_env)
            services.append(backend)
            stubs[name] = backend_pb2_grpc.BackendStub(channel_to(backend.address))
        for mode, label in ((pb.EXECUTION_MODE_LOCAL, "local"), (pb.EXECUTION_MODE_HOST, "host")):
            for stub in stubs.values():  # warm-up: each backend's (and host's) first run
                train_once(stub, yaml_text, mode)
            seconds: dict[str, list[float]] = {"off": [], "on": []}
            for round_ in range(rounds):
                for name in rotated(["off", "on"], round_):
                    seconds[name].append(train_once(stubs[name], yaml_text, mode))
                scrape(metrics_ports[0])
                scrape(metrics_ports[1])
            print(
                f"{label} training ({epochs} epochs), median s: "
                + ", ".join(f"{n} {statistics.median(v):.2f}" for n, v in seconds.items())
            )
            ratios = [a / b for a, b in zip(seconds["on"], seconds["off"], strict=True)]
            report(f"{label} training, metrics on", "off", ratios, TARGET)
        sizes = [scrape(port) for port in metrics_ports]
        print(f"one scrape: backend {sizes[0]} bytes, host {sizes[1]} bytes")
    finally:
        for service in reversed(services):
            service.stop()


def hook_cost_us(repeats: int = 2000) -> float:
    """Microseconds of metrics work for one host training as the services do it (created,
    running, 10 epochs, a SubmitResults received, a session and an upload counted; the RPCs
    apart, ``interceptor_cost_us``), in a loop: a bound on what "on" adds, beside the ratios."""
    from ktrdr.backend.tracking.metrics import BackendMetrics
    from ktrdr.training.progress import ProgressEvent, ProgressKind
    from ktrdr_host.metrics import HostMetrics

    backend, host = BackendMetrics(), HostMetrics()
    train_step = ProgressEvent(ProgressKind.STEP_STARTED, step=8, step_name="train")
    epoch = ProgressEvent(ProgressKind.EPOCH, step=8, step_name="train", epoch=1)
    created = int(time.time() * 1e6)
    start = time.perf_counter()
    for _ in range(repeats):
        backend.operation_created(pb.EXECUTION_MODE_HOST)
        backend.operation_running(pb.EXECUTION_MODE_HOST, created)
        host.session_started()
        observe = host.run_observer()
        observe(train_step)
        for _ in range(10):
            observe(epoch)
        host.session_finished("completed")
        host.upload_attempt("delivered", 60_000, 0.01)
        backend.upload_finished("stored", 60_000, 0.01)
        backend.operation_finished(pb.EXECUTION_MODE_HOST, pb.OPERATION_STATUS_COMPLETED, created)
    return (time.perf_counter() - start) / repeats * 1e6


def interceptor_cost_us(calls: int = 20000) -> float:
    """Microseconds the RPC metrics add to one unary call: the interceptor's wrapper (timer,
    status code, counter) around a behavior that returns at once, against the bare behavior,
    both awaited in a loop (alternating blocks; the median of 5 differences)."""
    import grpc
    from prometheus_client import CollectorRegistry

    from ktrdr.service.metrics import GrpcServerMetrics

    metrics = GrpcServerMetrics(CollectorRegistry())

    async def behavior(request: object, context: object) -> object:
        return request

    class Context:
        def code(self) -> None:
            return None

    class Details:
        method = "/ktrdr.training.v1.Backend/GetTrainingConfig"
        invocation_metadata = ()

    handler = grpc.unary_unary_rpc_method_handler(behavior)
    details = Details()

    async def continuation(_: object) -> grpc.RpcMethodHandler:
        return handler

    async def timed(wrapped: bool) -> float:
        context = Context()
        start = time.perf_counter()
        for _ in range(calls):
            if wrapped:  # what the server does per call: intercept, then call
                h = await metrics.intercept_service(continuation, details)  # type: ignore[arg-type]
                await h.unary_unary(None, context)
            else:
                await behavior(None, context)
        return (time.perf_counter() - start) / calls * 1e6

    async def run() -> float:
        return statistics.median([await timed(True) - await timed(False) for _ in range(5)])

    return asyncio.run(run())


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
    logging.getLogger("ktrdr").setLevel(logging.ERROR)
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        latency, cpu = asyncio.run(bench_unary(work / "unary", args.rounds, args.calls))
        for what, values in (("median latency", latency), ("CPU time per call", cpu)):
            print(
                f"GetTrainingConfig {what}, ms: "
                + ", ".join(f"{n} {statistics.median(v) * 1e3:.3f}" for n, v in values.items())
            )
        for what, values in (("latency", latency), ("CPU time", cpu)):
            for name, figure, target in (("off2", "metrics off (2nd backend)", "1.00"),
                                         ("on", "metrics on", TARGET)):  # fmt: skip
                ratios = [a / b for a, b in zip(values[name], values["off"], strict=True)]
                report(f"unary {what}, {figure}", "off", ratios, target)
        print(f"RPC metrics per unary call (in a loop): {interceptor_cost_us():.1f} us")
        print(f"metrics work for one host training (hooks in a loop): {hook_cost_us():.0f} us")
        if not args.unary_only:
            bench_trainings(work / "trainings", args.training_rounds, args.epochs)
    return 0


if __name__ == "__main__":
    sys.exit(main())
