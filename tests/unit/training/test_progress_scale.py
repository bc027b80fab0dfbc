"""The run's percent scale: a walk-forward run gives each fold's training its share of a final
training (by training rows), in the evaluate step after its own evaluation, and the percent
only ever grows, also when the run switches from the estimate to the rows' scale."""

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

STEPS = range(1, TOTAL_STEPS + 1)


def test_without_folds_the_scale_is_the_steps_weights():
    scale = ProgressScale()
    assert scale.base(1) == 0.0
    assert scale.within(TOTAL_STEPS, 1.0) == pytest.approx(100.0)
    assert scale.span(TRAIN_STEP) == pytest.approx(75.0)  # of the weights' total, 100
    assert [scale.base(s) for s in STEPS] == [step_base_percent(s) for s in STEPS]
    assert step_span_percent(EVALUATE_STEP) == pytest.approx(3.0)
    # no folds: "all folds done" is simply the end of the evaluate step
    assert scale.folds_done(0) == scale.base(EVALUATE_STEP + 1)


@pytest.mark.parametrize("folds", [2, 3, 4])
def test_the_estimate_weighs_each_fold_as_a_final_training(folds):
    scale = ProgressScale.estimate(folds)
    final = scale.span(TRAIN_STEP)
    assert scale.folds_done(folds) - scale.folds_done(0) == pytest.approx(folds * final)
    # K + 1 trainings of 75 among the other steps' 25: e.g. 4 folds, 375 of 400
    assert scale.folds_done(folds) - scale.folds_done(0) + final == pytest.approx(
        100.0 * 75 * (folds + 1) / (25 + 75 * (folds + 1))
    )
    # the evaluate step's own work (3) comes first, the folds end the step
    assert scale.folds_done(0) == pytest.approx(
        scale.base(EVALUATE_STEP) + 100.0 * 3 / (100 + 75 * folds)
    )
    assert scale.folds_done(folds) == pytest.approx(scale.base(EVALUATE_STEP + 1))


def test_folds_weigh_their_training_rows_at_most_a_final_training():
    scale = ProgressScale.for_rows(1000, [250, 500, 2000])
    assert scale.fold_shares == (0.25, 0.5, 1.0)
    final = scale.span(TRAIN_STEP)
    assert final == pytest.approx(100.0 * 75 / (100 + 75 * 1.75))
    # each fold's share of the percent is its rows' share
    ends = [scale.folds_done(n) for n in range(4)]
    gains = [b - a for a, b in itertools.pairwise(ends)]
    assert gains == pytest.approx([0.25 * final, 0.5 * final, 1.0 * final])
    # halfway through fold 2: fold 1 and half of fold 2
    assert scale.folds_done(1.5) == pytest.approx(ends[1] + 0.25 * final)


@pytest.mark.parametrize("rows", [[100, 200, 300], [1000, 1000], [1, 5000, 10]])
def test_switching_from_the_estimate_to_the_rows_never_goes_back(rows):
    """The executor reports steps 1-6 on the estimate, then everything on the rows' scale."""
    estimate, actual = ProgressScale.estimate(len(rows)), ProgressScale.for_rows(1000, rows)
    points = [estimate.base(s) for s in range(1, 7)] + [estimate.within(6, 1.0)]
    for step in range(7, TOTAL_STEPS + 1):
        points.append(actual.base(step))
        if step == TRAIN_STEP:
            points += [actual.within(step, e / 10) for e in range(11)]
        if step == EVALUATE_STEP:
            points += [actual.folds_done(d / 10) for d in range(10 * len(rows) + 1)]
        points.append(actual.within(step, 1.0))
    assert all(a <= b for a, b in itertools.pairwise(points))
    assert points[0] == 0.0 and points[-1] == pytest.approx(100.0)


def test_out_of_range_fractions_are_clamped():
    scale = ProgressScale.for_rows(100, [50, 50])
    assert scale.folds_done(7) == scale.folds_done(2) == pytest.approx(scale.base(10))
    assert scale.folds_done(-1) == scale.folds_done(0)
    assert scale.within(TRAIN_STEP, -1.0) == scale.base(TRAIN_STEP)
