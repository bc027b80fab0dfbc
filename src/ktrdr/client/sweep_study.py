"""A sweep as an Optuna study on the client's side, for Optuna's own analysis and plots.

The backend's study lives in its own database, which a notebook on another machine cannot
open; ``GetSweep`` carries everything those tools read - the search space, each trial's
parameters, state and objective value - so the study is rebuilt in memory from it:

    study = client.sweep_study(sweep_id)
    optuna.visualization.matplotlib.plot_optimization_history(study)
    optuna.importance.get_param_importances(study)

Trials that are still running, or were cancelled or interrupted (replaced after a restart),
are left out; failed trials are FAIL and pruned trials PRUNED, with the last epoch's pruned
metric as their intermediate value.
"""

from __future__ import annotations

from typing import Any

from ktrdr.client.errors import KtrdrClientError
from ktrdr.client.sweeps import SweepInfo, TrialInfo
from ktrdr.sweep_space import optuna_distributions

_STATES = {"completed": "COMPLETE", "pruned": "PRUNED", "failed": "FAIL"}


def _optuna() -> Any:
    try:
        import optuna
    except ImportError:
        raise KtrdrClientError(
            "a sweep's study needs Optuna on this machine: pip install 'ktrdr[sweeps]'"
        ) from None
    return optuna


def distributions(sweep: SweepInfo) -> dict[str, Any]:
    """The search space as Optuna distributions, by field path."""
    if sweep.proto is None:
        raise KtrdrClientError(f"sweep {sweep.sweep_id}: no search space (not from GetSweep)")
    return optuna_distributions(sweep.proto.parameters, _optuna().distributions)


def _value(text: str, distribution: Any, path: str) -> Any:
    kind = type(distribution).__name__
    try:
        if kind == "FloatDistribution":
            return float(text)
        if kind == "IntDistribution":
            return int(text)
    except ValueError:
        raise KtrdrClientError(f"trial parameter {path}={text!r} is not a number") from None
    return text  # a choice: the same YAML text the backend's study holds


def to_study(sweep: SweepInfo) -> Any:
    """An in-memory ``optuna.Study`` with the sweep's finished trials."""
    optuna = _optuna()
    space = distributions(sweep)
    direction = "maximize" if sweep.direction == "maximize" else "minimize"
    study = optuna.create_study(study_name=sweep.sweep_id, direction=direction)
    study.set_user_attr("strategy", sweep.strategy)
    study.set_user_attr("objective", sweep.objective)
    prune_metric = sweep.proto.prune_metric if sweep.proto is not None else ""
    for t in sorted(sweep.trials, key=lambda t: t.number):
        frozen = _frozen_trial(optuna, t, space, prune_metric)
        if frozen is not None:
            study.add_trial(frozen)
    return study


def _frozen_trial(
    optuna: Any, t: TrialInfo, space: dict[str, Any], prune_metric: str
) -> Any | None:
    state = _STATES.get(t.status)
    if state is None or (state == "COMPLETE" and t.value is None):
        return None
    params = {p: _value(t.params[p], d, p) for p, d in space.items() if p in t.params}
    used = {path: space[path] for path in params}
    intermediate: dict[int, float] = {}
    if t.last_epoch and prune_metric in t.metrics:
        intermediate[t.last_epoch] = t.metrics[prune_metric]
    return optuna.trial.create_trial(
        state=getattr(optuna.trial.TrialState, state),
        value=t.value if state == "COMPLETE" else None,
        params=params,
        distributions=used,
        intermediate_values=intermediate,
        user_attrs={"operation_id": t.operation_id, "ktrdr_trial": t.number},
    )


__all__ = ["distributions", "to_study"]
