"""ZigZag segment labels on hand-built series (exact expected arrays) and random walks."""

from __future__ import annotations

import itertools
import time

import numpy as np
import pytest

from tests.support.timing import scaled

B, H, S = 0, 1, 2  # BUY, HOLD, SELL (test_class_constants checks them)


def test_class_constants() -> None:
    from ktrdr.labels import BUY, CLASS_NAMES, HOLD, SELL

    assert (BUY, HOLD, SELL) == (0, 1, 2)
    assert CLASS_NAMES == ("BUY", "HOLD", "SELL")


@pytest.mark.parametrize("lookahead", [0, 3, 100])
def test_flat_series_is_all_hold(lookahead: int) -> None:
    from ktrdr.labels import zigzag_labels

    labels = zigzag_labels(np.full(12, 1.2345), 0.02, lookahead)
    assert labels.tolist() == [H] * 12


def test_threshold_not_reached_is_all_hold() -> None:
    from ktrdr.labels import zigzag_labels

    close = [100, 101, 102, 103, 104, 105, 104, 103, 101, 100, 96]
    assert zigzag_labels(close, 0.10, 0).tolist() == [H] * len(close)  # type: ignore[arg-type]


def test_single_swing_up_then_reversal() -> None:
    from ktrdr.labels import zigzag_extremes, zigzag_labels

    close = np.array([100, 105, 110, 120, 115, 107], dtype=float)
    # Low at bar 0 (confirmed at 110 = +10 %), high at bar 3 (confirmed at 107 <= 108).
    assert zigzag_extremes(close, 0.10, 1).tolist() == [0, 3]
    assert zigzag_labels(close, 0.10, 1).tolist() == [H, B, B, H, H, H]
    # lookahead 0: the running low at the last bar closes the final swing (KTRDR's tail).
    assert zigzag_labels(close, 0.10, 0).tolist() == [H, B, B, H, S, H]


def test_single_swing_down_first() -> None:
    from ktrdr.labels import zigzag_labels

    close = np.array([100, 95, 88, 90, 99, 97], dtype=float)
    assert zigzag_labels(close, 0.10, 2).tolist() == [H, S, H, H, H, H]
    # The running high at bar 4 has one bar after it: enough for lookahead 1.
    assert zigzag_labels(close, 0.10, 1).tolist() == [H, S, H, B, H, H]


def test_first_extreme_is_the_low_before_the_first_swing_not_bar_zero() -> None:
    from ktrdr.labels import zigzag_extremes, zigzag_labels

    close = np.array([100, 99, 98, 101, 104, 101, 100], dtype=float)
    assert zigzag_extremes(close, 0.03, 0).tolist() == [2, 4, 6]
    assert zigzag_labels(close, 0.03, 0).tolist() == [H, H, H, B, H, S, H]
    assert zigzag_labels(close, 0.03, 1).tolist() == [H, H, H, B, H, H, H]


def test_equal_highs_the_first_one_is_the_extreme() -> None:
    from ktrdr.labels import zigzag_extremes, zigzag_labels

    close = np.array([100, 110, 120, 115, 120, 105, 100], dtype=float)
    assert zigzag_extremes(close, 0.10, 0).tolist() == [0, 2, 6]
    assert zigzag_labels(close, 0.10, 0).tolist() == [H, B, H, S, S, S, H]
    assert zigzag_labels(close, 0.10, 1).tolist() == [H, B, H, H, H, H, H]


def test_equal_lows_the_first_one_is_the_extreme() -> None:
    from ktrdr.labels import zigzag_extremes, zigzag_labels

    close = np.array([120, 110, 100, 104, 100, 112, 115], dtype=float)
    assert zigzag_extremes(close, 0.10, 0).tolist() == [0, 2, 6]
    assert zigzag_labels(close, 0.10, 0).tolist() == [H, S, H, B, B, B, H]


def test_several_swings_inner_segments_do_not_depend_on_lookahead() -> None:
    from ktrdr.labels import zigzag_labels

    close = np.array([100, 106, 112, 104, 100, 103, 108, 110, 101], dtype=float)
    expected = [H, B, H, S, H, B, B, H, H]
    for lookahead in (0, 1, 5, 50):
        assert zigzag_labels(close, 0.05, lookahead).tolist() == expected


