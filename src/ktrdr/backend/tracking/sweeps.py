"""A sweep as an MLflow parent run; its trials' runs are its children.

The parent run carries the sweep's search space and budget as parameters (``space.<path>`` =
``float [0.001, 0.1] log``, ``n_trials``, ``parallelism``), its settings as tags (objective,
direction, sampler, pruner, seed, ``ktrdr.selected_on_test``: "true" when the objective is a
test-period metric, whose best test numbers are then in-sample) and the strategy as an
artifact. When the sweep ends it gets its status (FINISHED, KILLED for a cancelled sweep,
FAILED), the best trial as ``best_value`` / ``best_trial`` metrics and ``best.<path>``
parameters, the best trial's deflated Sharpe ratio as the metric ``deflated_sharpe`` (with
``deflated_sharpe.expected_max_sharpe`` and ``.n_trials``; the tag
``ktrdr.deflated_sharpe`` says in words what it means, or why there is none), the probability
of backtest overfitting over the trials' walk-forward folds as ``backtest_overfitting`` (the
tag ``ktrdr.backtest_overfitting`` says what it means, or why there is none), and the
objective of every completed trial as the metric ``objective`` with the trial number as step.
A trial's run points at it with MLflow's ``mlflow.parentRunId`` tag, which is how MLflow's UI
nests runs.

The parent is found by its ``ktrdr.sweep_id`` tag before one is created (by the sweep's own
spool entries or by the first trial logged, whichever comes first after an outage), so it
exists once. Everything here runs in the tracker's thread.
"""

from __future__ import annotations

import logging
import math
import tempfile
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ktrdr.training.v1 import backend_pb2 as pb

if TYPE_CHECKING:
    from ktrdr.backend.sweeps.store import SweepRecord, SweepStore, TrialRecord

logger = logging.getLogger(__name__)

SWEEP_TAG = "ktrdr.sweep_id"
PARENT_TAG = "mlflow.parentRunId"
MAX_PARAM_CHARS = 6000  # MLflow's limit for one parameter value
_STATUS: dict[int, tuple[str, str]] = {
    pb.SWEEP_STATUS_COMPLETED: ("completed", "FINISHED"),
    pb.SWEEP_STATUS_CANCELLED: ("cancelled", "KILLED"),
    pb.SWEEP_STATUS_FAILED: ("failed", "FAILED"),
}


class ParentRuns:
    """The sweeps' parent runs, for the tracker's thread (``store``: the backend's sweeps)."""

    def __init__(self) -> None:
        self.store: SweepStore | None = None
        self._known: dict[str, str] = {}  # sweep id -> its run id

    def forget(self) -> None:
        """After a failed call (the tracking store may have been replaced)."""
        self._known.clear()

    def log_sweep(self, client: Any, experiment_id: str, sweep_id: str) -> None:
        """The sweep's parent run; once the sweep ended, its status and best trial."""
        record = self.store.get_sweep(sweep_id) if self.store is not None else None
        if record is None or self.store is None:
            logger.warning("mlflow: sweep %s is not in the store; not logged", sweep_id)
            return
        run_id, status = ensure_parent(client, experiment_id, record)
        self._known[sweep_id] = run_id
        if record.finished and status == "RUNNING":
            finish_parent(client, run_id, record, self.store.trials(sweep_id))

    def run_id(self, client: Any, experiment_id: str, sweep_id: str) -> str:
        """The run id of the sweep's parent run ("" if unknown), created when it does not
        exist yet: a trial logged before its sweep (after an outage) still gets its parent."""
        known = self._known.get(sweep_id)
        if known is not None:
            return known
        record = self.store.get_sweep(sweep_id) if self.store is not None else None
        if record is not None:
            known, _ = ensure_parent(client, experiment_id, record, describe=False)
        else:
            found = find_parent(client, experiment_id, sweep_id)
            known = str(found.info.run_id) if found is not None else ""
        if known:
            self._known[sweep_id] = known
        return known


