"""ZigZag segment labels (KTRDR's ``generate_segment_labels`` semantics).

Labels look into the future on purpose: they are training targets, never inputs.
"""

from __future__ import annotations

import logging

import numpy as np
import pandas as pd

from ktrdr.labels.classes import BUY, HOLD, SELL

logger = logging.getLogger(__name__)


def zigzag_extremes(close: np.ndarray, threshold: float, lookahead: int) -> np.ndarray:
    """Indices of the ZigZag extremes of ``close`` (see :func:`zigzag_extremes_confirmed`)."""
    return zigzag_extremes_confirmed(close, threshold, lookahead)[0]


def zigzag_extremes_confirmed(
    close: np.ndarray, threshold: float, lookahead: int
) -> tuple[np.ndarray, np.ndarray]:
    """Indices of the ZigZag extremes of ``close``, alternating lows and highs. O(n).

    The first extreme is the lowest (highest) close seen before price first rises (falls)
    by ``threshold`` from it. After that, the running extreme follows price in the current
    direction (only a strictly higher high / lower low replaces it, so of equal highs the
    first one counts) and becomes an extreme once price reverses from it by at least
    ``threshold``: ``close <= high * (1 - threshold)`` or ``close >= low * (1 + threshold)``.

    The running extreme left at the end of the data (already ``threshold`` away from the
    previous extreme, but not yet confirmed by a reversal) counts as the last extreme only if
    at least ``lookahead`` bars follow it.

    Returns ``(extremes, confirmed_at)``: ``confirmed_at[k]`` is the bar whose close made
    extreme ``k`` certain (the reversal bar; the last bar of the data for a final extreme
    kept by ``lookahead``). No price after that bar can change it.
    """
    prices = np.asarray(close, dtype=np.float64).tolist()
    n = len(prices)
    extremes: list[int] = []
    confirmed: list[int] = []
    empty = np.array([], dtype=np.int64)
    if n == 0:
        return empty, empty
    up_factor, down_factor = 1.0 + threshold, 1.0 - threshold

    # Before the first swing: track both the lowest and the highest close.
    low_i = high_i = 0
    direction = 0  # +1: rising towards a high, -1: falling towards a low
    run_i = 0
    i = 1
    while i < n:
        p = prices[i]
        if p >= prices[low_i] * up_factor:
            extremes.append(low_i)
            confirmed.append(i)
            direction, run_i = 1, i
            break
        if p <= prices[high_i] * down_factor:
            extremes.append(high_i)
            confirmed.append(i)
            direction, run_i = -1, i
            break
        if p < prices[low_i]:
            low_i = i
        if p > prices[high_i]:
            high_i = i
        i += 1
    if direction == 0:
        return empty, empty

    run_p = prices[run_i]
    for j in range(run_i + 1, n):
        p = prices[j]
        if direction == 1:
            if p > run_p:
                run_i, run_p = j, p
            elif p <= run_p * down_factor:
                extremes.append(run_i)
                confirmed.append(j)
                direction, run_i, run_p = -1, j, p
        else:
            if p < run_p:
                run_i, run_p = j, p
            elif p >= run_p * up_factor:
                extremes.append(run_i)
                confirmed.append(j)
                direction, run_i, run_p = 1, j, p

    if n - 1 - run_i >= lookahead:
        extremes.append(run_i)
        confirmed.append(n - 1)
    return np.asarray(extremes, dtype=np.int64), np.asarray(confirmed, dtype=np.int64)


