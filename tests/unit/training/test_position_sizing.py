"""Position sizing (``evaluation.position_sizing``), hand-computed on 5 bars.

Next-bar returns +10 %, -5 %, +2 %, +4 %, +1 %: closes 1, 1.10, 1.045, 1.0659, 1.108536 and
1.11962136 after the last bar. Signals BUY, HOLD, SELL, HOLD, BUY: positions +1, +1, -1, -1,
+1, so |position change| 1, 0, 2, 0, 2 and a final exit of 1; costs 10 bps.
"""

from __future__ import annotations

import numpy as np
import pytest

from ktrdr.labels.classes import BUY, HOLD, SELL

NEXT_RETURN = np.array([0.10, -0.05, 0.02, 0.04, 0.01])
SIGNALS = np.array([BUY, HOLD, SELL, HOLD, BUY])
TIMES = np.datetime64("2021-01-01", "ns") + np.arange(5) * np.timedelta64(1, "D")
YEARS = 4 / 365.25

# equity_fraction: position * return - 0.001 * change (the last bar: also the 0.001 exit).
FRACTION_BARS = np.array([0.10 - 0.001, -0.05, -0.02 - 0.002, -0.04, 0.01 - 0.002 - 0.001])
FRACTION_EQUITY = np.array([1.099, 1.04405, 1.0210809, 0.980237664, 0.987099327648])
# fixed_units: position * (price change) - 0.001 * change * price, exit at the last close.
FIXED_PNL = np.array(
    [
        0.10 - 0.001,  # +1 * (1.10 - 1) - 0.001 * 1 * 1
        -0.055,  # +1 * (1.045 - 1.10)
        -0.0209 - 0.00209,  # -1 * (1.0659 - 1.045) - 0.001 * 2 * 1.045
        -0.042636,  # -1 * (1.108536 - 1.0659)
        0.01108536 - 0.002217072 - 0.00111962136,  # entry at 1.108536, exit at 1.11962136
    ]
)
FIXED_EQUITY = np.array([1.099, 1.044, 1.02101, 0.978374, 0.98612266664])


def metrics(sizing: str) -> dict:
    from ktrdr.training.trading import trading_metrics

    return trading_metrics(
        ["X"], np.zeros(5, np.int64), TIMES, NEXT_RETURN, SIGNALS, HOLD, cost_bps=10, sizing=sizing
    )


def sharpe(bars: np.ndarray) -> float:
    return float(bars.mean() / bars.std(ddof=1) * np.sqrt(5 / YEARS))


def test_hand_computed_equity_curves():
    assert np.cumprod(1 + FRACTION_BARS) == pytest.approx(FRACTION_EQUITY, abs=1e-12)
    assert 1 + np.cumsum(FIXED_PNL) == pytest.approx(FIXED_EQUITY, abs=1e-12)


def test_equity_fraction_compounds_the_whole_equity_every_bar():
    m = metrics("equity_fraction")
    s = m["per_symbol"]["X"]["strategy"]
    assert m["position_sizing"] == "equity_fraction"
    assert s["return"] == pytest.approx(FRACTION_EQUITY[-1] - 1)  # -1.290 %
    assert s["max_drawdown"] == pytest.approx(1 - 0.980237664 / 1.099)  # 10.806 %
    assert s["sharpe"] == pytest.approx(sharpe(FRACTION_BARS))
    # trades: long 1.10 * 0.95 - 1 = +4.5 %; short 0.98 * 0.96 - 1 = -5.92 %; long +1 %; -0.2 %
    assert (s["trades"], s["hit_rate"]) == (3, pytest.approx(2 / 3))
    assert m["overall"]["strategy"]["return"] == pytest.approx(s["return"])


def test_fixed_units_adds_price_pnl_over_the_initial_equity():
    m = metrics("fixed_units")
    s = m["per_symbol"]["X"]["strategy"]
    assert m["position_sizing"] == "fixed_units"
    assert s["return"] == pytest.approx(-0.01387733336)  # not the -1.290 % above
    assert s["max_drawdown"] == pytest.approx(1 - 0.978374 / 1.099)  # 10.976 %
    bars = FIXED_EQUITY / np.concatenate([[1.0], FIXED_EQUITY[:-1]]) - 1
    assert s["sharpe"] == pytest.approx(sharpe(bars))
    # trades: long +4.5 %; short -(1.02 * 1.04 - 1) = -6.08 %; long +1 %; each -0.2 % costs
    assert (s["trades"], s["hit_rate"]) == (3, pytest.approx(2 / 3))
    bh = m["per_symbol"]["X"]["buy_and_hold"]  # one unit held: the price change less costs
    assert bh["return"] == pytest.approx(1.11962136 - 1 - 0.001 - 0.001 * 1.11962136)
    assert m["overall"]["strategy"]["return"] == pytest.approx(s["return"])


def test_fixed_units_portfolio_is_the_mean_of_unrebalanced_equities():
    from ktrdr.training.trading import trading_metrics

    # Y: two bars, +50 % then 0, always long, no costs; its equity then stays at 1.5.
    symbol_idx = np.array([0] * 5 + [1] * 2)
    times = np.concatenate([TIMES, TIMES[:2]])
    returns = np.concatenate([NEXT_RETURN, [0.5, 0.0]])
    signals = np.concatenate([SIGNALS, [BUY, HOLD]])
    m = trading_metrics(
        ["X", "Y"], symbol_idx, times, returns, signals, HOLD, cost_bps=0, sizing="fixed_units"
    )
    x = 1 + np.cumsum(np.array([0.10, -0.055, -0.0209, -0.042636, 0.01108536]))
    y = np.array([1.5, 1.5, 1.5, 1.5, 1.5])
    assert m["overall"]["strategy"]["return"] == pytest.approx((x[-1] + y[-1]) / 2 - 1)
    assert m["equity_curve"]["strategy"] == pytest.approx(list((x + y) / 2))


def test_an_unknown_sizing_is_refused_and_the_strategy_key_is_checked():
    from ktrdr.config import strategy_from_dict
    from ktrdr.errors import StrategyConfigError

    with pytest.raises(ValueError, match="unknown position sizing 'kelly'"):
        metrics("kelly")
    base = {
        "name": "s",
        "training_data": {"symbols": {"symbol": "X"}, "timeframes": {"timeframe": "1d"}},
        "indicators": [{"name": "rsi", "period": 14}],
        "fuzzy_sets": {"rsi": {"low": [0, 30, 50]}},
    }
    assert strategy_from_dict(base).evaluation.position_sizing == "equity_fraction"
    cfg = strategy_from_dict({**base, "evaluation": {"position_sizing": "fixed_units"}})
    assert cfg.evaluation.position_sizing == "fixed_units"
    with pytest.raises(StrategyConfigError, match=r"evaluation\.position_sizing"):
        strategy_from_dict({**base, "evaluation": {"position_sizing": "one_unit"}})


def test_the_summary_names_the_sizing_and_the_costs():
    from ktrdr.cli.summary import trading_summary

    lines = trading_summary(metrics("fixed_units")).splitlines()
    assert lines[1] == (
        "  position sizing fixed_units (units bought with the initial equity at the first "
        "close, never resized); costs 10 bps per unit of position change, in every return"
    )
    older = metrics("equity_fraction")
    del older["position_sizing"], older["sizing_rule"]  # a model trained before the setting
    assert "position sizing equity_fraction (whole equity in the position, re-invested" in (
        trading_summary(older)
    )
