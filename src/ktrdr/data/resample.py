"""OHLCV resampling to a coarser timeframe.

Bins are anchored at midnight UTC (weekly bins start on Monday), closed on the left and
labelled with their open time, matching the frame convention (index = bar open time).
Partial first/last bins are kept; bins without any source bar are dropped.
"""

from __future__ import annotations

import pandas as pd

from ktrdr.data.timeframes import timeframe_to_timedelta
from ktrdr.errors import DataError

# A Monday at midnight UTC: anchors every bin (all supported durations divide a week).
_ORIGIN = pd.Timestamp("1970-01-05", tz="UTC")

_AGGREGATION = {"open": "first", "high": "max", "low": "min", "close": "last", "volume": "sum"}


def resample_ohlcv(df: pd.DataFrame, timeframe: str) -> pd.DataFrame:
    """Aggregate ``df`` (OHLCV, UTC index of bar open times) into bars of ``timeframe``."""
    try:
        rule = timeframe_to_timedelta(timeframe)
    except ValueError as exc:
        raise DataError(str(exc)) from exc
    if len(df) > 1:
        finest_step = df.index.to_series().diff().dropna().min()
        if finest_step > rule:
            raise DataError(f"cannot resample bars {finest_step} apart into finer {timeframe} bars")
    bins = df.resample(rule, origin=_ORIGIN, label="left", closed="left")
    out = bins.agg(_AGGREGATION)
    out = out[bins["close"].count() > 0].astype("float64")
    out.index = out.index.as_unit("ns")
    out.index.name = "timestamp"
    return out


__all__ = ["resample_ohlcv"]