def test_exact_threshold_move_counts() -> None:
    from ktrdr.labels import zigzag_extremes, zigzag_labels

    close = np.array([100.0, 101.0, 102.0, 99.96, 99.0])
    # 102 * (1 - 0.02) = 99.96: exactly the threshold confirms the high at bar 2.
    assert zigzag_extremes(close, 0.02, 5).tolist() == [0, 2]
    assert zigzag_labels(close, 0.02, 5).tolist() == [H, B, H, H, H]


def test_accepts_series_and_returns_int64_of_same_length() -> None:
    import pandas as pd

    from ktrdr.labels import zigzag_labels

    index = pd.date_range("2024-01-01", periods=6, freq="h", tz="UTC")
    close = pd.Series([100, 105, 110, 120, 115, 107], index=index, dtype=float)
    labels = zigzag_labels(close, 0.10, 0)
    assert isinstance(labels, np.ndarray)
    assert labels.dtype == np.int64
    assert labels.shape == (6,)
    assert labels.tolist() == [H, B, B, H, S, H]


@pytest.mark.parametrize("n", [0, 1, 2])
def test_tiny_inputs(n: int) -> None:
    from ktrdr.labels import zigzag_labels

    assert zigzag_labels(np.linspace(100, 200, n), 0.02, 0).tolist() == [H] * n


@pytest.mark.parametrize(
    ("close", "threshold", "lookahead", "match"),
    [
        ([1.0, 2.0], 0.0, 0, "threshold"),
        ([1.0, 2.0], 1.0, 0, "threshold"),
        ([1.0, 2.0], float("nan"), 0, "threshold"),
        ([1.0, 2.0], 0.02, -1, "lookahead"),
        ([1.0, 2.0], 0.02, 1.5, "lookahead"),
        ([1.0, float("nan")], 0.02, 0, "bar 1"),
        ([1.0, 0.0], 0.02, 0, "bar 1"),
        ([[1.0, 2.0]], 0.02, 0, "one-dimensional"),
    ],
)
def test_invalid_arguments(
    close: list[float], threshold: float, lookahead: int, match: str
) -> None:
    from ktrdr.labels import zigzag_labels

    with pytest.raises(ValueError, match=match):
        zigzag_labels(np.array(close), threshold, lookahead)


def _random_walk(n: int, seed: int) -> np.ndarray:
    rng = np.random.default_rng(seed)
    return 100.0 * np.exp(np.cumsum(rng.normal(0.0, 0.004, n)))


@pytest.mark.parametrize("seed", range(5))
def test_random_walk_properties(seed: int) -> None:
    from ktrdr.labels import BUY, HOLD, SELL, zigzag_extremes, zigzag_labels

    close = _random_walk(3000, seed)
    tau = 0.02
    ext = zigzag_extremes(close, tau, 0)
    assert ext.size >= 4
    assert (np.diff(ext) > 0).all()
    moves = np.diff(np.log(close[ext]))
    assert (np.sign(moves[1:]) != np.sign(moves[:-1])).all()  # highs and lows alternate
    # Every confirmed swing moved at least tau; each extreme is the extreme of its swing.
    for k in range(1, ext.size - 1):
        lo, hi = sorted((close[ext[k - 1]], close[ext[k]]))
        assert hi >= lo * (1 + tau) - 1e-9 or hi * (1 - tau) >= lo - 1e-9
        span = close[ext[k - 1] : ext[k + 1] + 1]
        assert close[ext[k]] in (span.max(), span.min())
    labels = zigzag_labels(close, tau, 0)
    assert (labels[ext] == HOLD).all()
    for start, end in itertools.pairwise(ext):
        expected = BUY if close[end] > close[start] else SELL
        assert (labels[start + 1 : end] == expected).all()
    assert (labels[: ext[0]] == HOLD).all() and (labels[ext[-1] :] == HOLD).all()


def test_two_hundred_thousand_bars_well_under_a_second() -> None:
    from ktrdr.labels import BUY, HOLD, SELL, zigzag_labels

    close = _random_walk(200_000, 7)
    started = time.perf_counter()
    labels = zigzag_labels(close, 0.01, 20)
    elapsed = time.perf_counter() - started
    assert elapsed < scaled(1.0), elapsed
    counts = np.bincount(labels, minlength=3)
    assert counts[BUY] > 0 and counts[SELL] > 0 and counts[HOLD] > 0
