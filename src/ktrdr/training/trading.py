"""Trading metrics of a period (the test period; the validation period too): what trading the
predicted signals would have returned.

Position rule (decided at a bar's close, no look-ahead):

- ``BUY`` -> long (+1); ``SELL`` -> short (-1), or flat (0) with ``evaluation.allow_short:
  false``; ``HOLD`` -> keep the current position. Every symbol starts flat.
- The position taken at the close of bar ``t`` earns the next bar's close-to-close return
  ``close[t+1] / close[t] - 1`` (a one-bar delay: a signal never trades on its own bar).

Position sizing (``evaluation.position_sizing``), per symbol, starting from an equity of 1:

- ``equity_fraction`` (the default, and what every model trained before the setting had): the
  whole current equity is long or short every bar, re-invested as it grows or shrinks, so
  per-bar returns are ``position * return`` and compound. A position held through a fall is
  re-levered each bar; a short in particular is not a static short.
- ``fixed_units``: a fixed number of units (shares, lots) bought or sold short at the test
  period's first close with the initial equity, and never resized: the P&L is
  ``position * (close[t+1] - close[t])`` in price units over the initial equity, added, not
  compounded (the number of units cancels out of every percentage). Per-bar returns are the
  changes of that equity curve; an equity that reaches 0 stays at 0 (ruin).

Costs: ``evaluation.cost_bps`` (default 5 basis points) of the traded notional for each unit of
position change, charged on the bar where it changes (a flip from long to short pays twice); an
open position is closed, and pays its exit, on the last bar of the test period. For
``equity_fraction`` the notional is the equity, for ``fixed_units`` the units' value at that
close.

Metrics per symbol and overall, an equal-weight portfolio: ``equity_fraction`` rebalances it
every bar (at each bar time the mean return of the symbols that have that bar);
``fixed_units`` gives each symbol the same initial equity and never rebalances (the mean of
the symbols' equity curves, each held at its last value after its last bar). Total ``return``
(compounded per-bar returns), annualised ``sharpe`` (mean / std of the per-bar returns times
the square root of bars per year, counted from the period's own bars), ``max_drawdown``
(largest fall of the equity curve from its running peak, as a fraction), ``trades`` (holding
periods of a non-zero position), ``hit_rate`` (share of trades whose return after entry and
exit costs is positive). The overall strategy also gets the moments of its per-bar returns
that the deflated Sharpe ratio needs (``bar_sharpe``: mean / std per bar, not annualised;
``skewness``; ``kurtosis``, not excess; NaN when the returns do not vary). The same numbers are
computed for the baselines: ``buy_and_hold`` (always long), ``majority`` (always the most
common training label) and ``flat`` (never in the market).
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any

import numpy as np

from ktrdr.labels import BUY, HOLD, SELL
from ktrdr.research.selection import sharpe_sample

BASELINES = ("buy_and_hold", "majority", "flat")
# evaluation.position_sizing -> how the summary names it.
SIZINGS = {
    "equity_fraction": "whole equity in the position, re-invested every bar",
    "fixed_units": "units bought with the initial equity at the first close, never resized",
}
EQUITY_POINTS = 400  # at most this many points of each equity curve go into the metadata


def positions(signals: np.ndarray, allow_short: bool = True) -> np.ndarray:
    """Position after each bar's signal (+1 long, -1 short, 0 flat)."""
    pos = np.zeros(len(signals), dtype=np.float64)
    current = 0.0
    for i, signal in enumerate(np.asarray(signals)):
        if signal == BUY:
            current = 1.0
        elif signal == SELL:
            current = -1.0 if allow_short else 0.0
        pos[i] = current
    return pos


def bar_returns(
    pos: np.ndarray, next_return: np.ndarray, cost: float, sizing: str = "equity_fraction"
) -> np.ndarray:
    """Per-bar net returns of holding ``pos`` (costs on changes and on the final exit)."""
    previous = np.concatenate([[0.0], pos[:-1]])
    if sizing == "equity_fraction":
        net = pos * next_return - cost * np.abs(pos - previous)
        if len(net):
            net[-1] -= cost * abs(pos[-1])
        return net
    if sizing != "fixed_units":
        raise ValueError(f"unknown position sizing {sizing!r}; use one of {', '.join(SIZINGS)}")
    # Prices relative to the first close (the units the initial equity of 1 buys: 1).
    price = np.concatenate([[1.0], np.cumprod(1.0 + next_return)])
    pnl = pos * np.diff(price) - cost * np.abs(pos - previous) * price[:-1]
    if len(pnl):
        pnl[-1] -= cost * abs(pos[-1]) * price[-1]  # the exit, at the close after the last bar
    return equity_returns(1.0 + np.cumsum(pnl))


