"""Sweeps from the client: the search space from ``PATH=SPEC`` strings, the sweep RPCs, and
trials as records or a DataFrame (pandas only when a table is asked for).

    client.sweep("tiny_rsi", {"model.training.learning_rate": "float:1e-4:1e-1:log",
                              "model.architecture.hidden_layers[0]": "int:8:64",
                              "model.architecture.activation": ["relu", "tanh"]},
                 trials=20, parallel=2, objective="val_loss:min")

SPEC: ``float:LOW:HIGH[:log]``, ``int:LOW:HIGH[:STEP][:log]``, ``choice:A,B,...`` (YAML
values; ``choice:[[64, 32], [16]]`` takes a JSON list when a value has commas).
"""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

import grpc

from ktrdr.client.errors import KtrdrClientError, service_error
from ktrdr.training.v1 import backend_pb2

SAMPLERS = {"tpe": 1, "random": 2, "grid": 3}
PRUNERS = {"median": 1, "none": 2}
SWEEP_STATUSES = ("running", "completed", "failed", "cancelled")


def _number(text: str, kind: type, spec: str) -> Any:
    try:
        return kind(float(text)) if kind is int and "e" in text.lower() else kind(text)
    except ValueError:
        raise KtrdrClientError(f"{spec!r}: {text!r} is not {kind.__name__}") from None


def parse_param(path: str, spec: str | Sequence[Any]) -> backend_pb2.SweepParameter:
    """One search-space dimension: a SPEC string, or a list of Python values (choices)."""
    if not isinstance(spec, str):
        values = [v if isinstance(v, str) else json.dumps(v) for v in spec]
        return backend_pb2.SweepParameter(path=path, choices=backend_pb2.Choices(values=values))
    kind, _, rest = spec.partition(":")
    kind = kind.strip().lower()
    if kind in ("choice", "choices"):
        if rest.strip().startswith("["):
            try:
                values = [json.dumps(v) for v in json.loads(rest)]
            except ValueError:
                raise KtrdrClientError(f"{path}={spec}: not a JSON list of values") from None
        else:
            values = [v.strip() for v in rest.split(",") if v.strip()]
        return backend_pb2.SweepParameter(path=path, choices=backend_pb2.Choices(values=values))
    parts = [p.strip() for p in rest.split(":")]
    log = bool(parts) and parts[-1].lower() == "log"
    if log:
        parts = parts[:-1]
    if kind == "float" and len(parts) == 2:
        low, high = (_number(p, float, spec) for p in parts)
        return backend_pb2.SweepParameter(
            path=path, float_range=backend_pb2.FloatRange(low=low, high=high, log=log)
        )
    if kind == "int" and len(parts) in (2, 3):
        low, high, *step = (_number(p, int, spec) for p in parts)
        if step and step[0] < 1:
            raise KtrdrClientError(f"{path}={spec}: the step must be at least 1, got {step[0]}")
        return backend_pb2.SweepParameter(
            path=path,
            int_range=backend_pb2.IntRange(
                low=low, high=high, step=step[0] if step else 0, log=log
            ),
        )
    raise KtrdrClientError(
        f"{path}={spec}: expected float:LOW:HIGH[:log], int:LOW:HIGH[:STEP][:log] or choice:A,B,..."
    )


def parse_param_assignment(text: str) -> backend_pb2.SweepParameter:
    """``PATH=SPEC`` (what ``ktrdr sweep create --param`` takes)."""
    path, sep, spec = text.partition("=")
    if not sep or not path.strip():
        raise KtrdrClientError(f"{text!r}: expected PATH=SPEC, e.g. model.training.epochs=int:5:50")
    return parse_param(path.strip(), spec.strip())


def parse_objective(text: str) -> tuple[str, int]:
    """``METRIC[:min|max]`` -> (metric, ObjectiveDirection)."""
    metric, _, direction = text.partition(":")
    directions = {"": 0, "min": 1, "minimize": 1, "max": 2, "maximize": 2}
    if direction.lower() not in directions:
        raise KtrdrClientError(f"objective {text!r}: the direction is min or max")
    return metric.strip(), directions[direction.lower()]