def _key(path: str) -> str:
    return path.replace("[", ".").replace("]", "")


def _enum(name: str, value: int, prefix: str) -> str:
    enum = getattr(pb, name)
    return str(enum.Name(value)).removeprefix(prefix).lower() if value else "default"


def space_spec(parameter: pb.SweepParameter) -> str:
    """One search-space parameter as text: ``float [0.001, 0.1] log``, ``int [4, 16] step 2``,
    ``choice [relu, tanh]``."""
    which = parameter.WhichOneof("space")
    if which == "float_range":
        r = parameter.float_range
        return f"float [{r.low:g}, {r.high:g}]" + (" log" if r.log else "")
    if which == "int_range":
        ir = parameter.int_range
        step = f" step {ir.step}" if ir.step > 1 else ""
        return f"int [{ir.low}, {ir.high}]{step}" + (" log" if ir.log else "")
    return "choice [" + ", ".join(parameter.choices.values) + "]"


def sweep_tags(record: SweepRecord) -> dict[str, str]:
    r = record.request
    return {
        SWEEP_TAG: record.id,
        "ktrdr.kind": "sweep",
        "ktrdr.strategy": record.strategy_name,
        "ktrdr.owner": record.owner,
        "ktrdr.objective": r.objective,
        "ktrdr.direction": _enum("ObjectiveDirection", r.direction, "OBJECTIVE_DIRECTION_"),
        "ktrdr.sampler": _enum("SweepSampler", r.sampler, "SWEEP_SAMPLER_"),
        "ktrdr.pruner": _enum("SweepPruner", r.pruner, "SWEEP_PRUNER_"),
        "ktrdr.seed": str(r.seed) if r.HasField("seed") else "",
        "ktrdr.mode": _enum("ExecutionMode", r.execution_mode, "EXECUTION_MODE_"),
        "ktrdr.selected_on_test": "true" if record.selected_on_test else "false",
    }


def sweep_params(record: SweepRecord) -> dict[str, str]:
    r = record.request
    params = {f"space.{_key(p.path)}": space_spec(p)[:MAX_PARAM_CHARS] for p in r.parameters}
    params.update(n_trials=str(r.n_trials), parallelism=str(r.parallelism))
    if r.pruner == pb.SWEEP_PRUNER_MEDIAN:
        params["prune_metric"] = r.prune_metric
        params["pruner_startup_trials"] = str(r.pruner_startup_trials)
        params["pruner_warmup_epochs"] = str(r.pruner_warmup_epochs)
    return {k: v for k, v in params.items() if len(k) <= 250}


def find_parent(client: Any, experiment_id: str, sweep_id: str) -> Any | None:
    """The sweep's run (an MLflow Run), or None."""
    found = client.search_runs(
        [experiment_id], filter_string=f"tags.`{SWEEP_TAG}` = '{sweep_id}'", max_results=1
    )
    return found[0] if found else None


def ensure_parent(
    client: Any, experiment_id: str, record: SweepRecord, *, describe: bool = True
) -> tuple[str, str]:
    """(run id, status) of the sweep's run, created and described if it does not exist; an
    existing RUNNING run is described again when ``describe`` (idempotent: same values)."""
    run = find_parent(client, experiment_id, record.id)
    if run is None:
        run = client.create_run(
            experiment_id,
            start_time=record.created_us // 1000,
            tags={SWEEP_TAG: record.id, "ktrdr.kind": "sweep"},
            run_name=f"sweep {record.id[:12]} {record.strategy_name}",
        )
        describe = True
    run_id, status = str(run.info.run_id), str(run.info.status)
    if describe and status == "RUNNING":
        _describe(client, run_id, record)
    return run_id, status


