"""Unconfirmed ZigZag labels and each label's horizon (the bar it needs)."""

from __future__ import annotations

import numpy as np

# 10% threshold: low 100 at bar 1, high 130 at bar 4 (confirmed by 115 at bar 5),
# low 110 at bar 6? no: 110 >= 130*0.9=117 is false -> 110 < 117 so the low runs on.
CLOSE = np.array([105, 100, 112, 120, 130, 115, 110, 125, 126, 127], dtype=float)


def test_tail_and_head_labels_are_unconfirmed():
    from ktrdr.labels import BUY, HOLD, SELL, zigzag_label_horizon, zigzag_labels

    labels = zigzag_labels(CLOSE, 0.1, lookahead=5)
    confirmed, known_at = zigzag_label_horizon(CLOSE, 0.1, lookahead=5)
    # Extremes: 1 (low, confirmed at bar 2: 112 >= 110), 4 (high, confirmed at 5: 115 <= 117),
    # 6 (low, confirmed at 7: 125 >= 121). Bars 7..9 follow the last extreme: unknown.
    assert labels.tolist() == [HOLD, HOLD, BUY, BUY, HOLD, SELL, HOLD, HOLD, HOLD, HOLD]
    assert confirmed.tolist() == [False] + [True] * 6 + [False] * 3
    assert known_at.tolist() == [-1, 2, 5, 5, 5, 7, 7, -1, -1, -1]
    assert np.all(known_at[confirmed] >= np.flatnonzero(confirmed))


def test_a_series_without_a_swing_has_no_confirmed_label():
    from ktrdr.labels import zigzag_label_horizon

    confirmed, known_at = zigzag_label_horizon(np.linspace(100, 101, 30), 0.1, 5)
    assert not confirmed.any() and (known_at == -1).all()


def test_known_at_is_the_last_price_the_label_depends_on():
    from ktrdr.labels import zigzag_label_horizon, zigzag_labels

    rng = np.random.default_rng(3)
    close = 100 * np.exp(np.cumsum(rng.normal(0, 0.01, 600)))
    labels = zigzag_labels(close, 0.03, 10)
    confirmed, known_at = zigzag_label_horizon(close, 0.03, 10)
    for t in np.flatnonzero(confirmed)[::37]:
        if known_at[t] == len(close) - 1:
            continue
        # Changing every price after known_at[t] never changes the label of bar t.
        for seed in range(3):
            other = close.copy()
            tail = np.random.default_rng(seed).normal(0, 0.05, len(close) - known_at[t] - 1)
            other[known_at[t] + 1 :] = close[known_at[t]] * np.exp(np.cumsum(tail))
            assert zigzag_labels(other, 0.03, 10)[t] == labels[t]