def _name(enum: Any, value: int, prefix: str) -> str:
    return str(enum.Name(value)).removeprefix(prefix).lower()


def _time(message: Any, name: str) -> datetime | None:
    return getattr(message, name).ToDatetime() if message.HasField(name) else None


@dataclass(frozen=True)
class TrialInfo:
    """One trial of a sweep."""

    number: int
    status: str
    params: dict[str, str]
    value: float | None
    operation_id: str
    pruned_at_epoch: int
    last_epoch: int
    metrics: dict[str, float]
    error: str
    started: datetime | None
    finished: datetime | None

    @classmethod
    def from_proto(cls, t: backend_pb2.SweepTrial) -> TrialInfo:
        return cls(
            number=t.number,
            status=_name(backend_pb2.TrialStatus, t.status, "TRIAL_STATUS_"),
            params=dict(t.params),
            value=t.value if t.HasField("value") else None,
            operation_id=t.operation_id,
            pruned_at_epoch=t.pruned_at_epoch,
            last_epoch=t.last_epoch,
            metrics=dict(t.metrics),
            error=t.error.message if t.HasField("error") else "",
            started=_time(t, "started_time"),
            finished=_time(t, "finished_time"),
        )

    def row(self) -> dict[str, Any]:
        """A flat dict: params as their paths, metrics as their names."""
        out = {f.name: getattr(self, f.name) for f in dataclasses.fields(self)}
        params, metrics = out.pop("params"), out.pop("metrics")
        return {**out, **params, **metrics}


@dataclass(frozen=True)
class DeflatedSharpeInfo:
    """The deflated Sharpe ratio of a sweep's best trial (Bailey & López de Prado, 2014):
    the probability that its validation Sharpe ratio is real given the number of trials;
    ``probability`` is None when it cannot be computed (``reason`` says why)."""

    probability: float | None
    reason: str
    n_trials: int
    trial_number: int
    sharpe: float  # the best trial's, per validation bar
    expected_max_sharpe: float  # what the best of n_trials trials without skill would reach
    observations: int  # validation bars
    description: str  # one line for people

    @classmethod
    def from_proto(cls, d: backend_pb2.DeflatedSharpe) -> DeflatedSharpeInfo:
        return cls(
            probability=d.probability if d.HasField("probability") else None,
            reason=d.reason,
            n_trials=d.n_trials,
            trial_number=d.trial_number,
            sharpe=d.sharpe,
            expected_max_sharpe=d.expected_max_sharpe,
            observations=d.observations,
            description=d.description,
        )

    def __str__(self) -> str:
        return self.description


@dataclass(frozen=True)
class BacktestOverfittingInfo:
    """The probability of backtest overfitting of a sweep (Bailey et al., 2015), by
    combinatorially symmetric cross-validation over its trials' walk-forward folds;
    ``probability`` is None when it cannot be computed (``reason`` says why, e.g. no folds)."""

    probability: float | None
    reason: str
    n_trials: int
    n_folds: int
    combinations: int  # in-sample/out-of-sample fold splits evaluated
    metric: str  # the per-fold number compared
    description: str  # one line for people

    @classmethod
    def from_proto(cls, d: backend_pb2.BacktestOverfitting) -> BacktestOverfittingInfo:
        return cls(
            probability=d.probability if d.HasField("probability") else None,
            reason=d.reason,
            n_trials=d.n_trials,
            n_folds=d.n_folds,
            combinations=d.combinations,
            metric=d.metric,
            description=d.description,
        )

    def __str__(self) -> str:
        return self.description


