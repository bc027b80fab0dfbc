"""The baselines on small datasets whose answers are worked out by hand."""

from __future__ import annotations

import numpy as np
import pytest


def test_persistence_follows_the_causal_swing_direction() -> None:
    from ktrdr.labels import BUY, HOLD, SELL
    from ktrdr.training.baselines import persistence_signals

    # threshold 10 %: 111 >= 100 * 1.1 turns up; 99 <= 111 * 0.9 turns down (low 99 -> 95);
    # 104 < 95 * 1.1 = 104.5 stays down; 106 >= 104.5 turns up.
    close = np.array([100, 105, 111, 108, 99, 95, 104, 106], dtype=float)
    assert persistence_signals(close, 0.1).tolist() == [
        HOLD,
        HOLD,
        BUY,
        BUY,
        SELL,
        SELL,
        SELL,
        BUY,
    ]


def test_persistence_before_the_first_swing_can_turn_down() -> None:
    from ktrdr.labels import HOLD, SELL
    from ktrdr.training.baselines import persistence_signals

    close = np.array([100, 104, 93, 95], dtype=float)  # 93 <= 104 * 0.9 = 93.6
    assert persistence_signals(close, 0.1).tolist() == [HOLD, HOLD, SELL, SELL]


def test_persistence_at_dataset_rows_uses_the_whole_series() -> None:
    import pandas as pd

    from ktrdr.labels import BUY, SELL
    from ktrdr.training.baselines import persistence_for_rows

    index = pd.date_range("2024-01-01", periods=8, freq="h", tz="UTC")
    close = pd.Series([100, 105, 111, 108, 99, 95, 104, 106], index=index, dtype=float)
    times = index.tz_localize(None).to_numpy(dtype="datetime64[ns]")[[3, 4, 7]]
    rows = persistence_for_rows({"X": close}, ["X"], np.zeros(3, np.int64), times, 0.1)
    assert rows.tolist() == [BUY, SELL, BUY]
    with pytest.raises(ValueError, match="without a bar"):
        persistence_for_rows({"X": close}, ["X"], np.zeros(1, np.int64), times[:1] + 1, 0.1)


def test_logistic_without_features_predicts_the_class_frequencies() -> None:
    """With an intercept only, the maximum-likelihood softmax is the class shares."""
    from ktrdr.training.baselines import _softmax, fit_logistic

    y = np.array([0, 0, 0, 1, 2, 2])
    fit = fit_logistic(np.zeros((6, 0)), y, seed=0, tol=1e-9, max_iter=5000)
    assert fit.converged
    assert _softmax(fit.intercept[None, :])[0] == pytest.approx([3 / 6, 1 / 6, 2 / 6], abs=1e-6)
    assert fit.predict(np.zeros((2, 0))).tolist() == [0, 0]


def test_logistic_separates_three_ordered_classes_on_one_feature() -> None:
    from ktrdr.training.baselines import fit_logistic

    x = np.array([[-2.0], [-1.5], [-0.1], [0.0], [0.1], [1.5], [2.0]])
    y = np.array([2, 2, 1, 1, 1, 0, 0])
    fit = fit_logistic(x, y, seed=0)
    assert fit.predict(x).tolist() == y.tolist()
    assert fit.predict(np.array([[-3.0], [0.05], [3.0]])).tolist() == [2, 1, 0]


def test_logistic_is_deterministic_and_samples_with_the_seed() -> None:
    from ktrdr.training.baselines import fit_logistic

    rng = np.random.default_rng(1)
    x = rng.normal(size=(300, 4))
    y = (x[:, 0] > 0).astype(np.int64) * 2
    a = fit_logistic(x, y, seed=5, max_rows=100)
    b = fit_logistic(x, y, seed=5, max_rows=100)
    c = fit_logistic(x, y, seed=6, max_rows=100)
    assert np.array_equal(a.weights, b.weights) and not np.array_equal(a.weights, c.weights)
    assert a.iterations <= 2000


def test_logistic_design_adds_a_symbol_one_hot_for_several_symbols() -> None:
    from ktrdr.training.baselines import logistic_design

    x = np.ones((3, 2), np.float32)
    assert logistic_design(x, np.array([0, 1, 1]), 1).shape == (3, 2)
    assert logistic_design(x, np.array([0, 1, 1]), 2)[:, 2:].tolist() == [[1, 0], [0, 1], [0, 1]]


def test_accuracy_table_on_the_same_rows() -> None:
    from ktrdr.training.baselines import accuracy_table

    y = np.array([0, 0, 1, 2])
    table = accuracy_table(
        y,
        np.array([0, 1, 1, 2]),
        {"majority": np.zeros(4, np.int64), "persistence": np.array([0, 0, 2, 2])},
    )
    assert table["model"] == 0.75 and table["majority"] == 0.5 and table["persistence"] == 0.75
    assert table["best_baseline"] == "persistence" and table["model_minus_best"] == 0.0
    assert table["rows"] == 4


def test_the_portfolio_series_compounds_to_the_trading_metrics_return() -> None:
    from ktrdr.training.bootstrap import total_return
    from ktrdr.training.portfolio import portfolio_series
    from ktrdr.training.trading import trading_metrics

    rng = np.random.default_rng(3)
    n = 60
    times = np.concatenate(
        [np.datetime64("2024-01-01", "ns") + np.arange(n) * np.timedelta64(1, "h")] * 2
    )[: 2 * n - 7]  # the second symbol's last bars are missing
    idx = np.repeat([0, 1], n)[: 2 * n - 7]
    returns = rng.normal(0, 0.01, len(idx))
    signals = rng.integers(0, 3, len(idx))
    for allow_short in (True, False):
        reported = trading_metrics(
            ["A", "B"], idx, times, returns, signals, 1, cost_bps=7, allow_short=allow_short
        )["overall"]["strategy"]["return"]
        series = portfolio_series(
            2, idx, times, returns, signals, cost_bps=7, allow_short=allow_short
        )
        assert float(total_return(series.returns)) == pytest.approx(reported, abs=1e-12)
        assert len(series.times) == n


def test_the_portfolio_series_of_one_symbol_follows_fixed_units_sizing() -> None:
    from ktrdr.training.bootstrap import total_return
    from ktrdr.training.portfolio import portfolio_series
    from ktrdr.training.trading import trading_metrics

    rng = np.random.default_rng(5)
    n = 80
    times = np.datetime64("2024-01-01", "ns") + np.arange(n) * np.timedelta64(1, "h")
    idx = np.zeros(n, dtype=np.int64)
    returns = rng.normal(0, 0.01, n)
    signals = rng.integers(0, 3, n)
    reported = trading_metrics(
        ["A"], idx, times, returns, signals, 1, cost_bps=7, sizing="fixed_units"
    )["overall"]["strategy"]["return"]
    series = portfolio_series(
        1, idx, times, returns, signals, cost_bps=7, allow_short=True, sizing="fixed_units"
    )
    assert float(total_return(series.returns)) == pytest.approx(reported, abs=1e-12)
    equity_fraction = portfolio_series(
        1, idx, times, returns, signals, cost_bps=7, allow_short=True
    )
    assert float(total_return(equity_fraction.returns)) != pytest.approx(reported, abs=1e-6)
