"""Walk-forward evaluation trains one model per fold, really: folds before the test split,
tests that tile it in order and never touch their training data, the single-split model kept
as the bundle's, and a cancel honoured between folds."""

from __future__ import annotations

import itertools

import pytest

from ktrdr.errors import DataError
from ktrdr.training.cancellation import CancellationToken, TrainingCancelled
from ktrdr.training.progress import ProgressEvent, ProgressKind

WALK_FORWARD = {"walk_forward": {"folds": 3, "window": "rolling", "embargo_bars": 2}}


def test_walk_forward_trains_one_model_per_fold(make_strategy, run_training, tiny_result):
    import pandas as pd

    events: list[ProgressEvent] = []
    result = run_training(make_strategy(evaluation=WALK_FORWARD), progress=events.append)
    wf = result.metrics["walk_forward"]
    folds = wf["folds"]
    assert [f["fold"] for f in folds] == [1, 2, 3]
    starts = [e.message for e in events if e.kind is ProgressKind.STEP_STARTED]
    assert sum("walk-forward fold" in m for m in starts) == 3
    assert all(f["epochs_run"] >= 1 for f in folds)
    # Only the final model's epochs are EPOCH events (what a sweep's pruner reads).
    epochs = [e for e in events if e.kind is ProgressKind.EPOCH]
    assert len(epochs) == result.metrics["training"]["epochs_run"]
    percents = [e.percent for e in events]
    assert percents == sorted(percents)
    # The percent follows the work: each fold's training weighs its training rows' share of
    # the final model's (rolling windows are smaller), and the folds fill step 9 to step 10.
    done = [e for e in events if e.kind is ProgressKind.STEP_FINISHED and "fold" in e.step_name]
    assert [e.step_name for e in done] == [f"walk-forward fold {i}/3" for i in (1, 2, 3)]
    assert [e.metrics["accuracy"] for e in done] == [f["accuracy"] for f in folds]
    final_rows = result.bundle.metadata["split"]["rows"]["train"]
    shares = [f["rows"]["train"] / final_rows for f in folds]
    assert all(0 < share < 1 for share in shares), shares
    step = {(e.kind, e.step): e.percent for e in events if "fold" not in e.step_name}
    total = 100 + 75 * sum(shares)  # the step weights, 75 of them the final training's
    assert step[ProgressKind.STEP_FINISHED, 8] == pytest.approx(100 * 92 / total)
    gains = [b.percent - a.percent for a, b in itertools.pairwise(done)]
    assert gains == pytest.approx([100 * 75 * share / total for share in shares[1:]])
    assert done[-1].percent == pytest.approx(step[ProgressKind.STEP_STARTED, 10])

    test_start = pd.Timestamp(result.bundle.metadata["split"]["boundaries"]["test_start"])
    for fold in folds:
        assert pd.Timestamp(fold["train_start"]) < pd.Timestamp(fold["test_start"])
        assert pd.Timestamp(fold["test_start"]) <= pd.Timestamp(fold["test_end"]) < test_start
        assert fold["rows"]["test"] > 0 and fold["rows"]["train"] > 0
        assert fold["excluded"]["embargoed"] > 0
    for before, after in itertools.pairwise(folds):
        assert pd.Timestamp(before["test_end"]) < pd.Timestamp(after["test_start"])
        # rolling: the window moves, it does not grow
        assert pd.Timestamp(before["train_start"]) < pd.Timestamp(after["train_start"])
    # The stitched run trades every fold's test bar once, in order.
    assert wf["stitched"]["overall"]["bars"] == sum(f["bars"]["test"] for f in folds)
    summary = result.summary
    assert summary["wf_folds"] == 3
    assert summary["wf_mean_accuracy"] == pytest.approx(sum(f["accuracy"] for f in folds) / 3)
    assert {f"wf_fold_return_{i}" for i in (1, 2, 3)} <= set(summary)
    # The bundle's model is the single-split model, trained exactly as without walk-forward.
    assert summary["test_accuracy"] == tiny_result.summary["test_accuracy"]
    assert result.bundle.metadata["metrics"]["walk_forward"]["folds"] == folds


def test_cancel_between_folds(make_strategy, run_training):
    token = CancellationToken()

    def on_event(event: ProgressEvent) -> None:
        if event.kind is ProgressKind.STEP_STARTED and "fold 2/3" in event.message:
            token.cancel("enough folds")

    with pytest.raises(TrainingCancelled):
        run_training(make_strategy(evaluation=WALK_FORWARD), progress=on_event, cancel=token)


def test_too_many_folds_is_one_error_naming_the_numbers(make_strategy, run_training):
    config = make_strategy(evaluation={"walk_forward": {"folds": 3, "test_bars": 100_000}})
    with pytest.raises(DataError, match=r"needs 300002 bar times before the test split; there are"):
        run_training(config)