def _describe(client: Any, run_id: str, record: SweepRecord) -> None:
    from mlflow.entities import Param, RunTag

    tags = [RunTag(k, v) for k, v in sweep_tags(record).items()]
    tags.append(RunTag("ktrdr.status", "running"))
    params = [Param(k, v) for k, v in sweep_params(record).items()]
    for i in range(0, max(len(params), 1), 100):  # MLflow's batch limits
        client.log_batch(run_id, params=params[i : i + 100], tags=tags if i == 0 else [])
    with tempfile.TemporaryDirectory(prefix="ktrdr-mlflow-") as tmp:
        strategy = Path(tmp) / "strategy.yaml"
        strategy.write_text(record.request.strategy_yaml, encoding="utf-8")
        client.log_artifact(run_id, str(strategy))


def finish_parent(client: Any, run_id: str, record: SweepRecord, trials: list[TrialRecord]) -> None:
    """The ended sweep's status, best trial and objective history on its (RUNNING) run."""
    from mlflow.entities import Metric, Param, RunTag

    from ktrdr.backend.sweeps.convert import best_trial
    from ktrdr.backend.sweeps.overfitting import sweep_overfitting
    from ktrdr.backend.sweeps.selection_bias import sweep_deflated_sharpe

    status, run_status = _STATUS.get(record.status, ("unknown", "FINISHED"))
    end_ms = (record.finished_us or record.created_us) // 1000
    metrics: list[Metric] = []
    params: list[Param] = []
    tags = [RunTag("ktrdr.status", status)]
    if record.error is not None and record.error.message:
        tags.append(RunTag("ktrdr.error", record.error.message[:5000]))
    counts: dict[str, int] = {}
    for trial in trials:
        name = pb.TrialStatus.Name(trial.status).removeprefix("TRIAL_STATUS_").lower()  # type: ignore[arg-type]
        counts[name] = counts.get(name, 0) + 1
        finite = trial.value is not None and math.isfinite(trial.value)
        if trial.status == pb.TRIAL_STATUS_COMPLETED and finite:
            at = (trial.finished_us or record.created_us) // 1000
            metrics.append(Metric("objective", float(trial.value), at, trial.number))  # type: ignore[arg-type]
    for name, count in counts.items():
        metrics.append(Metric(f"trials.{name}", float(count), end_ms, 0))
    best = best_trial(record, trials)
    if best is not None and best.value is not None and math.isfinite(best.value):
        metrics.append(Metric("best_value", float(best.value), end_ms, 0))
        metrics.append(Metric("best_trial", float(best.number), end_ms, 0))
        params += [
            Param(f"best.{_key(path)}", value[:MAX_PARAM_CHARS])
            for path, value in best.params.items()
            if len(path) <= 245
        ]
        tags.append(RunTag("ktrdr.best_operation_id", best.operation_id))
    dsr = sweep_deflated_sharpe(record, trials, best)
    if dsr is not None:
        tags.append(RunTag("ktrdr.deflated_sharpe", dsr.describe()[:5000]))
        if dsr.probability is not None:
            metrics.append(Metric("deflated_sharpe", dsr.probability, end_ms, 0))
            metrics.append(
                Metric("deflated_sharpe.expected_max_sharpe", dsr.expected_max_sharpe, end_ms, 0)
            )
        metrics.append(Metric("deflated_sharpe.n_trials", float(dsr.n_trials), end_ms, 0))
    pbo = sweep_overfitting(trials)
    if pbo is not None:
        tags.append(RunTag("ktrdr.backtest_overfitting", pbo.describe()[:5000]))
        if pbo.probability is not None:
            metrics.append(Metric("backtest_overfitting", pbo.probability, end_ms, 0))
            metrics.append(Metric("backtest_overfitting.n_folds", float(pbo.n_folds), end_ms, 0))
    for i in range(0, max(len(params), len(metrics), 1), 100):
        client.log_batch(
            run_id,
            metrics=metrics[i : i + 100],
            params=params[i : i + 100],
            tags=tags if i == 0 else [],
        )
    client.set_terminated(run_id, run_status, end_time=end_ms)
    logger.info("mlflow: sweep %s logged as run %s (%s)", record.id, run_id, status)


__all__ = ["PARENT_TAG", "SWEEP_TAG", "ParentRuns", "ensure_parent", "find_parent", "finish_parent"]
