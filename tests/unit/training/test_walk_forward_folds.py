"""Walk-forward fold boundaries, hand-computed on a tiny daily series, with the purge and
the embargo; and the walk-forward block's config errors."""

from __future__ import annotations

from datetime import date
from typing import TYPE_CHECKING

import numpy as np
import pytest

from ktrdr.config import parse_strategy_with_fields
from ktrdr.config.strategy import DataSplitConfig, WalkForwardConfig
from ktrdr.errors import DataError, StrategyConfigError
from tests.support.strategies import TINY_STRATEGY_YAML

if TYPE_CHECKING:  # pandas and numpy load in the tests, not while the suite is collected
    from ktrdr.training.dataset import Dataset
    from ktrdr.training.folds import FoldBounds

DAY = np.timedelta64(1, "D")
START = np.datetime64("2024-01-01", "ns")


def _bounds(*folds: tuple[int, int, int, int]) -> list[FoldBounds]:
    from ktrdr.training.folds import FoldBounds

    return [FoldBounds(i + 1, *f) for i, f in enumerate(folds)]


def test_expanding_folds_tile_the_period_before_the_test_split() -> None:
    from ktrdr.training.folds import fold_bounds

    # 12 bars, 3 folds: test_bars 12 // 4 = 3, the first test starts at bar 12 - 9 = 3;
    # a quarter of each training window (0.2 / (0.6 + 0.2)) is validation: floor(3/4)=0,
    # floor(6/4)=1, floor(9/4)=2 bars.
    got = fold_bounds(12, WalkForwardConfig(folds=3), 0.25)
    assert got == _bounds((0, 3, 3, 6), (0, 5, 6, 9), (0, 7, 9, 12))


def test_rolling_folds_keep_their_window_length() -> None:
    from ktrdr.training.folds import fold_bounds

    wf = WalkForwardConfig(folds=3, window="rolling", train_bars=4, test_bars=2)
    # first test at 12 - 3*2 = 6; windows [2,6), [4,8), [6,10), one validation bar each
    got = fold_bounds(12, wf, 0.25)
    assert got == _bounds((2, 5, 6, 8), (4, 7, 8, 10), (6, 9, 10, 12))
    # default train_bars: what the first fold has (6 bars), so every window has 6
    got = fold_bounds(12, WalkForwardConfig(folds=3, window="rolling", test_bars=2), 0.0)
    assert got == _bounds((0, 6, 6, 8), (2, 8, 8, 10), (4, 10, 10, 12))


@pytest.mark.parametrize(
    ("wf", "needs"),
    [
        (
            WalkForwardConfig(folds=3, test_bars=4),
            "needs 14 bar times before the test split; there are 12",
        ),
        (
            WalkForwardConfig(folds=3, window="rolling", train_bars=8, test_bars=2),
            "needs 14 bar times before the test split; there are 12",
        ),
        (
            WalkForwardConfig(folds=12),
            "12 folds of 1 test bars and at least 2 training bars needs 14",
        ),
    ],
)
def test_too_few_bars_is_one_error_naming_the_numbers(wf: WalkForwardConfig, needs: str) -> None:
    from ktrdr.training.folds import fold_bounds

    with pytest.raises(DataError, match=needs):
        fold_bounds(12, wf, 0.25)


def _series(n: int, known_after: dict[int, int]) -> Dataset:
    """One symbol, daily rows from 2024-01-01; every label known at its own bar except rows in
    ``known_after`` (row -> bars later)."""
    from ktrdr.training.dataset import Dataset

    times = START + np.arange(n) * DAY
    known = times + np.array([known_after.get(i, 0) for i in range(n)]) * DAY
    return Dataset(
        x=np.zeros((n, 1), np.float32),
        y=np.zeros(n, np.int64),
        symbol_idx=np.zeros(n, np.int64),
        timestamps=times,
        feature_names=["f"],
        symbols=["S"],
        confirmed=np.ones(n, bool),
        known_at=known,
        next_return=np.zeros(n),
    )


# Test split from 2024-01-13 (row 12): 12 development bars, as in the bounds above.
SPLIT = DataSplitConfig(train=0.6, validation=0.2, test=0.2, test_start=date(2024, 1, 13))


