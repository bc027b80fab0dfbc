"""The probability of backtest overfitting (PBO) by combinatorially symmetric
cross-validation (CSCV).

Bailey, D. H., Borwein, J. M., López de Prado, M. and Zhu, Q. J. (2015/2017), "The
Probability of Backtest Overfitting", Journal of Computational Finance 20 (4) (SSRN 2326253).

Given the per-period returns of N trials over T periods (a T x N matrix):

1. split the T rows into S contiguous blocks of equal size (S even);
2. for each of the C(S, S/2) ways to pick half the blocks: the picked blocks (in time order)
   are the in-sample set J, the others the out-of-sample set J-bar;
3. find the trial n* with the best in-sample performance (the Sharpe ratio by default);
4. its relative rank out of sample, ``w = rank / (N + 1)`` (rank 1 the worst, N the best;
   ties share their mean rank), gives the logit ``lambda = ln(w / (1 - w))``;
5. PBO is the share of combinations with ``lambda <= 0``: the in-sample winner is at or
   below the out-of-sample median.

Without skill (returns independent of the trial), the winner's out-of-sample rank is uniform,
so PBO tends to 1/2 for an even N ((N + 1) / (2N) for an odd N, the median counting as
overfit); a trial that is best everywhere gives PBO 0.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from itertools import combinations

Metric = Callable[[Sequence[float]], float]


@dataclass(frozen=True)
class Overfitting:
    """PBO and the logit of each combination (in ``itertools.combinations`` order)."""

    probability: float
    logits: tuple[float, ...]
    blocks: int
    trials: int


def _sharpe(count: int, total: float, squares: float) -> float:
    """mean / std (ddof 1) from sums; +-inf for a constant non-zero series, 0 for zeros."""
    mean = total / count
    variance = (squares - count * mean * mean) / (count - 1) if count > 1 else 0.0
    if variance <= 1e-300:
        return 0.0 if mean == 0.0 else math.copysign(math.inf, mean)
    return mean / math.sqrt(variance)


def _ranks(values: Sequence[float]) -> list[float]:
    """1-based ranks, ties sharing their mean rank."""
    order = sorted(range(len(values)), key=lambda i: values[i])
    ranks = [0.0] * len(values)
    i = 0
    while i < len(order):
        j = i
        while j + 1 < len(order) and values[order[j + 1]] == values[order[i]]:
            j += 1
        for k in range(i, j + 1):
            ranks[order[k]] = (i + j) / 2.0 + 1.0
        i = j + 1
    return ranks


def backtest_overfitting(
    returns: Sequence[Sequence[float]], blocks: int, metric: Metric | None = None
) -> Overfitting:
    """PBO of choosing the best of the matrix's columns (``returns[t][n]``: period t, trial n)
    by ``metric`` (default: the Sharpe ratio). ValueError for a matrix CSCV cannot split."""
    periods = len(returns)
    trials = len(returns[0]) if periods else 0
    if trials < 2:
        raise ValueError(f"at least 2 trials (columns) needed, got {trials}")
    if any(len(row) != trials for row in returns):
        raise ValueError("every period (row) needs one return per trial")
    if blocks < 2 or blocks % 2:
        raise ValueError(f"blocks must be even and at least 2, got {blocks}")
    if periods < blocks or periods % blocks:
        raise ValueError(
            f"{periods} periods do not split into {blocks} equal blocks (drop the first "
            f"{periods % blocks if periods >= blocks else periods} or choose another count)"
        )
    size = periods // blocks
    rows = [returns[b * size : (b + 1) * size] for b in range(blocks)]
    if metric is None:
        # Per block and trial: count, sum and sum of squares, so each half's Sharpe ratio
        # costs O(S) per trial instead of O(T).
        sums = [[math.fsum(r[n] for r in block) for n in range(trials)] for block in rows]
        squares = [[math.fsum(r[n] ** 2 for r in block) for n in range(trials)] for block in rows]

        def performance(chosen: Sequence[int]) -> list[float]:
            count = size * len(chosen)
            return [
                _sharpe(
                    count,
                    math.fsum(sums[b][n] for b in chosen),
                    math.fsum(squares[b][n] for b in chosen),
                )
                for n in range(trials)
            ]
    else:
        measure = metric

        def performance(chosen: Sequence[int]) -> list[float]:
            return [measure([r[n] for b in chosen for r in rows[b]]) for n in range(trials)]

    logits: list[float] = []
    for in_sample in combinations(range(blocks), blocks // 2):
        out_of_sample = [b for b in range(blocks) if b not in in_sample]
        inside = performance(in_sample)
        winner = max(range(trials), key=lambda n: inside[n])  # the first of equals
        w = _ranks(performance(out_of_sample))[winner] / (trials + 1)
        logits.append(math.log(w / (1.0 - w)))
    overfit = sum(1 for value in logits if value <= 0.0)
    return Overfitting(overfit / len(logits), tuple(logits), blocks, trials)


__all__ = ["Overfitting", "backtest_overfitting"]