@dataclass(frozen=True)
class SweepInfo:
    """One sweep as the backend reports it. ``selected_on_test``: its objective is a
    test-period metric, so the best trial's test numbers are in-sample."""

    sweep_id: str
    status: str
    strategy: str
    objective: str
    direction: str
    n_trials: int
    parallelism: int
    sampler: str
    pruner: str
    seed: int
    owner: str
    trial_counts: dict[str, int]
    best: TrialInfo | None
    error: str
    trials: list[TrialInfo] = field(default_factory=list)
    selected_on_test: bool = False
    deflated_sharpe: DeflatedSharpeInfo | None = None
    backtest_overfitting: BacktestOverfittingInfo | None = None
    proto: backend_pb2.Sweep | None = field(default=None, repr=False, compare=False)

    @classmethod
    def from_proto(cls, s: backend_pb2.Sweep) -> SweepInfo:
        return cls(
            sweep_id=s.sweep_id,
            status=_name(backend_pb2.SweepStatus, s.status, "SWEEP_STATUS_"),
            strategy=s.strategy_name,
            objective=s.objective,
            direction=_name(backend_pb2.ObjectiveDirection, s.direction, "OBJECTIVE_DIRECTION_"),
            n_trials=s.n_trials,
            parallelism=s.parallelism,
            sampler=_name(backend_pb2.SweepSampler, s.sampler, "SWEEP_SAMPLER_"),
            pruner=_name(backend_pb2.SweepPruner, s.pruner, "SWEEP_PRUNER_"),
            seed=s.seed,
            owner=s.owner,
            trial_counts={k.lower(): v for k, v in s.trial_counts.items()},
            best=TrialInfo.from_proto(s.best_trial) if s.HasField("best_trial") else None,
            error=s.error.message if s.HasField("error") else "",
            trials=[TrialInfo.from_proto(t) for t in s.trials],
            selected_on_test=s.selected_on_test,
            deflated_sharpe=DeflatedSharpeInfo.from_proto(s.deflated_sharpe)
            if s.HasField("deflated_sharpe")
            else None,
            backtest_overfitting=BacktestOverfittingInfo.from_proto(s.backtest_overfitting)
            if s.HasField("backtest_overfitting")
            else None,
            proto=s,
        )

    @property
    def is_finished(self) -> bool:
        return self.status != "running"


def trials_table(trials: Sequence[TrialInfo]) -> Any:
    """A DataFrame of the trials when pandas is installed, else a list of flat dicts."""
    rows = [t.row() for t in trials]
    try:
        import pandas as pd
    except ImportError:
        return rows
    return pd.DataFrame(rows)


