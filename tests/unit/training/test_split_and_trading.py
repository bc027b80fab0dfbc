"""The calendar split (overlapping and disjoint histories), the purge, the embargo, the
exclusion of unconfirmed labels, and the trading metrics against a hand-computed example."""

from __future__ import annotations

from datetime import date
from typing import TYPE_CHECKING

import numpy as np
import pytest

from ktrdr.config.strategy import DataSplitConfig

if TYPE_CHECKING:
    from ktrdr.training.dataset import Dataset


def _dataset(starts: list[str], n: int, known_after: int = 0) -> Dataset:
    """Daily rows per symbol from each start; every label confirmed except the last 3 rows of
    each symbol; each label known ``known_after`` bars later."""
    from ktrdr.training.dataset import Dataset

    xs, idx, ts, known, confirmed = [], [], [], [], []
    for i, start in enumerate(starts):
        times = np.datetime64(start, "ns") + np.arange(n) * np.timedelta64(1, "D")
        ts.append(times)
        known.append(times + known_after * np.timedelta64(1, "D"))
        idx.append(np.full(n, i))
        xs.append(np.zeros((n, 1), np.float32))
        confirmed.append(np.arange(n) < n - 3)
    rows = n * len(starts)
    return Dataset(
        x=np.concatenate(xs),
        y=np.zeros(rows, np.int64),
        symbol_idx=np.concatenate(idx),
        timestamps=np.concatenate(ts),
        feature_names=["f"],
        symbols=[f"S{i}" for i in range(len(starts))],
        confirmed=np.concatenate(confirmed),
        known_at=np.concatenate(known),
        next_return=np.zeros(rows),
    )


RATIOS = DataSplitConfig(train=0.6, validation=0.2, test=0.2)


def _check_calendar(ds: Dataset, split) -> None:
    ts = ds.timestamps
    assert ts[split.train].max() < ts[split.validation].min()
    assert ts[split.validation].max() < ts[split.test].min()
    # No label of a part uses a price of the next part.
    assert ds.known_at[split.train].max() < ts[split.validation].min()
    assert ds.known_at[split.validation].max() < ts[split.test].min()
    for rows in (split.train, split.validation, split.test):
        assert ds.confirmed[rows].all()


def test_overlapping_histories_share_one_calendar():
    from ktrdr.training.split import chronological_split

    ds = _dataset(["2020-01-01", "2020-01-11"], 100, known_after=2)
    split = chronological_split(ds, RATIOS)
    _check_calendar(ds, split)
    # Union: 110 days; validation starts on day 66, test on day 88 for both symbols.
    assert split.info["boundaries"]["validation_start"].startswith("2020-03-07")
    assert split.info["boundaries"]["test_start"].startswith("2020-03-29")
    assert split.info["excluded"]["unconfirmed_labels"] == 6
    assert split.info["excluded"]["purged"] == 2 * 2 * 2  # 2 rows per boundary per symbol


def test_disjoint_histories_put_the_later_symbol_in_the_test_period():
    from ktrdr.training.split import chronological_split

    ds = _dataset(["2010-01-01", "2020-01-01"], 50)
    split = chronological_split(ds, DataSplitConfig(train=0.5, validation=0.2, test=0.3))
    _check_calendar(ds, split)
    per = split.info["per_symbol"]
    assert per["S1"]["train"] == 0 and per["S0"]["test"] == 0


def test_boundaries_given_as_dates():
    from ktrdr.training.split import chronological_split

    ds = _dataset(["2020-01-01"], 100)
    cfg = DataSplitConfig(validation_start=date(2020, 2, 1), test_start=date(2020, 3, 1))
    split = chronological_split(ds, cfg)
    assert split.info["boundaries"]["given_as_dates"]
    assert str(ds.timestamps[split.test].min())[:10] == "2020-03-01"
    assert str(ds.timestamps[split.train].max())[:10] == "2020-01-31"


def test_purge_drops_rows_whose_labels_need_the_next_part():
    from ktrdr.training.split import chronological_split

    loose = chronological_split(_dataset(["2020-01-01"], 200, known_after=0), RATIOS)
    tight = chronological_split(_dataset(["2020-01-01"], 200, known_after=5), RATIOS)
    assert loose.info["excluded"]["purged"] == 0
    assert tight.info["excluded"]["purged"] == 10
    assert len(tight.train) == len(loose.train) - 5


def test_embargo_drops_bars_after_each_boundary():
    from ktrdr.training.split import chronological_split

    ds = _dataset(["2020-01-01"], 200)
    plain = chronological_split(ds, RATIOS)
    embargo = chronological_split(ds, RATIOS.model_copy(update={"embargo_bars": 4}))
    assert len(embargo.validation) == len(plain.validation) - 4
    assert len(embargo.test) == len(plain.test) - 4
    assert embargo.info["excluded"]["embargoed"] == 8
    assert ds.timestamps[embargo.test].min() - ds.timestamps[plain.test].min() == np.timedelta64(
        4, "D"
    )


def test_unconfirmed_rows_are_never_trained_on_or_scored():
    from ktrdr.training.split import chronological_split

    ds = _dataset(["2020-01-01"], 100)
    split = chronological_split(ds, RATIOS)
    last3 = np.arange(97, 100)
    assert not set(last3) & set(split.test) and set(last3) <= set(split.test_period)


