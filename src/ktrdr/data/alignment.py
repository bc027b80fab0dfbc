"""Multi-timeframe alignment without lookahead.

A base bar opening at ``t`` closes at ``t + base_tf``; at that moment the only higher-timeframe
bars whose values are known are those with ``open + frame_tf <= t + base_tf``. Each base bar
gets the most recent such bar, and NaN before the first one has closed.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from ktrdr.data.timeframes import timeframe_to_timedelta


def align_to_base(
    frame: pd.DataFrame, frame_tf: str, base_index: pd.DatetimeIndex, base_tf: str
) -> pd.DataFrame:
    """Rows of ``frame`` (indexed by bar open times of ``frame_tf``) reindexed to ``base_index``.

    Each base bar receives the last ``frame`` row that had closed by the time the base bar
    closed; rows before any such bar are NaN. ``frame`` must be sorted by time and numeric
    (the result is float64).
    """
    closes_at = pd.DatetimeIndex(frame.index) + timeframe_to_timedelta(frame_tf)
    base_closes_at = pd.DatetimeIndex(base_index) + timeframe_to_timedelta(base_tf)
    position = closes_at.searchsorted(base_closes_at, side="right") - 1
    values = np.full((len(base_index), frame.shape[1]), np.nan)
    seen = position >= 0
    if seen.any():
        values[seen] = frame.to_numpy(dtype="float64")[position[seen]]
    return pd.DataFrame(values, index=base_index, columns=frame.columns)


__all__ = ["align_to_base"]
