"""Which way a result metric is better, for sweeps' default direction and model listings."""

from __future__ import annotations

# Better lower: losses, drawdowns (the trading metrics' max_drawdown is a positive fraction of
# the peak) and spreads over walk-forward folds (wf_std_return: steadier is better). Every other
# metric is better higher.
LOWER_IS_BETTER = ("loss", "drawdown", "_std_")


def lower_is_better(metric: str) -> bool:
    name = metric.strip().lower()
    return any(word in name for word in LOWER_IS_BETTER)


__all__ = ["LOWER_IS_BETTER", "lower_is_better"]
