"""Selection bias of sweeps without a server: the objective rule, the stored mark (and the
migration that marks sweeps created before the rule), and the deflated Sharpe ratio's
reasons when a sweep's trials cannot give one."""

from __future__ import annotations

import math
import sqlite3
from pathlib import Path

import grpc
import pytest

from ktrdr.backend.errors import RequestError
from ktrdr.backend.sweeps.selection_bias import (
    check_objective,
    reads_test_period,
    sweep_deflated_sharpe,
    trial_tags,
)
from ktrdr.backend.sweeps.store import SweepRecord, SweepStore, TrialRecord
from ktrdr.backend.tracking.sweeps import sweep_tags
from ktrdr.training.v1 import backend_pb2 as pb

# The sweeps table as the first release created it (before selected_on_test).
OLD_SWEEPS = """
CREATE TABLE sweeps (
    id TEXT PRIMARY KEY, status INTEGER NOT NULL, strategy_name TEXT NOT NULL,
    request BLOB NOT NULL, owner TEXT NOT NULL, owner_role TEXT NOT NULL,
    created_us INTEGER NOT NULL, finished_us INTEGER, error BLOB
);
"""


def record(objective: str = "val_loss", *, marked: bool = False, **fields) -> SweepRecord:
    return SweepRecord(
        id=fields.pop("id", "s1"),
        status=pb.SWEEP_STATUS_RUNNING,
        strategy_name="tiny_rsi",
        request=pb.CreateSweepRequest(objective=objective),
        owner="",
        owner_role="",
        created_us=1,
        selected_on_test=marked,
    )


@pytest.mark.parametrize(
    ("metric", "reads"),
    [("test_accuracy", True), (" Test_sharpe_strategy", True), ("val_loss", False),
     ("best_val_loss", False), ("val_sharpe_strategy", False), ("latest_test", False)],
)  # fmt: skip
def test_test_period_metrics_are_those_named_test(metric, reads):
    assert reads_test_period(metric) is reads


def test_the_refusal_names_the_metric_the_reason_and_the_way_out():
    with pytest.raises(RequestError) as refused:
        check_objective(pb.CreateSweepRequest(objective="test_accuracy"))
    assert refused.value.code == grpc.StatusCode.INVALID_ARGUMENT
    assert "'test_accuracy'" in refused.value.message and "in-sample" in refused.value.message
    assert "--allow-test-objective" in refused.value.message
    check_objective(pb.CreateSweepRequest(objective="test_accuracy", allow_test_objective=True))
    check_objective(pb.CreateSweepRequest(objective="val_accuracy"))


def test_the_mark_is_stored_and_tags_the_models_and_the_mlflow_run(tmp_path: Path):
    store = SweepStore(tmp_path / "backend.db")
    try:
        store.insert_sweep(record("test_accuracy", marked=True))
        store.insert_sweep(record(id="s2"))
        marked, plain = store.get_sweep("s1"), store.get_sweep("s2")
    finally:
        store.close()
    assert marked is not None and marked.selected_on_test
    assert plain is not None and not plain.selected_on_test
    assert trial_tags(marked) == ["sweep=s1", "selected-on-test"]
    assert trial_tags(plain) == ["sweep=s2"]
    assert sweep_tags(marked)["ktrdr.selected_on_test"] == "true"
    assert sweep_tags(plain)["ktrdr.selected_on_test"] == "false"


def test_an_older_database_gets_the_column_and_its_test_objective_sweeps_marked(tmp_path):
    path = tmp_path / "backend.db"
    with sqlite3.connect(path) as db:
        db.executescript(OLD_SWEEPS)
        for sweep_id, objective in (("old-test", "test_return_strategy"), ("old-val", "val_loss")):
            request = pb.CreateSweepRequest(objective=objective).SerializeToString()
            db.execute(
                "INSERT INTO sweeps VALUES (?, 2, 'tiny_rsi', ?, '', '', 1, 2, NULL)",
                (sweep_id, request),
            )
    db.close()
    store = SweepStore(path)
    try:
        old_test, old_val = store.get_sweep("old-test"), store.get_sweep("old-val")
    finally:
        store.close()
    assert old_test is not None and old_test.selected_on_test
    assert old_val is not None and not old_val.selected_on_test


