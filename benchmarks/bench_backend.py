"""Backend benchmarks (part of ``make bench``).

1. Mode selection: a host that refuses connections, and one that accepts but never answers.
2. CreateTraining -> COMPLETED for the same strategy in local and in host mode (real backend and
   host processes), with the transfer time (host's "training finished" -> model saved).
3. Progress latency: executor event timestamp -> arrival at a WatchOperation client (p50, p99).
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import statistics
import sys
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(ROOT), str(ROOT / "benchmarks")]

from ratios import collect  # noqa: E402

from ktrdr.backend.execution.mode_selector import ModeSelector  # noqa: E402
from ktrdr.training.v1 import backend_pb2 as pb  # noqa: E402
from ktrdr.training.v1 import backend_pb2_grpc, common_pb2  # noqa: E402
from tests.support.backend import refused_address, start_hanging_server  # noqa: E402
from tests.support.processes import channel_to, start_backend, start_host  # noqa: E402
from tests.support.strategies import TINY_STRATEGY_YAML  # noqa: E402

DATA = ROOT / "data" / "samples"
# Both services start a spare worker 2 s after a run and it imports for ~3 s: runs spaced like
# a person's (submit, watch, submit again) start warm; back-to-back ones would start cold.
SETTLE_S = 7.0


def pct(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q / 100 * (len(ordered) - 1)))]


async def bench_selection(repeats: int) -> None:
    refused = refused_address()
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        await ModeSelector([refused], timeout_s=2.0).select(pb.EXECUTION_MODE_HOST, False)
        times.append(time.perf_counter() - start)
    print(
        f"mode selection, host refusing connections: median {statistics.median(times) * 1e3:.1f} ms"
        f", max {max(times) * 1e3:.1f} ms ({repeats} runs, deadline 2 s)"
    )
    server, address = await start_hanging_server()
    times = []
    for _ in range(3):
        start = time.perf_counter()
        await ModeSelector([address], timeout_s=2.0).select(pb.EXECUTION_MODE_HOST, False)
        times.append(time.perf_counter() - start)
    await server.stop(0)
    print(
        f"mode selection, host accepting but never answering: median "
        f"{statistics.median(times):.3f} s (deadline 2 s, 3 runs)"
    )


def run_once(stub, yaml_text: str, mode: pb.ExecutionMode) -> tuple[float, float, list[float]]:
    """(CreateTraining -> COMPLETED seconds, transfer seconds, per-event latencies)."""
    start = time.perf_counter()
    op = stub.CreateTraining(
        pb.CreateTrainingRequest(
            strategy_yaml=yaml_text,
            execution_mode=mode,
            overrides=common_pb2.TrainingOverrides(device="cpu", seed=7),
        ),
        timeout=10,
    ).operation
    assert op.mode == mode, op.mode_reason
    latencies, finished_at = [], None
    for message in stub.WatchOperation(pb.WatchOperationRequest(operation_id=op.operation_id)):
        now = datetime.now(UTC)
        event = message.event
        if event.kind in (
            common_pb2.PROGRESS_KIND_STEP_STARTED,
            common_pb2.PROGRESS_KIND_EPOCH,
            common_pb2.PROGRESS_KIND_BATCH,
            common_pb2.PROGRESS_KIND_STEP_FINISHED,
        ):
            latencies.append((now - event.timestamp.ToDatetime(tzinfo=UTC)).total_seconds())
        if "waiting for the model" in event.message and finished_at is None:
            finished_at = time.perf_counter()
    total = time.perf_counter() - start
    assert message.status == pb.OPERATION_STATUS_COMPLETED, message
    transfer = time.perf_counter() - finished_at if finished_at else 0.0
    return total, transfer, latencies


def in_process(yaml_text: str) -> float:
    """Seconds of the same training through ``TrainingExecutor.run`` in this process."""
    from ktrdr.config import apply_overrides, parse_strategy
    from ktrdr.training.executor import TrainingExecutor

    config = apply_overrides(parse_strategy(yaml_text), seed=7)
    start = time.perf_counter()
    TrainingExecutor(DATA, device="cpu").run(config)
    return time.perf_counter() - start


def bench_modes(repeats: int, epochs: int) -> None:
    yaml_text = TINY_STRATEGY_YAML.replace("epochs: 4", f"epochs: {epochs}")
    in_process(yaml_text)  # imports and first-call costs, outside the comparison
    direct: list[float] = []
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        host = start_host(work / "host", DATA)
        backend = start_backend(work / "backend", DATA, [host.address])
        try:
            with channel_to(backend.address) as channel:
                stub = backend_pb2_grpc.BackendStub(channel)
                run_once(stub, yaml_text, pb.EXECUTION_MODE_LOCAL)  # warm-up
                run_once(stub, yaml_text, pb.EXECUTION_MODE_HOST)
                local, host_runs, transfers, latencies = [], [], [], []
                for _ in range(repeats):
                    time.sleep(SETTLE_S)
                    total, _, lat = run_once(stub, yaml_text, pb.EXECUTION_MODE_LOCAL)
                    local.append(total)
                    latencies += lat
                    direct.append(in_process(yaml_text))
                    time.sleep(SETTLE_S)
                    total, transfer, _ = run_once(stub, yaml_text, pb.EXECUTION_MODE_HOST)
                    host_runs.append(total)
                    transfers.append(transfer)
        finally:
            backend.stop()
            host.stop()
    lm, hm, tm = (
        statistics.median(local),
        statistics.median(host_runs),
        statistics.median(transfers),
    )
    print(f"CreateTraining -> COMPLETED ({epochs} epochs, {repeats} runs each, median):")
    print(
        f"  local {lm:.3f} s, host {hm:.3f} s, transfer (host finished -> saved) {tm * 1e3:.1f} ms"
    )
    pairs = sorted(h / (lo + t) for h, lo, t in zip(host_runs, local, transfers, strict=True))
    print(
        f"  host / (local + transfer) = {hm / (lm + tm):.3f} of the medians, "
        f"{statistics.median(pairs):.3f} median of side-by-side pairs (target <= 1.05)"
    )
    collect("host mode, CreateTraining to COMPLETED", "local + transfer", pairs, "<= 1.05")
    collect(
        "local mode through the backend, CreateTraining to COMPLETED",
        "TrainingExecutor.run in-process",
        [lo / d for lo, d in zip(local, direct, strict=True)],
        "<= 1.1",
    )
    ms = [x * 1e3 for x in latencies]
    print(
        f"progress latency executor -> WatchOperation client (local, {len(ms)} events): "
        f"p50 {pct(ms, 50):.2f} ms, p99 {pct(ms, 99):.2f} ms"
    )


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--epochs", type=int, default=60)
    parser.add_argument("--quick", action="store_true", help="3 repeats, 30 epochs")
    args, _ = parser.parse_known_args()
    if args.quick:
        args.repeats, args.epochs = min(args.repeats, 3), min(args.epochs, 30)
    logging.getLogger("ktrdr").setLevel(logging.ERROR)  # fallbacks are expected here
    asyncio.run(bench_selection(20))
    bench_modes(args.repeats, args.epochs)
    return 0


if __name__ == "__main__":
    sys.exit(main())
