"""Sweep and trial records -> protobuf messages."""

from __future__ import annotations

from collections.abc import Sequence

from ktrdr.backend.conversions import us_to_timestamp
from ktrdr.backend.sweeps.overfitting import overfitting_to_proto, sweep_overfitting
from ktrdr.backend.sweeps.selection_bias import deflated_sharpe_to_proto, sweep_deflated_sharpe
from ktrdr.backend.sweeps.store import SweepRecord, TrialRecord
from ktrdr.training.v1 import backend_pb2 as pb

TRIAL_NAMES = pb.TrialStatus


def trial_to_proto(trial: TrialRecord) -> pb.SweepTrial:
    message = pb.SweepTrial(
        number=trial.number,
        status=trial.status,  # type: ignore[arg-type]
        params=trial.params,
        operation_id=trial.operation_id,
        pruned_at_epoch=trial.pruned_at_epoch,
        last_epoch=trial.last_epoch,
        metrics=trial.metrics,
        started_time=us_to_timestamp(trial.started_us),
    )
    if trial.value is not None:
        message.value = trial.value
    if trial.finished_us:
        message.finished_time.CopyFrom(us_to_timestamp(trial.finished_us))
    if trial.error is not None:
        message.error.CopyFrom(trial.error)
    return message


def best_trial(record: SweepRecord, trials: Sequence[TrialRecord]) -> TrialRecord | None:
    done = [t for t in trials if t.status == pb.TRIAL_STATUS_COMPLETED and t.value is not None]
    if not done:
        return None
    maximise = record.request.direction == pb.OBJECTIVE_DIRECTION_MAXIMIZE
    return (max if maximise else min)(done, key=lambda t: t.value)  # type: ignore[arg-type,return-value]


def sweep_to_proto(
    record: SweepRecord, trials: Sequence[TrialRecord], *, with_trials: bool = True
) -> pb.Sweep:
    r = record.request
    message = pb.Sweep(
        sweep_id=record.id,
        status=record.status,  # type: ignore[arg-type]
        strategy_name=record.strategy_name,
        parameters=r.parameters,
        objective=r.objective,
        direction=r.direction,
        n_trials=r.n_trials,
        parallelism=r.parallelism,
        sampler=r.sampler,
        pruner=r.pruner,
        seed=r.seed,
        execution_mode=r.execution_mode,
        owner=record.owner,
        created_time=us_to_timestamp(record.created_us),
        prune_metric=r.prune_metric,
        selected_on_test=record.selected_on_test,
    )
    if record.finished_us:
        message.finished_time.CopyFrom(us_to_timestamp(record.finished_us))
    if record.error is not None:
        message.error.CopyFrom(record.error)
    for trial in trials:
        name = TRIAL_NAMES.Name(trial.status).removeprefix("TRIAL_STATUS_")
        message.trial_counts[name] = message.trial_counts[name] + 1
    if with_trials:
        message.trials.extend(trial_to_proto(t) for t in trials)
    best = best_trial(record, trials)
    if best is not None:
        message.best_trial.CopyFrom(trial_to_proto(best))
        dsr = sweep_deflated_sharpe(record, trials, best)
        if dsr is not None:
            message.deflated_sharpe.CopyFrom(deflated_sharpe_to_proto(dsr, best.number))
        pbo = sweep_overfitting(trials)
        if pbo is not None:
            message.backtest_overfitting.CopyFrom(overfitting_to_proto(pbo))
    return message


__all__ = ["best_trial", "sweep_to_proto", "trial_to_proto"]