def equity_returns(equity: np.ndarray) -> np.ndarray:
    """Per-bar returns of an equity curve that starts from 1 (0 from ruin on)."""
    equity = np.where(np.maximum.accumulate(equity <= 0), 0.0, equity)
    before = np.concatenate([[1.0], equity[:-1]])
    return np.divide(equity, before, out=np.ones_like(equity), where=before > 0) - 1.0


def _trades(pos: np.ndarray, next_return: np.ndarray, cost: float, sizing: str) -> list[float]:
    """Net return of each holding period (entry and exit cost included)."""
    out: list[float] = []
    start = None
    for i in range(len(pos) + 1):
        if start is not None and (i == len(pos) or pos[i] != pos[start]):
            if sizing == "fixed_units":  # the units' price change, long or short
                moved = np.prod(1.0 + next_return[start:i]) - 1.0
                gross = float(pos[start] * moved)
            else:
                gross = float(np.prod(1.0 + pos[start:i] * next_return[start:i]) - 1.0)
            out.append(gross - 2 * cost)
            start = None
        if i < len(pos) and pos[i] != 0 and start is None:
            start = i
    return out


def performance(returns: np.ndarray, trades: list[float], years: float) -> dict[str, Any]:
    """Return, Sharpe, drawdown, trades and hit rate of a series of per-bar returns."""
    equity = np.cumprod(1.0 + returns)
    peak = np.maximum.accumulate(np.concatenate([[1.0], equity]))[1:]
    std = float(np.std(returns, ddof=1)) if len(returns) > 1 else 0.0
    bars_per_year = len(returns) / years if years > 0 else 0.0
    sharpe = float(np.mean(returns) / std * np.sqrt(bars_per_year)) if std > 1e-15 else 0.0
    return {
        "return": float(equity[-1] - 1.0) if len(equity) else 0.0,
        "sharpe": sharpe,
        "max_drawdown": float(np.max(1.0 - equity / peak)) if len(equity) else 0.0,
        "trades": len(trades),
        "hit_rate": float(np.mean([t > 0 for t in trades])) if trades else 0.0,
    }


def return_moments(returns: np.ndarray) -> dict[str, float]:
    """Per-bar Sharpe ratio, skewness and kurtosis (``ktrdr.research.selection``)."""
    sample = sharpe_sample(np.asarray(returns, dtype=np.float64).tolist())
    return {
        "bar_sharpe": sample.sharpe,
        "skewness": sample.skewness,
        "kurtosis": sample.kurtosis,
    }


def _years(times: np.ndarray) -> float:
    if len(times) < 2:
        return 0.0
    span = (times.max() - times.min()) / np.timedelta64(1, "D")
    return float(span) / 365.25


class _Book:
    """Per-bar net returns and trades of every symbol for one signal rule."""

    def __init__(self) -> None:
        self.returns: dict[str, np.ndarray] = {}
        self.trades: dict[str, list[float]] = {}


def trading_metrics(
    symbols: list[str],
    symbol_idx: np.ndarray,
    times: np.ndarray,
    next_return: np.ndarray,
    predicted: np.ndarray,
    majority_label: int,
    *,
    cost_bps: float = 5.0,
    allow_short: bool = True,
    sizing: str = "equity_fraction",
) -> dict[str, Any]:
    """Strategy and baselines per symbol and overall, on rows in time order per symbol."""
    if sizing not in SIZINGS:
        raise ValueError(f"unknown position sizing {sizing!r}; use one of {', '.join(SIZINGS)}")
    cost = cost_bps / 10_000.0
    rules: dict[str, np.ndarray] = {
        "strategy": np.asarray(predicted),
        "buy_and_hold": np.full(len(predicted), BUY),
        "majority": np.full(len(predicted), majority_label),
        "flat": np.full(len(predicted), HOLD),
    }
    books = {name: _Book() for name in rules}
    out: dict[str, Any] = {
        "position_rule": "BUY long, SELL "
        + ("short" if allow_short else "flat")
        + ", HOLD keep; signal at a bar's close trades the next bar",
        "cost_bps": cost_bps,
        "position_sizing": sizing,
        "sizing_rule": SIZINGS[sizing],
        "majority_label": ["BUY", "HOLD", "SELL"][majority_label],
        "per_symbol": {},
    }
    for i, symbol in enumerate(symbols):
        rows = np.flatnonzero(symbol_idx == i)
        if not len(rows):
            continue
        rows = rows[np.argsort(times[rows], kind="stable")]
        years = _years(times[rows])
        per: dict[str, Any] = {"bars": len(rows)}
        for name, signals in rules.items():
            pos = positions(signals[rows], allow_short)
            net = bar_returns(pos, next_return[rows], cost, sizing)
            trades = _trades(pos, next_return[rows], cost, sizing)
            books[name].returns[symbol] = net
            books[name].trades[symbol] = trades
            per[name] = performance(net, trades, years)
        out["per_symbol"][symbol] = per
    overall_times, overall = _portfolio(symbols, symbol_idx, times, books, sizing)
    years = _years(overall_times)
    out["overall"] = {
        name: performance(
            overall[name], [t for ts in books[name].trades.values() for t in ts], years
        )
        for name in rules
    }
    out["overall"]["bars"] = len(overall_times)
    out["overall"]["strategy"].update(return_moments(overall["strategy"]))
    out["verdict"] = verdict(out["overall"])
    out["equity_curve"] = _curve(overall_times, overall)
    return out


