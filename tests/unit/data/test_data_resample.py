"""OHLCV resampling: aggregation, midnight/Monday anchoring, empty bins."""

from __future__ import annotations

from typing import TYPE_CHECKING

import pytest

from ktrdr.errors import DataError

if TYPE_CHECKING:
    import pandas as pd


def _bars(times: list[str], closes: list[float]) -> pd.DataFrame:
    import pandas as pd

    index = pd.DatetimeIndex(pd.to_datetime(times, utc=True), name="timestamp")
    return pd.DataFrame(
        {
            "open": [c - 0.5 for c in closes],
            "high": [c + 1 for c in closes],
            "low": [c - 1 for c in closes],
            "close": closes,
            "volume": [10.0] * len(closes),
        },
        index=index,
    )


def test_ohlcv_aggregation_and_bin_labels():
    import pandas as pd

    from ktrdr.data import resample_ohlcv

    df = _bars(
        ["2020-01-01 09:00", "2020-01-01 10:00", "2020-01-01 11:00", "2020-01-01 12:00"],
        [5.0, 9.0, 2.0, 4.0],
    )
    out = resample_ohlcv(df, "4h")
    assert list(out.index) == [
        pd.Timestamp("2020-01-01 08:00", tz="UTC"),
        pd.Timestamp("2020-01-01 12:00", tz="UTC"),
    ]
    first = out.iloc[0]
    assert (first["open"], first["high"], first["low"], first["close"], first["volume"]) == (
        4.5,
        10.0,
        1.0,
        2.0,
        30.0,
    )
    assert list(out.columns) == ["open", "high", "low", "close", "volume"]
    assert out.index.name == "timestamp"


def test_daily_bins_start_at_midnight_utc_and_empty_bins_are_dropped():
    import pandas as pd

    from ktrdr.data import resample_ohlcv

    df = _bars(["2020-01-03 22:00", "2020-01-03 23:00", "2020-01-06 01:00"], [1.0, 2.0, 3.0])
    out = resample_ohlcv(df, "1d")  # the weekend has no bars: no rows for it
    assert list(out.index) == [
        pd.Timestamp("2020-01-03", tz="UTC"),
        pd.Timestamp("2020-01-06", tz="UTC"),
    ]


def test_weekly_bins_start_on_monday():
    import pandas as pd

    from ktrdr.data import resample_ohlcv

    df = _bars(["2020-01-01 12:00", "2020-01-06 12:00"], [1.0, 2.0])  # Wednesday, Monday
    out = resample_ohlcv(df, "1w")
    assert list(out.index) == [
        pd.Timestamp("2019-12-30", tz="UTC"),
        pd.Timestamp("2020-01-06", tz="UTC"),
    ]


def test_cannot_resample_to_a_finer_timeframe():
    from ktrdr.data import resample_ohlcv

    df = _bars(["2020-01-01", "2020-01-02"], [1.0, 2.0])
    with pytest.raises(DataError, match="cannot resample"):
        resample_ohlcv(df, "1h")
