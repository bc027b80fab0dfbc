"""Sweep benchmark (part of ``make bench``): the backend's overhead per sweep trial.

A: N short trials as one sweep through a real backend process (CreateSweep, WatchSweep to
   SWEEP_FINISHED; parallelism 1, local mode, the tiny strategy, random sampler, no pruner).
B: the same N trials by hand against the same backend: one CreateTraining after another with
   the same parameter values as field_overrides, each watched to COMPLETED.

The random sampler with a fixed seed draws the same N parameter sets in every sweep (checked),
so B can use them whatever the order.
C: the same N trials with Optuna in this process (``study.optimize``, the library's
   ``TrainingExecutor`` as the objective, the same parameter values): no services, no worker.

A, B and C alternate (the order rotates every round) in one run. The backend runs with its
default worker pool: warm workers forked from its forkserver (started by the warm-up).
Reported per pair: A / B of wall time, the overhead per trial (A - B) / N in ms, and that
overhead as a fraction of one trial by hand (B / N); median [min..max] (n). Worker start-up
and training vary from trial to trial, so the same overhead is also shown without them: each
run's wall time less its operations' own time (started -> finished, from GetOperation).

    python benchmarks/bench_sweep.py [--trials 4] [--rounds 3] [--epochs 1] [--quick]
"""

from __future__ import annotations

import argparse
import logging
import statistics
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(ROOT), str(ROOT / "benchmarks")]

from ratios import collect  # noqa: E402

from ktrdr.training.v1 import backend_pb2 as pb  # noqa: E402
from ktrdr.training.v1 import backend_pb2_grpc, common_pb2  # noqa: E402
from tests.support.processes import channel_to, start_backend  # noqa: E402
from tests.support.strategies import TINY_STRATEGY_YAML  # noqa: E402
from tests.support.sweeps import space  # noqa: E402

DATA = ROOT / "data" / "samples"
LOCAL = pb.EXECUTION_MODE_LOCAL
SEED = 11
DEADLINE_S = 600.0

Params = list[dict[str, str]]


def epochs_override(epochs: int) -> list[common_pb2.FieldOverride]:
    return [common_pb2.FieldOverride(path="model.training.epochs", value=str(epochs))]


class Run:
    """One A or B: wall seconds, the trials' parameters and their operations' own seconds."""

    def __init__(self, wall: float, params: Params, training: list[float]) -> None:
        self.wall, self.params, self.training = wall, params, training

    @property
    def outside(self) -> float:
        """Wall time not spent inside the trials' operations (started -> finished)."""
        return self.wall - sum(self.training)


def training_s(stub: backend_pb2_grpc.BackendStub, operation_ids: list[str]) -> list[float]:
    out = []
    for operation_id in operation_ids:
        request = pb.GetOperationRequest(operation_id=operation_id)
        op = stub.GetOperation(request, timeout=30).operation
        assert op.status == pb.OPERATION_STATUS_COMPLETED and op.mode == LOCAL, op
        span = op.finished_time.ToMicroseconds() - op.started_time.ToMicroseconds()
        out.append(span / 1e6)
    return out


def run_sweep(stub: backend_pb2_grpc.BackendStub, trials: int, epochs: int) -> Run:
    """A: seconds from CreateSweep to SWEEP_FINISHED, and the trials' parameters in order."""
    request = pb.CreateSweepRequest(
        strategy_yaml=TINY_STRATEGY_YAML,
        parameters=space(),
        objective="val_loss",
        n_trials=trials,
        parallelism=1,
        sampler=pb.SWEEP_SAMPLER_RANDOM,
        pruner=pb.SWEEP_PRUNER_NONE,
        seed=SEED,
        execution_mode=LOCAL,
        field_overrides=epochs_override(epochs),
    )
    start = time.perf_counter()
    sweep_id = stub.CreateSweep(request, timeout=60).sweep.sweep_id
    last = None
    for message in stub.WatchSweep(pb.WatchSweepRequest(sweep_id=sweep_id), timeout=DEADLINE_S):
        last = message.event
    elapsed = time.perf_counter() - start
    assert last is not None and last.kind == pb.SWEEP_EVENT_KIND_SWEEP_FINISHED, last
    sweep = last.sweep
    assert sweep.status == pb.SWEEP_STATUS_COMPLETED, sweep
    assert [t.status for t in sweep.trials] == [pb.TRIAL_STATUS_COMPLETED] * trials, sweep
    params = [dict(t.params) for t in sweep.trials]
    return Run(elapsed, params, training_s(stub, [t.operation_id for t in sweep.trials]))