def zigzag_label_horizon(
    close: np.ndarray | pd.Series, threshold: float, lookahead: int
) -> tuple[np.ndarray, np.ndarray]:
    """Which labels of :func:`zigzag_labels` are confirmed, and the bar each one needs.

    Returns ``(confirmed, known_at)``, both of the length of ``close``. A label is confirmed
    from the first to the last extreme (inclusive); before the first and after the last one
    its HOLD only means "not known yet", so those rows must be neither trained on nor scored.
    ``known_at[t]`` is the last bar whose price the label of bar ``t`` depends on: the bar
    that confirmed the extreme ending its segment (for an extreme itself, its own
    confirmation); -1 where the label is not confirmed. A split boundary at bar ``b`` leaks
    unless every row before it has ``known_at < b``.
    """
    prices = np.asarray(close, dtype=np.float64)
    n = prices.size
    confirmed = np.zeros(n, dtype=bool)
    known_at = np.full(n, -1, dtype=np.int64)
    extremes, confirmed_at = zigzag_extremes_confirmed(prices, float(threshold), int(lookahead))
    if extremes.size < 2:
        return confirmed, known_at
    bars = np.arange(extremes[0], extremes[-1] + 1)
    k = np.searchsorted(extremes, bars, side="right") - 1  # extremes[k] <= bar
    at_extreme = extremes[k] == bars
    segment_end = np.minimum(k + 1, extremes.size - 1)
    known_at[bars] = np.where(at_extreme, confirmed_at[k], confirmed_at[segment_end])
    confirmed[bars] = True
    return confirmed, known_at


def zigzag_labels(close: np.ndarray | pd.Series, threshold: float, lookahead: int) -> np.ndarray:
    """BUY/HOLD/SELL per bar from ZigZag segments (int64, same length as ``close``).

    ``threshold`` is the fractional move that makes a swing (0.02 = 2 %). Bars strictly
    between two consecutive extremes get BUY (0) when the later extreme is higher, else SELL
    (2); the extremes themselves, the bars before the first one and the bars after the last
    one get HOLD (1). A series that never moves by ``threshold`` is all HOLD.

    ``lookahead`` (KTRDR's ``label_lookahead``): in KTRDR it was the forward window of the
    old point labeler and was passed to, but ignored by, the segment labeler, which always
    closed the final, unfinished swing at its latest extreme. Here it decides that final
    swing: its running extreme (already ``threshold`` away from the previous extreme but not
    yet confirmed by a reversal) ends a labelled segment only when at least ``lookahead``
    bars follow it without price going beyond it; otherwise the swing may still be running
    and its bars stay HOLD. ``lookahead = 0`` reproduces KTRDR's tail; segments between
    reversal-confirmed extremes never depend on it.
    """
    if not np.isfinite(threshold) or not 0 < threshold < 1:
        raise ValueError(f"zigzag threshold must be in (0, 1), got {threshold!r}")
    if isinstance(lookahead, bool) or int(lookahead) != lookahead or lookahead < 0:
        raise ValueError(f"label lookahead must be an integer >= 0, got {lookahead!r}")
    prices = np.asarray(close, dtype=np.float64)
    if prices.ndim != 1:
        raise ValueError(f"close must be one-dimensional, got shape {prices.shape}")
    if prices.size and not (np.all(np.isfinite(prices)) and np.all(prices > 0)):
        bad = int(np.flatnonzero(~(np.isfinite(prices) & (prices > 0)))[0])
        raise ValueError(f"close must be finite and > 0; bar {bad} is {prices[bad]!r}")

    labels = np.full(prices.size, HOLD, dtype=np.int64)
    extremes = zigzag_extremes(prices, float(threshold), int(lookahead))
    if extremes.size >= 2:
        starts, ends = extremes[:-1], extremes[1:]
        rising = prices[ends] > prices[starts]
        # Mark each segment's first inner bar with its direction and undo it after the
        # segment: a cumulative sum then paints every inner bar in O(n).
        delta = np.zeros(prices.size + 1, dtype=np.int64)
        segment = np.where(rising, BUY - HOLD, SELL - HOLD)
        inner = ends - starts > 1
        np.add.at(delta, starts[inner] + 1, segment[inner])
        np.add.at(delta, ends[inner], -segment[inner])
        labels += np.cumsum(delta[:-1])
    logger.debug(
        "zigzag labels: %d extremes, BUY %d, HOLD %d, SELL %d",
        extremes.size,
        int(np.sum(labels == BUY)),
        int(np.sum(labels == HOLD)),
        int(np.sum(labels == SELL)),
    )
    return labels