def _portfolio(
    symbols: list[str],
    symbol_idx: np.ndarray,
    times: np.ndarray,
    books: Mapping[str, _Book],
    sizing: str,
) -> tuple[np.ndarray, dict[str, np.ndarray]]:
    """Equal-weight returns at each bar time: rebalanced every bar (the mean return of the
    symbols that have that bar), or for ``fixed_units`` the mean of the symbols' equities."""
    stamps = {s: np.sort(times[symbol_idx == i]) for i, s in enumerate(symbols)}
    union = np.unique(np.concatenate([t for t in stamps.values()])) if stamps else times[:0]
    result: dict[str, np.ndarray] = {}
    for name, book in books.items():
        if sizing == "fixed_units":
            equity = np.zeros(len(union))
            for symbol, net in book.returns.items():
                curve = np.concatenate([[1.0], np.cumprod(1.0 + net)])  # 1 before its first bar
                equity += curve[np.searchsorted(stamps[symbol], union, side="right")]
            result[name] = equity_returns(equity / max(len(book.returns), 1))
            continue
        total = np.zeros(len(union))
        count = np.zeros(len(union))
        for symbol, net in book.returns.items():
            where = np.searchsorted(union, stamps[symbol])
            total[where] += net
            count[where] += 1
        result[name] = np.divide(total, count, out=np.zeros_like(total), where=count > 0)
    return union, result


def verdict(overall: Mapping[str, Any]) -> dict[str, Any]:
    """Whether the strategy's return beats every baseline's, in words too."""
    mine = overall["strategy"]["return"]
    best_name = max(BASELINES, key=lambda name: overall[name]["return"])
    best = overall[best_name]["return"]
    beats = mine > best
    text = (
        f"beats every baseline (strategy {mine:+.2%} vs best baseline {best_name} {best:+.2%})"
        if beats
        else f"no better than the {best_name} baseline (strategy {mine:+.2%} vs {best:+.2%})"
    )
    return {"beats_baselines": bool(beats), "best_baseline": best_name, "text": text}


def _curve(times: np.ndarray, returns: Mapping[str, np.ndarray]) -> dict[str, Any]:
    step = max(1, int(np.ceil(len(times) / EQUITY_POINTS)))
    keep = np.arange(0, len(times), step)
    if len(times) and keep[-1] != len(times) - 1:
        keep = np.append(keep, len(times) - 1)
    return {
        "times": [str(np.datetime_as_string(t, unit="s")) for t in times[keep]],
        **{
            name: [float(v) for v in np.cumprod(1.0 + returns[name])[keep]]
            for name in ("strategy", "buy_and_hold")
        },
    }


def validation_summary(metrics: dict[str, Any]) -> dict[str, float]:
    """The validation period's trading numbers (``val_*``), for sweeps to select on and for
    the deflated Sharpe ratio of a sweep's best trial; moments that are NaN (returns that do
    not vary) are left out rather than reported as numbers."""
    overall = metrics.get("validation_trading", {}).get("overall", {})
    strategy = overall.get("strategy")
    if strategy is None:
        return {}
    values = {
        "val_bars": overall.get("bars", 0),
        "val_return_strategy": strategy["return"],
        "val_sharpe_strategy": strategy["sharpe"],
        "val_max_drawdown_strategy": strategy["max_drawdown"],
        "val_bar_sharpe_strategy": strategy.get("bar_sharpe", math.nan),
        "val_skewness_strategy": strategy.get("skewness", math.nan),
        "val_kurtosis_strategy": strategy.get("kurtosis", math.nan),
    }
    if "buy_and_hold" in overall:
        values["val_return_buy_and_hold"] = overall["buy_and_hold"]["return"]
    return {k: float(v) for k, v in values.items() if math.isfinite(float(v))}


__all__ = [
    "BASELINES",
    "SIZINGS",
    "bar_returns",
    "equity_returns",
    "performance",
    "positions",
    "return_moments",
    "trading_metrics",
    "validation_summary",
    "verdict",
]