def test_trading_metrics_match_a_hand_computed_example():
    from ktrdr.labels import BUY, HOLD, SELL
    from ktrdr.training.trading import trading_metrics

    # Returns of the next bar: +10%, -10%, +10%, +10%, -5%.
    next_return = np.array([0.10, -0.10, 0.10, 0.10, -0.05])
    times = np.datetime64("2021-01-01", "ns") + np.arange(5) * np.timedelta64(1, "D")
    signals = np.array([BUY, SELL, HOLD, BUY, HOLD])  # long, short, short, long, long
    m = trading_metrics(
        ["X"], np.zeros(5, np.int64), times, next_return, signals, BUY, cost_bps=100
    )
    s = m["per_symbol"]["X"]["strategy"]
    # Per bar: +0.10-0.01 | +0.10-0.02 | -0.10 | +0.10-0.02 | -0.05-0.01 (final exit)
    expected = np.array([0.09, 0.08, -0.10, 0.08, -0.06])
    assert s["return"] == pytest.approx(np.prod(1 + expected) - 1)
    equity = np.cumprod(1 + expected)
    assert s["max_drawdown"] == pytest.approx(1 - equity[2] / equity[1])
    assert s["trades"] == 3  # long, short (2 bars), long (2 bars)
    # Trades: long +10% -2% ; short: (1.10*0.90)-1 -2% < 0 ; long: 1.10*0.95-1 -2% > 0
    assert s["hit_rate"] == pytest.approx(2 / 3)
    sharpe = expected.mean() / expected.std(ddof=1) * np.sqrt(5 / (4 / 365.25))
    assert s["sharpe"] == pytest.approx(sharpe)
    bh = m["per_symbol"]["X"]["buy_and_hold"]
    assert bh["return"] == pytest.approx(1.09 * 0.90 * 1.10 * 1.10 * 0.94 - 1)
    assert bh["trades"] == 1
    assert m["per_symbol"]["X"]["flat"] == {
        "return": 0.0,
        "sharpe": 0.0,
        "max_drawdown": 0.0,
        "trades": 0,
        "hit_rate": 0.0,
    }
    # Buy-and-hold made 11.6 %, the strategy 7.6 %: not better.
    assert m["verdict"]["beats_baselines"] is False
    assert m["verdict"]["best_baseline"] == "buy_and_hold"
    assert m["overall"]["strategy"]["return"] == pytest.approx(s["return"])


def test_a_model_no_better_than_a_baseline_is_reported_as_such():
    from ktrdr.labels import BUY, SELL
    from ktrdr.training.trading import trading_metrics

    next_return = np.full(10, 0.01)
    times = np.datetime64("2021-01-01", "ns") + np.arange(10) * np.timedelta64(1, "D")
    m = trading_metrics(["X"], np.zeros(10, np.int64), times, next_return, np.full(10, SELL), BUY)
    assert m["verdict"]["beats_baselines"] is False
    assert "no better than the buy_and_hold baseline" in m["verdict"]["text"]
    flat = trading_metrics(
        ["X"], np.zeros(10, np.int64), times, next_return, np.full(10, SELL), BUY, allow_short=False
    )
    assert flat["per_symbol"]["X"]["strategy"]["trades"] == 0


def test_the_validation_period_is_every_bar_between_the_boundaries():
    from ktrdr.training.split import chronological_split

    ds = _dataset(["2020-01-01"], 100, known_after=2)
    split = chronological_split(ds, RATIOS)
    ts = ds.timestamps
    period = split.validation_period
    assert set(split.validation) < set(period)  # purged rows are still traded
    assert ts[period].min() == ts[split.validation].min()
    assert ts[period].max() < ts[split.test_period].min()
    assert len(period) + len(split.test_period) + (ts < ts[period].min()).sum() == len(ts)


def test_the_overall_strategy_carries_the_moments_of_its_bar_returns():
    """The hand example's per-bar returns 0.09, 0.08, -0.10, 0.08, -0.06: the deflated
    Sharpe ratio's inputs, and the ``val_*`` summary of a validation period."""
    from ktrdr.labels import BUY, HOLD, SELL
    from ktrdr.research.selection import sharpe_sample
    from ktrdr.training.trading import trading_metrics, validation_summary

    next_return = np.array([0.10, -0.10, 0.10, 0.10, -0.05])
    times = np.datetime64("2021-01-01", "ns") + np.arange(5) * np.timedelta64(1, "D")
    signals = np.array([BUY, SELL, HOLD, BUY, HOLD])
    m = trading_metrics(
        ["X"], np.zeros(5, np.int64), times, next_return, signals, BUY, cost_bps=100
    )
    expected = np.array([0.09, 0.08, -0.10, 0.08, -0.06])
    strategy = m["overall"]["strategy"]
    assert strategy["bar_sharpe"] == pytest.approx(expected.mean() / expected.std(ddof=1))
    d = expected - expected.mean()
    assert strategy["skewness"] == pytest.approx((d**3).mean() / (d**2).mean() ** 1.5)
    assert strategy["kurtosis"] == pytest.approx((d**4).mean() / (d**2).mean() ** 2)
    assert strategy["bar_sharpe"] == pytest.approx(sharpe_sample(list(expected)).sharpe)
    summary = validation_summary({"validation_trading": m})
    assert summary["val_bars"] == 5
    assert summary["val_bar_sharpe_strategy"] == strategy["bar_sharpe"]
    assert summary["val_return_strategy"] == strategy["return"]
    assert summary["val_kurtosis_strategy"] == strategy["kurtosis"]
    assert validation_summary({}) == {}
    # a strategy that never trades: no moments, and no NaN passed off as a number
    flat = trading_metrics(["X"], np.zeros(5, np.int64), times, next_return, np.full(5, HOLD), BUY)
    summary = validation_summary({"validation_trading": flat})
    assert "val_bar_sharpe_strategy" not in summary and summary["val_bars"] == 5
