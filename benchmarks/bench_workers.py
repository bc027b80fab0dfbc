"""Worker-process benchmarks (part of ``make bench``): ratios of A and B alternated in one run.

1. One training in a warm worker (forked from the pool's ready forkserver) against the
   in-process executor, by wall time and by CPU time (the worker's own, for its run and the
   bundle archive, against this process's for the in-process run); and with a cold pool (a
   new pool per run: its forkserver starts with the run, which waits for the imports)
   against the same; and the first run of a pool that preloaded (``worker_preload``: the
   service started its forkserver at start and the first request came once it was ready).
2. Two trainings at once in worker processes (thread budget 1 each) against the same two one
   after the other.
3. A worker training beside a busy process (a CPU burner) against the same worker alone.

Both sides do the same work: the same strategy and data, every epoch trained (no early stop),
the same torch thread count, and a progress callback that receives every event (a service
always streams progress; in a worker each event crosses the pipe). The training is long
enough to be representative (default 200 epochs: ~10 s on one thread here, ``--quick`` 100):
a warm worker's fixed cost (fork and hand-off ~20 ms, then a fresh process's first touches
of memory and per-process caches, the bundle archive and the result over the pipe: ~0.1 s
of CPU in all, measured) is then about 1 %, as for real trainings of minutes, where a
2-second run shows it as 5 %; a cold pool's start-up (~3-4 s of imports and torch's first
optimizer step) is what a short run exaggerates most. On a machine shared with other work,
two OpenMP threads per run make both wall and CPU figures noise-bound (spinning threads);
``--threads 1`` gives stable ones.

Every figure is the median of per-pair ratios, with their spread and count; lower is better.
"""

from __future__ import annotations

import argparse
import functools
import multiprocessing
import sys
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(ROOT), str(ROOT / "benchmarks")]

import torch  # noqa: E402
from ratios import report  # noqa: E402

from ktrdr.config import parse_strategy  # noqa: E402
from ktrdr.config.strategy import StrategyConfig  # noqa: E402
from ktrdr.training.executor import TrainingExecutor  # noqa: E402
from ktrdr.worker import ProcessExecutor, SparePool, WorkerOutcome, available_cpus  # noqa: E402
from tests.support.strategies import TINY_STRATEGY_YAML  # noqa: E402

DATA = ROOT / "data" / "samples"
SETTLE_S = 1.0  # a warm pool needs no time between runs; let the last worker exit


def timed(work: Callable[[], object]) -> float:
    start = time.perf_counter()
    work()
    return time.perf_counter() - start


def cpu_timed(work: Callable[[], object]) -> tuple[float, float]:
    """(wall seconds, this process's CPU seconds) of ``work``."""
    cpu, start = time.process_time(), time.perf_counter()
    work()
    return time.perf_counter() - start, time.process_time() - cpu


def worker_run(worker: ProcessExecutor, config: StrategyConfig) -> tuple[float, WorkerOutcome]:
    """(wall seconds, outcome) of ``worker.run``: the run, then the bundle decoded."""
    start = time.perf_counter()
    outcome = worker.run_outcome(config, count_events)
    outcome.to_result()
    return time.perf_counter() - start, outcome


def count_events(event: object) -> None:
    """A progress callback that receives every event, like a service's."""


def burn() -> None:
    while True:
        pass


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--epochs", type=int, default=200)
    parser.add_argument(
        "--threads",
        type=int,
        default=0,
        help="torch threads of the single-run comparisons, both sides (default: every CPU); "
        "1 keeps OpenMP's spinning threads out of the figures on a machine shared with others",
    )
    parser.add_argument("--quick", action="store_true", help="2 repeats, 100 epochs")
    args, _ = parser.parse_known_args()
    if args.quick:
        args.repeats, args.epochs = min(args.repeats, 2), min(args.epochs, 100)
    # every epoch trained (no early stop), so each run does the same work
    yaml = TINY_STRATEGY_YAML.replace("epochs: 4", f"epochs: {args.epochs}").replace(
        "patience: 10", "patience: 100000"
    )
    config = parse_strategy(yaml)
    cpus = available_cpus()
    threads = args.threads or cpus
    torch.set_num_threads(threads)  # the in-process side trains on as many threads as a worker
    print(
        f"{cpus} CPUs; tiny_rsi on EURUSD 1h, {args.epochs} epochs, {threads} threads per run",
        flush=True,
    )

    in_process = TrainingExecutor(DATA, device="cpu")
    full = SparePool(threads=threads, spares=1)
    half = SparePool(threads=max(1, cpus // 2), spares=2)
    worker = ProcessExecutor(DATA, device="cpu", pool=full)
    shared = ProcessExecutor(DATA, device="cpu", pool=half)
    full.refill()
    half.refill()
    try:
        worker.run(config)  # warm both sides (file cache, the forkserver's imports)
        in_process.run(config)
        warm, warm_cpu, cold, preloaded = [], [], [], []
        for _ in range(args.repeats):
            time.sleep(SETTLE_S)
            b, outcome = worker_run(worker, config)
            time.sleep(SETTLE_S)
            a, a_cpu = cpu_timed(lambda: in_process.run(config, count_events))
            warm.append(b / a)
            warm_cpu.append(outcome.cpu_s / a_cpu)
            time.sleep(SETTLE_S)
            fresh = SparePool(threads=threads, spares=1)  # a service's first run
            try:
                first_run = ProcessExecutor(DATA, device="cpu", pool=fresh)
                c = timed(functools.partial(first_run.run, config, count_events))
            finally:
                fresh.close()
            time.sleep(SETTLE_S)
            cold.append(c / timed(lambda: in_process.run(config, count_events)))
            time.sleep(SETTLE_S)
            started = SparePool(threads=threads, spares=1)  # worker_preload at-start / auto
            try:
                started.preload()
                started.wait_ready(600)  # the service waited for its first request meanwhile
                first_run = ProcessExecutor(DATA, device="cpu", pool=started)
                c = timed(functools.partial(first_run.run, config, count_events))
            finally:
                started.close()
            time.sleep(SETTLE_S)
            preloaded.append(c / timed(lambda: in_process.run(config, count_events)))
        report("worker process, warm pool (forked)", "in-process executor", warm, "<= 1.05")
        report("warm worker's CPU time", "in-process CPU time", warm_cpu, "<= 1.05")
        report("worker process, cold pool (imports first)", "in-process executor", cold, "<= 1.1")
        report(
            "first run of a service that preloaded (worker_preload)",
            "in-process executor",
            preloaded,
            "<= 1.1",
        )

        ratios = []
        for _ in range(args.repeats):
            time.sleep(SETTLE_S)
            first = timed(lambda: shared.run(config))
            time.sleep(SETTLE_S)  # the spare started after the first run is ready
            one_by_one = first + timed(lambda: shared.run(config))
            time.sleep(SETTLE_S)
            with ThreadPoolExecutor(2) as runners:
                both = timed(lambda: list(runners.map(lambda _: shared.run(config), range(2))))
            ratios.append(both / one_by_one)
        report("two at once", "two in a row", ratios, "<= 0.6")

        ratios = []
        for _ in range(args.repeats):
            time.sleep(SETTLE_S)
            alone = timed(lambda: shared.run(config))
            burner = multiprocessing.get_context("spawn").Process(target=burn, daemon=True)
            burner.start()
            try:
                time.sleep(SETTLE_S)
                busy = timed(lambda: shared.run(config))
            finally:
                burner.kill()
                burner.join()
            ratios.append(busy / alone)
        report("beside a busy process", "alone", ratios, "<= 1.3")
    finally:
        full.close()
        half.close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
