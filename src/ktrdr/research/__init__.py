"""Statistics a researcher needs before believing a backtest: how much of the best of many
trials is selection, and how likely a search is to have overfitted.

- ``selection``: the probabilistic and deflated Sharpe ratios (Bailey & López de Prado);
- ``overfitting``: the probability of backtest overfitting by combinatorially symmetric
  cross-validation (Bailey, Borwein, López de Prado & Zhu).

Pure Python (``math``, ``statistics``): the backend and the client import it without numpy.
May import the standard library only.
"""

from __future__ import annotations

from ktrdr.research.overfitting import Overfitting, backtest_overfitting
from ktrdr.research.selection import (
    DeflatedSharpe,
    SharpeSample,
    deflated_sharpe,
    expected_max_sharpe,
    probabilistic_sharpe,
    sharpe_sample,
)

__all__ = [
    "DeflatedSharpe",
    "Overfitting",
    "SharpeSample",
    "backtest_overfitting",
    "deflated_sharpe",
    "expected_max_sharpe",
    "probabilistic_sharpe",
    "sharpe_sample",
]
