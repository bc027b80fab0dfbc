"""Circular block bootstrap intervals for serially correlated series.

Labels come in runs (a swing labels every bar of it alike) and per-bar returns cluster, so
rows are not independent and the textbook standard error of an accuracy is too small. A
circular block bootstrap (Politis & Romano, 1992) resamples blocks of ``L`` consecutive rows
(wrapping at the end) until the series' length is reached, which keeps the dependence within
a block; the 2.5th and 97.5th percentiles of a statistic over the resamples give its 95 %
interval.

Block length rule: ``L = max(ceil(n ** (1/3)), mean run length)`` where the run length is
that of the series given as ``runs`` (the test labels for accuracy, the sign of the
strategy's position for returns), at most ``n // 2``. ``n ** (1/3)`` is the usual rate for
variance estimation; a longer mean run means dependence lasts longer than that.

Cost is bounded and deterministic: ``resamples = min(RESAMPLES, max(MIN_RESAMPLES,
ELEMENT_BUDGET // n))`` with a ``numpy`` generator seeded by the run's seed; ``TIME_CAP_S``
only stops a pathological case, and says so in the result.

Several statistics may share one resample (``paired``): the model's and a baseline's
correctness on the same rows, so their difference's interval accounts for their correlation.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Mapping
from typing import Any

import numpy as np

LEVEL = 0.95
RESAMPLES = 1000
MIN_RESAMPLES = 200
ELEMENT_BUDGET = 50_000_000  # resamples x rows drawn at most (about a second of gathers)
TIME_CAP_S = 20.0
CHUNK = 50  # resamples drawn at once

Statistic = Callable[[np.ndarray], np.ndarray]  # (resamples, n) -> (resamples,)


def mean_run_length(values: np.ndarray) -> float:
    """Mean length of the runs of equal consecutive values."""
    values = np.asarray(values)
    if not len(values):
        return 0.0
    changes = int(np.count_nonzero(values[1:] != values[:-1]))
    return len(values) / (changes + 1)


def block_length(n: int, runs: np.ndarray | None = None) -> int:
    """The rule in the module docstring."""
    if n < 2:
        return 1
    rule = math.ceil(n ** (1.0 / 3.0))
    if runs is not None:
        rule = max(rule, math.ceil(mean_run_length(runs)))
    return max(1, min(rule, n // 2))


def resample_count(n: int) -> int:
    return min(RESAMPLES, max(MIN_RESAMPLES, ELEMENT_BUDGET // max(n, 1)))


def circular_indices(rng: np.random.Generator, n: int, block: int, count: int) -> np.ndarray:
    """``count`` circular-block resamples of ``range(n)``, shape ``(count, n)``."""
    blocks = -(-n // block)
    starts = rng.integers(0, n, size=(count, blocks))
    idx = (starts[:, :, None] + np.arange(block)) % n
    return idx.reshape(count, blocks * block)[:, :n]


def bootstrap(
    series: Mapping[str, np.ndarray],
    statistics: Mapping[str, tuple[Statistic, Callable[[Mapping[str, np.ndarray]], float]]],
    *,
    block: int,
    seed: int,
    level: float = LEVEL,
    time_cap_s: float = TIME_CAP_S,
) -> dict[str, Any]:
    """Intervals of each statistic over shared resamples of the equal-length ``series``.

    ``statistics``: name -> (a function of the resampled series dict, giving one value per
    resample; the point estimate on the original series).
    """
    lengths = {len(v) for v in series.values()}
    if len(lengths) != 1:
        raise ValueError(f"series of different lengths: {sorted(lengths)}")
    n = lengths.pop()
    wanted = resample_count(n)
    rng = np.random.default_rng(seed)
    values: dict[str, list[np.ndarray]] = {name: [] for name in statistics}
    started = time.monotonic()
    done = 0
    capped = False
    while n >= 2 and done < wanted:
        if time.monotonic() - started > time_cap_s:
            capped = True
            break
        count = min(CHUNK, wanted - done)
        idx = circular_indices(rng, n, block, count)
        drawn = {name: np.asarray(v)[idx] for name, v in series.items()}
        for name, (stat, _) in statistics.items():
            values[name].append(np.asarray(stat(drawn), dtype=np.float64))  # type: ignore[arg-type]
        done += count
    tail = (1.0 - level) / 2.0
    out: dict[str, Any] = {
        "method": "circular block bootstrap, percentile interval",
        "level": level,
        "block_length": block,
        "rows": n,
        "resamples": done,
        "seed": seed,
    }
    if capped:
        out["notice"] = f"stopped after {done} of {wanted} resamples ({time_cap_s:g} s time cap)"
    for name, (_, point) in statistics.items():
        estimate = float(point(series))
        if done:
            drawn_values = np.concatenate(values[name])
            low, high = np.quantile(drawn_values, [tail, 1.0 - tail])
            out[name] = {"estimate": estimate, "low": float(low), "high": float(high)}
        else:
            out[name] = {"estimate": estimate, "low": estimate, "high": estimate}
    return out


def mean_of(key: str) -> tuple[Statistic, Callable[[Mapping[str, np.ndarray]], float]]:
    """The mean of one series (an accuracy, from a 0/1 correctness series)."""
    return (
        lambda d: d[key].mean(axis=1),  # type: ignore[call-overload]
        lambda d: float(np.mean(d[key])) if len(d[key]) else 0.0,
    )


def difference_of_means(
    a: str, b: str
) -> tuple[Statistic, Callable[[Mapping[str, np.ndarray]], float]]:
    return (
        lambda d: d[a].mean(axis=1) - d[b].mean(axis=1),  # type: ignore[call-overload]
        lambda d: float(np.mean(d[a]) - np.mean(d[b])) if len(d[a]) else 0.0,
    )


def total_return(r: np.ndarray) -> np.ndarray:
    """Compounded return along the last axis."""
    return np.asarray(np.exp(np.log1p(r).sum(axis=-1)) - 1.0)


def sharpe(r: np.ndarray, bars_per_year: float) -> np.ndarray:
    """Annualised Sharpe along the last axis (0 where the returns do not vary), as
    :func:`ktrdr.training.trading.performance` computes it."""
    std = r.std(axis=-1, ddof=1) if r.shape[-1] > 1 else np.zeros(r.shape[:-1])
    mean = r.mean(axis=-1)
    safe = np.where(std > 1e-15, std, 1.0)
    return np.asarray(np.where(std > 1e-15, mean / safe * np.sqrt(bars_per_year), 0.0))


__all__ = [
    "LEVEL",
    "RESAMPLES",
    "block_length",
    "bootstrap",
    "circular_indices",
    "difference_of_means",
    "mean_of",
    "mean_run_length",
    "resample_count",
    "sharpe",
    "total_return",
]