def run_by_hand(stub: backend_pb2_grpc.BackendStub, params: Params, epochs: int) -> Run:
    """B: seconds for the same trials, one CreateTraining + WatchOperation after another."""
    operation_ids = []
    start = time.perf_counter()
    for values in params:
        overrides = epochs_override(epochs) + [
            common_pb2.FieldOverride(path=path, value=value) for path, value in values.items()
        ]
        op = stub.CreateTraining(
            pb.CreateTrainingRequest(
                strategy_yaml=TINY_STRATEGY_YAML, execution_mode=LOCAL, field_overrides=overrides
            ),
            timeout=60,
        ).operation
        status = pb.OPERATION_STATUS_UNSPECIFIED
        watch = pb.WatchOperationRequest(operation_id=op.operation_id)
        for message in stub.WatchOperation(watch, timeout=DEADLINE_S):
            status = message.status
        assert status == pb.OPERATION_STATUS_COMPLETED, (op.operation_id, status)
        operation_ids.append(op.operation_id)
    elapsed = time.perf_counter() - start
    return Run(elapsed, params, training_s(stub, operation_ids))


def run_optuna(params: Params, epochs: int) -> Run:
    """C: seconds for the same trials in one process, Optuna calling the executor."""
    import optuna

    from ktrdr.config import parse_strategy_with_fields
    from ktrdr.config.field_overrides import load_value
    from ktrdr.training.executor import TrainingExecutor

    optuna.logging.set_verbosity(optuna.logging.WARNING)
    executor = TrainingExecutor(DATA, device="cpu")
    spans: list[float] = []

    def objective(trial: optuna.Trial) -> float:
        fields = [("model.training.epochs", epochs)] + [
            (path, load_value(value)) for path, value in params[trial.number].items()
        ]
        started = time.perf_counter()
        _, config = parse_strategy_with_fields(TINY_STRATEGY_YAML, fields)
        result = executor.run(config)
        spans.append(time.perf_counter() - started)
        return float(result.summary.get("val_loss", 0.0))

    start = time.perf_counter()
    optuna.create_study(sampler=optuna.samplers.RandomSampler(seed=SEED)).optimize(
        objective, n_trials=len(params)
    )
    return Run(time.perf_counter() - start, params, spans)


def spread(values: list[float], fmt: str) -> str:
    low, mid, high = min(values), statistics.median(values), max(values)
    return f"{mid:{fmt}} [{low:{fmt}}..{high:{fmt}}] ({len(values)})"


