"""The run's percent scale: a walk-forward run gives its K fold trainings K final trainings'
share, in the evaluate step after its own evaluation, and the percent only ever grows."""

from __future__ import annotations

import itertools

import pytest

from ktrdr.training.progress import (
    EVALUATE_STEP,
    TOTAL_STEPS,
    TRAIN_STEP,
    ProgressScale,
    step_base_percent,
    step_span_percent,
)


def test_without_folds_the_scale_is_the_steps_weights():
    scale = ProgressScale()
    assert scale.base(1) == 0.0
    assert scale.within(TOTAL_STEPS, 1.0) == pytest.approx(100.0)
    assert scale.span(TRAIN_STEP) == pytest.approx(75.0)  # of the weights' total, 100
    assert [scale.base(s) for s in range(1, TOTAL_STEPS + 1)] == [
        step_base_percent(s) for s in range(1, TOTAL_STEPS + 1)
    ]
    assert step_span_percent(EVALUATE_STEP) == pytest.approx(3.0)
    # no folds: "all folds done" is simply the end of the evaluate step
    assert scale.folds_done(0) == scale.base(EVALUATE_STEP + 1)


@pytest.mark.parametrize("folds", [2, 3, 4])
def test_folds_weigh_as_many_final_trainings(folds):
    scale = ProgressScale(folds=folds)
    final = scale.span(TRAIN_STEP)
    fold_share = scale.folds_done(folds) - scale.folds_done(0)
    assert fold_share == pytest.approx(folds * final)
    # K + 1 trainings of 75 among the other steps' 25: e.g. 4 folds, 375 of 400
    assert final + fold_share == pytest.approx(100.0 * 75 * (folds + 1) / (25 + 75 * (folds + 1)))
    # the evaluate step's own work (3) comes first, the folds end the step
    assert scale.folds_done(0) == pytest.approx(
        scale.base(EVALUATE_STEP) + 100.0 * 3 / (100 + 75 * folds)
    )
    assert scale.folds_done(folds) == pytest.approx(scale.base(EVALUATE_STEP + 1))
    assert scale.within(TOTAL_STEPS, 1.0) == pytest.approx(100.0)


def test_percent_never_goes_back_through_a_walk_forward_run():
    """Every point a run reports, in the order it reports them: steps 1-8 (the final model's
    epochs within step 8), step 9's evaluation, each fold's epochs, steps 10 and 11."""
    folds = 3
    scale = ProgressScale(folds=folds)
    points = []
    for step in range(1, TOTAL_STEPS + 1):
        points.append(scale.base(step))
        if step == TRAIN_STEP:
            points += [scale.within(step, e / 10) for e in range(11)]
        if step == EVALUATE_STEP:
            points += [
                scale.folds_done(n - 1 + e / 10) for n in range(1, folds + 1) for e in range(11)
            ]
        points.append(scale.within(step, 1.0))
    assert all(a <= b for a, b in itertools.pairwise(points))
    assert points[0] == 0.0 and points[-1] == pytest.approx(100.0)
    # out-of-range fractions are clamped, not extrapolated
    assert scale.folds_done(folds + 5) == scale.folds_done(folds)
    assert scale.within(TRAIN_STEP, -1.0) == scale.base(TRAIN_STEP)
