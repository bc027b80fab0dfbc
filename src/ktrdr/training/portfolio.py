"""Per-bar returns of a signal over a period, as :mod:`ktrdr.training.trading` trades it.

:func:`ktrdr.training.trading.trading_metrics` reports the totals; the bootstrap needs the
equal-weight portfolio's return at each bar time. Built from the same ``positions`` and
``bar_returns`` (a test checks that the compounded series equals ``trading_metrics``'
overall return), so both always trade alike. With ``fixed_units`` sizing the per-symbol
series are exact; the portfolio of several symbols is then approximated by the mean of their
per-bar returns (``trading_metrics`` averages their equity curves, never rebalanced).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ktrdr.training.trading import bar_returns, positions


@dataclass(frozen=True)
class PortfolioSeries:
    """At each bar time of the period (union over symbols, in order): the equal-weight net
    return and the mean position over the symbols that have that bar."""

    times: np.ndarray
    returns: np.ndarray
    exposure: np.ndarray


def portfolio_series(
    n_symbols: int,
    symbol_idx: np.ndarray,
    times: np.ndarray,
    next_return: np.ndarray,
    signals: np.ndarray,
    *,
    cost_bps: float,
    allow_short: bool,
    sizing: str = "equity_fraction",
) -> PortfolioSeries:
    cost = cost_bps / 10_000.0
    union = np.unique(times)
    total = np.zeros(len(union))
    exposure = np.zeros(len(union))
    count = np.zeros(len(union))
    for i in range(n_symbols):
        rows = np.flatnonzero(symbol_idx == i)
        if not len(rows):
            continue
        rows = rows[np.argsort(times[rows], kind="stable")]
        pos = positions(np.asarray(signals)[rows], allow_short)
        where = np.searchsorted(union, times[rows])
        total[where] += bar_returns(pos, next_return[rows], cost, sizing)
        exposure[where] += pos
        count[where] += 1
    mean = np.divide(total, count, out=np.zeros_like(total), where=count > 0)
    held = np.divide(exposure, count, out=np.zeros_like(exposure), where=count > 0)
    return PortfolioSeries(union, mean, held)


__all__ = ["PortfolioSeries", "portfolio_series"]