def trial(number: int, status: int = pb.TRIAL_STATUS_COMPLETED, **metrics: float) -> TrialRecord:
    return TrialRecord("s1", number, status, {}, 1, value=float(number), metrics=metrics)


STATS = {"val_bars": 400.0, "val_skewness_strategy": 0.0, "val_kurtosis_strategy": 3.0}


def test_the_deflated_sharpe_ratio_counts_compared_trials_and_says_why_it_is_missing():
    trials = [
        trial(0, val_bar_sharpe_strategy=0.02, **STATS),
        trial(1, val_bar_sharpe_strategy=0.10, **STATS),
        trial(2, pb.TRIAL_STATUS_PRUNED, val_loss=0.9),  # compared, pruned: counts
        trial(3, pb.TRIAL_STATUS_FAILED),  # never compared: does not count
    ]
    best = trials[1]
    dsr = sweep_deflated_sharpe(record(), trials, best)
    assert dsr is not None and dsr.probability is not None
    assert dsr.n_trials == 3 and dsr.sharpe == 0.10 and dsr.observations == 400
    assert sweep_deflated_sharpe(record(), trials, None) is None

    never_traded = trial(1, val_bars=400.0)
    dsr = sweep_deflated_sharpe(record(), [trials[0], never_traded], never_traded)
    assert dsr is not None and dsr.probability is None and "do not vary" in dsr.reason

    older = trial(1, val_loss=0.5)
    dsr = sweep_deflated_sharpe(record(), [trials[0], older], older)
    assert dsr is not None and dsr.probability is None
    assert "no validation trading statistics" in dsr.reason
    assert math.isnan(dsr.sharpe)

    alone = [trial(0, val_bar_sharpe_strategy=0.02, **STATS), trial(1, pb.TRIAL_STATUS_PRUNED)]
    dsr = sweep_deflated_sharpe(record(), alone, alone[0])
    assert dsr is not None and dsr.probability is None and "at least 2 trials" in dsr.reason


def _request(**fields) -> pb.CreateSweepRequest:
    return pb.CreateSweepRequest(
        strategy_name="tiny_rsi",
        parameters=[
            pb.SweepParameter(
                path="model.training.learning_rate", float_range=pb.FloatRange(low=1e-3, high=1e-2)
            )
        ],
        n_trials=2,
        **fields,
    )


@pytest.mark.parametrize("metric", ["test_accuracy", "val_sharpe_strategy", "loss"])
def test_a_prune_metric_no_epoch_reports_is_refused(metric: str) -> None:
    """The pruner reads EPOCH events' metrics: any other metric would never prune."""
    from ktrdr.backend.sweeps.space import SweepBounds, normalise

    bounds = SweepBounds(max_trials=10, max_parallelism=2)
    with pytest.raises(RequestError) as caught:
        normalise(_request(prune_metric=metric), bounds)
    assert caught.value.code == grpc.StatusCode.INVALID_ARGUMENT
    assert "never act" in caught.value.message and "val_loss" in caught.value.message
    quiet = normalise(_request(prune_metric=metric, pruner=pb.SWEEP_PRUNER_NONE), bounds)
    assert quiet.prune_metric == metric
    assert normalise(_request(), bounds).prune_metric == "val_loss"


@pytest.mark.parametrize(
    ("objective", "minimised"),
    [
        ("val_loss", True),
        ("best_val_loss", True),
        ("val_max_drawdown_strategy", True),
        ("wf_std_return", True),
        ("wf_mean_return", False),
        ("val_accuracy", False),
        ("val_sharpe_strategy", False),
    ],
)
def test_without_a_direction_losses_drawdowns_and_fold_spreads_are_minimised(
    objective: str, minimised: bool
) -> None:
    from ktrdr.backend.sweeps.space import default_direction

    expected = pb.OBJECTIVE_DIRECTION_MINIMIZE if minimised else pb.OBJECTIVE_DIRECTION_MAXIMIZE
    assert default_direction(objective) == expected