class SweepCalls:
    """The sweep half of ``TrainingClient`` (it provides ``_call``, ``backend_stub``)."""

    address: str
    backend_stub: Any
    _call: Callable[..., Any]

    def create_sweep(
        self,
        strategy: str | Path,
        params: Mapping[str, str | Sequence[Any]] | Sequence[backend_pb2.SweepParameter],
        *,
        trials: int = 0,
        parallel: int = 1,
        objective: str = "val_loss",
        sampler: str = "tpe",
        pruner: str = "median",
        seed: int | None = None,
        mode: str | None = None,
        require_gpu: bool = False,
        fields: Mapping[str, Any] | None = None,
        set_fields: Sequence[str] = (),
        prune_metric: str = "",
        startup_trials: int | None = None,
        warmup_epochs: int | None = None,
        allow_test_objective: bool = False,
    ) -> SweepInfo:
        """Start a sweep; it runs on the backend whether or not this client stays. An
        objective on a test-period metric (``test_*``) is refused unless
        ``allow_test_objective``; the sweep and its models are then marked selected-on-test."""
        from ktrdr.client.records import mode_to_proto
        from ktrdr.client.training_client import field_overrides_to_proto, strategy_source

        if isinstance(params, Mapping):
            space = [parse_param(path, spec) for path, spec in params.items()]
        else:
            space = list(params)
        if sampler.lower() not in SAMPLERS or pruner.lower() not in PRUNERS:
            raise KtrdrClientError(
                f"sampler is one of {', '.join(SAMPLERS)}; pruner one of {', '.join(PRUNERS)}"
            )
        metric, direction = parse_objective(objective)
        request = backend_pb2.CreateSweepRequest(
            parameters=space,
            objective=metric,
            direction=direction,  # type: ignore[arg-type]
            n_trials=trials,
            parallelism=parallel,
            sampler=SAMPLERS[sampler.lower()],  # type: ignore[arg-type]
            pruner=PRUNERS[pruner.lower()],  # type: ignore[arg-type]
            execution_mode=mode_to_proto(mode),  # type: ignore[arg-type]
            require_gpu=require_gpu,
            field_overrides=field_overrides_to_proto(fields, set_fields),
            prune_metric=prune_metric,
            allow_test_objective=allow_test_objective,
            **strategy_source(strategy),  # type: ignore[arg-type]
        )
        if seed is not None:
            request.seed = seed
        if startup_trials is not None:
            request.pruner_startup_trials = startup_trials
        if warmup_epochs is not None:
            request.pruner_warmup_epochs = warmup_epochs
        return SweepInfo.from_proto(self._call(self.backend_stub.CreateSweep, request).sweep)

    def sweep_events(
        self, sweep_id: str, *, timeout_s: float | None = None
    ) -> Iterator[backend_pb2.SweepEvent]:
        """The raw WatchSweep stream: a snapshot, then events until the sweep ends."""
        stream = self.backend_stub.WatchSweep(
            backend_pb2.WatchSweepRequest(sweep_id=sweep_id), timeout=timeout_s
        )
        try:
            for message in stream:
                yield message.event
        except grpc.RpcError as exc:
            raise service_error(exc, self.address, getattr(self, "tls", None)) from None
        finally:
            stream.cancel()

    def watch_sweep(
        self,
        sweep_id: str,
        *,
        on_event: Callable[[backend_pb2.SweepEvent], None] | None = None,
        timeout_s: float | None = None,
    ) -> SweepInfo:
        """Follow a sweep to its end; returns it with its trials."""
        for e in self.sweep_events(sweep_id, timeout_s=timeout_s):
            if on_event is not None:
                on_event(e)
        return self.get_sweep(sweep_id)

    def sweep(
        self,
        strategy: str | Path,
        params: Mapping[str, str | Sequence[Any]] | Sequence[backend_pb2.SweepParameter],
        *,
        on_event: Callable[[backend_pb2.SweepEvent], None] | None = None,
        **options: Any,
    ) -> Any:
        """Run a sweep to its end (``create_sweep``'s options) and return its trials: a
        DataFrame when pandas is installed, else a list of dicts."""
        created = self.create_sweep(strategy, params, **options)
        return trials_table(self.watch_sweep(created.sweep_id, on_event=on_event).trials)

    def get_sweep(self, sweep_id: str) -> SweepInfo:
        request = backend_pb2.GetSweepRequest(sweep_id=sweep_id)
        return SweepInfo.from_proto(self._call(self.backend_stub.GetSweep, request).sweep)

    def sweep_study(self, sweep_id: str) -> Any:
        """The sweep as an in-memory ``optuna.Study`` (its finished trials), for Optuna's
        plots and importances; needs Optuna on this machine (the sweeps extra)."""
        from ktrdr.client.sweep_study import to_study

        return to_study(self.get_sweep(sweep_id))

    def sweeps(
        self, *, status: str | None = None, owner: str = "", limit: int = 50
    ) -> list[SweepInfo]:
        """Sweeps, newest first, without their trials: all pages up to ``limit`` (0: all)."""
        value = 0
        if status:
            if status.lower() not in SWEEP_STATUSES:
                raise KtrdrClientError(f"status is one of {', '.join(SWEEP_STATUSES)}")
            value = SWEEP_STATUSES.index(status.lower()) + 1
        out: list[SweepInfo] = []
        token = ""
        while True:
            request = backend_pb2.ListSweepsRequest(
                status=value,  # type: ignore[arg-type]
                owner=owner,
                page_size=min(limit - len(out), 100) if limit else 100,
                page_token=token,
            )
            response = self._call(self.backend_stub.ListSweeps, request)
            out.extend(SweepInfo.from_proto(s) for s in response.sweeps)
            token = response.next_page_token
            if not token or (limit and len(out) >= limit):
                return out[:limit] if limit else out

    def cancel_sweep(self, sweep_id: str, *, reason: str = "") -> SweepInfo:
        request = backend_pb2.CancelSweepRequest(sweep_id=sweep_id, reason=reason)
        return SweepInfo.from_proto(self._call(self.backend_stub.CancelSweep, request).sweep)


__all__ = [
    "BacktestOverfittingInfo",
    "DeflatedSharpeInfo",
    "SweepCalls",
    "SweepInfo",
    "TrialInfo",
    "parse_objective",
    "parse_param",
    "parse_param_assignment",
    "trials_table",
]