def bench(trials: int, rounds: int, epochs: int) -> None:
    with tempfile.TemporaryDirectory(prefix="bench-sweep-") as tmp:
        backend = start_backend(Path(tmp) / "backend", DATA, [])
        try:
            with channel_to(backend.address) as channel:
                stub = backend_pb2_grpc.BackendStub(channel)
                # warm-up (imports Optuna in the backend, first trainings) and the parameters
                params = run_sweep(stub, trials, epochs).params
                run_by_hand(stub, params[:1], epochs)
                run_optuna(params[:1], epochs)  # this process's imports and first calls
                sweeps: list[Run] = []
                by_hand: list[Run] = []
                optuna_runs: list[Run] = []
                for i in range(rounds):
                    order = ["A", "B", "C"]
                    for which in order[i % 3 :] + order[: i % 3]:
                        if which == "A":
                            sweeps.append(run_sweep(stub, trials, epochs))
                            assert sweeps[-1].params == params  # the same trials as B's
                        elif which == "B":
                            by_hand.append(run_by_hand(stub, params, epochs))
                        else:
                            optuna_runs.append(run_optuna(params, epochs))
                    a, b, c = sweeps[-1], by_hand[-1], optuna_runs[-1]
                    print(
                        f"  round {i + 1}: sweep {a.wall:.2f} s ({a.outside:.2f} s outside its "
                        f"operations), by hand {b.wall:.2f} s ({b.outside:.2f} s), Optuna in "
                        f"one process {c.wall:.2f} s",
                        flush=True,
                    )
        finally:
            backend.stop()
    pairs = list(zip(sweeps, by_hand, strict=True))
    ratios = [a.wall / b.wall for a, b in pairs]
    per_trial_ms = [(a.wall - b.wall) / trials * 1e3 for a, b in pairs]
    fraction = [(a.wall - b.wall) / b.wall for a, b in pairs]  # (A-B)/N over one trial's B/N
    outside_ms = [(a.outside - b.outside) / trials * 1e3 for a, b in pairs]
    trial_s = [t for b in by_hand for t in b.training]
    outside_fraction = [
        (a.outside - b.outside) / sum(b.training) for a, b in pairs
    ]  # per trial, over one trial's own time
    print(
        f"{trials} trial(s) of tiny_rsi ({epochs} epoch(s), local, parallelism 1, warm "
        f"workers), {rounds} alternated rounds:"
    )
    print(
        f"  sweep (A) {spread([a.wall for a in sweeps], '.2f')} s, "
        f"by hand (B) {spread([b.wall for b in by_hand], '.2f')} s"
    )
    print(
        f"  one trial by hand (B / N) {statistics.median(b.wall for b in by_hand) / trials:.2f} "
        f"s median; its operation (started -> finished) {spread(trial_s, '.2f')} s"
    )
    print(f"  sweep / by hand: {spread(ratios, '.3f')}, target <= 1.05")
    print(f"  overhead per trial (A - B) / N: {spread(per_trial_ms, '.0f')} ms")
    print(f"  overhead per trial / one trial by hand: {spread(fraction, '+.3f')}")
    print(
        "  without the operations' own time (worker start-up, training): overhead per trial "
        f"{spread(outside_ms, '.0f')} ms; over one trial's operation time "
        f"{spread(outside_fraction, '+.3f')}"
    )
    to_optuna = [a.wall / c.wall for a, c in zip(sweeps, optuna_runs, strict=True)]
    print(f"  sweep / Optuna in one process: {spread(to_optuna, '.3f')}, target <= 1.3")
    collect(
        f"sweep of {trials} trial(s) through the backend, CreateSweep to SWEEP_FINISHED",
        "the same trials with Optuna in one process (executor as the objective)",
        to_optuna,
        "<= 1.3",
    )
    collect(
        f"sweep of {trials} trial(s), CreateSweep to SWEEP_FINISHED",
        "the same trials by hand, CreateTraining + WatchOperation each",
        ratios,
        "<= 1.05",
    )
    # The same pairs with the trials' own time taken from B in both: the backend's overhead
    # without the noise of worker start-up and training.
    collect(
        "sweep, its time outside the trials' operations + B's operations",
        "the same trials by hand",
        [(b.wall + a.outside - b.outside) / b.wall for a, b in pairs],
        "<= 1.05",
    )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--trials", type=int, default=4, help="trials per sweep (4)")
    parser.add_argument("--rounds", type=int, default=3, help="alternated A/B pairs (3)")
    parser.add_argument("--epochs", type=int, default=1, help="epochs per trial (1)")
    # run_all.py passes its own arguments (e.g. --quick) to every benchmark.
    parser.add_argument("--quick", action="store_true", help="2 trials, 2 rounds")
    args, _ = parser.parse_known_args(argv)
    if args.quick:
        args.trials, args.rounds = min(args.trials, 2), min(args.rounds, 2)
    logging.getLogger("ktrdr").setLevel(logging.ERROR)
    start = time.perf_counter()
    bench(max(1, args.trials), max(1, args.rounds), max(1, args.epochs))
    print(f"({time.perf_counter() - start:.0f} s)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
