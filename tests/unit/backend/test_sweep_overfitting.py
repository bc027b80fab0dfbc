"""A sweep's probability of backtest overfitting from its trials' walk-forward folds
(hand-computed CSCV splits), as GetSweep and the client carry it; and the reason when the
trials have no folds."""

from __future__ import annotations

import pytest

from ktrdr.backend.sweeps.convert import sweep_to_proto
from ktrdr.backend.sweeps.overfitting import sweep_overfitting
from ktrdr.backend.sweeps.store import SweepRecord, TrialRecord
from ktrdr.client.sweeps import SweepInfo
from ktrdr.training.v1 import backend_pb2 as pb


def trial(
    number: int, returns: list[float], status: int = pb.TRIAL_STATUS_COMPLETED
) -> TrialRecord:
    metrics = {"val_loss": 1.0 - number / 10}
    if returns:
        metrics["wf_folds"] = float(len(returns))
        metrics |= {f"wf_fold_return_{k}": r for k, r in enumerate(returns, start=1)}
    return TrialRecord("s1", number, status, {}, 1, value=metrics["val_loss"], metrics=metrics)


def test_the_best_trial_everywhere_is_not_overfit():
    pbo = sweep_overfitting([trial(0, [2, 2, 2, 2]), trial(1, [1, 1, 1, 1]), trial(2, [0] * 4)])
    assert pbo is not None
    assert (pbo.probability, pbo.n_trials, pbo.n_folds, pbo.combinations) == (0.0, 3, 4, 6)


def test_a_winner_that_flips_on_the_other_half_is_overfit():
    # Two folds, one split each way: the trial best on fold 1 is worst on fold 2, and back.
    pbo = sweep_overfitting([trial(0, [1, -1]), trial(1, [-1, 1])])
    assert pbo is not None and pbo.probability == 1.0 and pbo.combinations == 2


def test_an_odd_fold_count_leaves_the_first_fold_out():
    # With fold 1 the first trial would win both splits' in-sample half and keep its rank;
    # without it, it is the flipping pair above.
    pbo = sweep_overfitting([trial(0, [9, 1, -1]), trial(1, [-9, -1, 1])])
    assert pbo is not None and pbo.probability == 1.0 and pbo.n_folds == 2
    assert "first fold left out" in pbo.describe()


def test_without_folds_it_says_why():
    # pruned and failed trials are not compared; a completed one without folds is
    trials = [trial(0, []), trial(1, [], pb.TRIAL_STATUS_PRUNED)]
    pbo = sweep_overfitting(trials)
    assert pbo is not None and pbo.probability is None
    assert "no walk-forward folds" in pbo.describe()
    assert "evaluation.walk_forward.folds" in pbo.reason
    assert sweep_overfitting([trial(0, [], pb.TRIAL_STATUS_PRUNED)]) is None  # none completed
    mixed = sweep_overfitting([trial(0, [1, 2]), trial(1, [1, 2, 3, 4])])
    assert mixed is not None and mixed.probability is None and "folds differ" in mixed.reason
    one = sweep_overfitting([trial(0, [1, 2])])
    assert one is not None and one.probability is None and "2 completed trials" in one.reason


@pytest.mark.parametrize("folds", [True, False])
def test_get_sweep_and_the_client_carry_it(folds: bool):
    record = SweepRecord(
        id="s1",
        status=pb.SWEEP_STATUS_COMPLETED,
        strategy_name="tiny_rsi",
        request=pb.CreateSweepRequest(
            objective="wf_mean_return", direction=pb.OBJECTIVE_DIRECTION_MAXIMIZE
        ),
        owner="",
        owner_role="",
        created_us=1,
    )
    trials = [trial(0, [1, -1] if folds else []), trial(1, [-1, 1] if folds else [])]
    message = sweep_to_proto(record, trials)
    assert message.HasField("backtest_overfitting")
    info = SweepInfo.from_proto(message).backtest_overfitting
    assert info is not None
    if folds:
        assert info.probability == 1.0 and info.metric == "wf_fold_return"
        assert info.description.startswith("probability of backtest overfitting 1.00")
    else:
        assert info.probability is None
        assert info.description.startswith("probability of backtest overfitting: not available")