def test_rows_are_purged_where_their_label_reaches_the_next_part() -> None:
    from ktrdr.training.folds import fold_splits

    # Row 4's label needs row 6's price: in fold 2 (train 0-4, validation 5, test 6-8) it
    # would see the validation part, so it is purged; in fold 3 (train 0-6) it is not.
    ds = _series(16, {4: 2})
    f1, f2, f3 = fold_splits(ds, SPLIT, WalkForwardConfig(folds=3))
    assert (f1.train.tolist(), f1.validation.tolist(), f1.test.tolist()) == (
        [0, 1, 2],
        [],
        [3, 4, 5],
    )
    assert (f2.train.tolist(), f2.validation.tolist(), f2.test.tolist()) == (
        [0, 1, 2, 3],
        [5],
        [6, 7, 8],
    )
    assert f2.info["excluded"]["purged"] == 1
    assert (f3.train.tolist(), f3.validation.tolist(), f3.test.tolist()) == (
        [0, 1, 2, 3, 4, 5, 6],
        [7, 8],
        [9, 10, 11],
    )
    # The folds' tests tile the development period in order and end before the test split.
    assert [s.test_period.tolist() for s in (f1, f2, f3)] == [[3, 4, 5], [6, 7, 8], [9, 10, 11]]
    assert f3.info["boundaries"]["test_end"] == "2024-01-12T00:00:00+00:00"
    assert f2.info["bars"] == {"train": 5, "validation": 1, "test": 3}


def test_embargo_drops_rows_after_each_boundary() -> None:
    from ktrdr.training.folds import fold_splits

    ds = _series(16, {})
    wf = WalkForwardConfig(folds=3, window="rolling", train_bars=4, test_bars=2, embargo_bars=1)
    f1, f2, f3 = fold_splits(ds, SPLIT, wf)
    # fold 1: train [2,5), validation [5,6), test [6,8); rows 5 and 6 embargoed
    assert (f1.train.tolist(), f1.validation.tolist(), f1.test.tolist()) == ([2, 3, 4], [], [7])
    assert f1.test_period.tolist() == [6, 7]  # traded: every bar of the test
    assert f1.info["excluded"]["embargoed"] == 2
    assert (f3.train.tolist(), f3.validation.tolist(), f3.test.tolist()) == ([6, 7, 8], [], [11])
    for fold in (f1, f2, f3):
        assert ds.timestamps[fold.train].max() < ds.timestamps[fold.test_period].min()


def test_a_fold_without_usable_test_rows_is_an_error() -> None:
    from ktrdr.training.folds import fold_splits

    ds = _series(16, {})
    wf = WalkForwardConfig(folds=3, window="rolling", train_bars=4, test_bars=1, embargo_bars=1)
    with pytest.raises(DataError, match=r"fold 1/3 has too few usable rows .*test 0"):
        fold_splits(ds, SPLIT, wf)


@pytest.mark.parametrize(
    ("assignment", "message"),
    [
        ("evaluation.walk_forward.folds=1", "evaluation.walk_forward.folds: must be >= 2"),
        ("evaluation.walk_forward.fold=3", "evaluation.walk_forward.fold: unknown key"),
        ("evaluation.walk_forward.window=sliding", "evaluation.walk_forward.window"),
        ("evaluation.walk_forward={folds: 3, train_bars: 10}", "an expanding window trains from"),
        ("evaluation.walk_forward={test_bars: 10}", "evaluation.walk_forward.folds"),
    ],
)
def test_config_errors(assignment: str, message: str) -> None:
    from ktrdr.config.field_overrides import parse_assignment

    with pytest.raises(StrategyConfigError) as info:
        parse_strategy_with_fields(TINY_STRATEGY_YAML, [parse_assignment(assignment)])
    assert any(message in error for error in info.value.errors), info.value.errors


def test_absent_is_the_single_split_and_overrides_set_it() -> None:
    _, config = parse_strategy_with_fields(TINY_STRATEGY_YAML, [])
    assert config.evaluation.walk_forward is None
    sets = [("evaluation.walk_forward.folds", 4), ("evaluation.walk_forward.window", "rolling")]
    _, config = parse_strategy_with_fields(TINY_STRATEGY_YAML, sets)
    assert config.evaluation.walk_forward == WalkForwardConfig(folds=4, window="rolling")


def test_strategy_validate_says_whether_there_are_folds() -> None:
    from ktrdr.config.summary import strategy_summary

    _, config = parse_strategy_with_fields(TINY_STRATEGY_YAML, [])
    assert "Walk-forward: none (one split" in strategy_summary(config)
    sets = [("evaluation.walk_forward", {"folds": 3, "window": "rolling", "test_bars": 50})]
    _, config = parse_strategy_with_fields(TINY_STRATEGY_YAML, sets)
    assert "Walk-forward: 3 folds, rolling window, test_bars 50, before the test period" in (
        strategy_summary(config)
    )
