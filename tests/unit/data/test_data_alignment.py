"""Multi-timeframe alignment: a base bar only sees higher bars that closed by its own close."""

from __future__ import annotations

import numpy as np


def test_hand_built_alignment():
    import pandas as pd

    from ktrdr.data import align_to_base

    base = pd.date_range("2020-01-01 00:00", periods=10, freq="h", tz="UTC")
    four_hourly = pd.DataFrame(
        {"x": [1.0, 2.0, 3.0]}, index=pd.date_range("2020-01-01", periods=3, freq="4h", tz="UTC")
    )
    out = align_to_base(four_hourly, "4h", base, "1h")
    # the 00:00 4h bar closes at 04:00, when the 03:00 hourly bar closes
    expected = [np.nan, np.nan, np.nan, 1.0, 1.0, 1.0, 1.0, 2.0, 2.0, 2.0]
    np.testing.assert_array_equal(out["x"].to_numpy(), expected)
    assert out.index.equals(base)


def test_empty_frame_gives_nan_rows():
    import pandas as pd

    from ktrdr.data import align_to_base

    base = pd.date_range("2020-01-01", periods=3, freq="h", tz="UTC")
    empty = pd.DataFrame({"x": []}, index=pd.DatetimeIndex([], tz="UTC"))
    assert align_to_base(empty, "1d", base, "1h")["x"].isna().all()


def test_no_intraday_bar_sees_the_close_of_its_own_days_daily_bar(sample_data_dir):
    import pandas as pd

    from ktrdr.data import align_to_base, load_ohlcv

    hourly = load_ohlcv(sample_data_dir, "EURUSD", "1h")
    daily = load_ohlcv(sample_data_dir, "EURUSD", "1d")  # resampled from the hourly file
    tagged = daily.assign(day_open=daily.index.asi8.astype("float64"))
    seen = align_to_base(tagged, "1d", hourly.index, "1h")
    visible = seen["day_open"].notna().to_numpy()
    assert visible.sum() > 4800

    bar_day = hourly.index.normalize()[visible]
    seen_day = pd.DatetimeIndex(pd.to_datetime(seen["day_open"][visible].astype("int64"), utc=True))
    bar_close = hourly.index[visible] + pd.Timedelta(hours=1)
    ends_its_day = bar_close == bar_day + pd.Timedelta(days=1)

    # Every intraday bar that closes before its day ends sees only earlier days ...
    assert (seen_day[~ends_its_day] < bar_day[~ends_its_day]).all()
    # ... the 23:00 bar closes together with its day, so seeing that day is no lookahead.
    assert ends_its_day.any()
    assert (seen_day[ends_its_day] == bar_day[ends_its_day]).all()
    # The daily close seen is a price already printed: the last hourly close of that day,
    # from a bar that closed no later than the bar that sees it.
    last_of_day = hourly.groupby(hourly.index.normalize())
    last_close = last_of_day["close"].last().reindex(seen_day).to_numpy()
    last_open = pd.DatetimeIndex(
        last_of_day.apply(lambda g: g.index[-1]).reindex(seen_day).to_numpy(), tz="UTC"
    )
    np.testing.assert_array_equal(seen["close"].to_numpy()[visible], last_close)
    assert (last_open + pd.Timedelta(hours=1) <= bar_close).all()


def test_alignment_never_reveals_a_bar_before_it_closes(sample_data_dir):
    import pandas as pd

    from ktrdr.data import align_to_base, load_ohlcv

    hourly = load_ohlcv(sample_data_dir, "EURUSD", "1h")
    for tf, duration in (("4h", pd.Timedelta(hours=4)), ("1d", pd.Timedelta(days=1))):
        higher = load_ohlcv(sample_data_dir, "EURUSD", tf)
        tagged = higher.assign(opened=higher.index.asi8.astype("float64"))
        seen = align_to_base(tagged, tf, hourly.index, "1h")["opened"]
        known = seen.notna()
        higher_close = pd.to_datetime(seen[known].astype("int64"), utc=True) + duration
        base_close = hourly.index[known] + pd.Timedelta(hours=1)
        assert (higher_close.to_numpy() <= base_close.to_numpy()).all()
        # ... and it is the latest such bar: the next existing one had not closed yet.
        position = higher.index.get_indexer(higher_close - duration)
        has_next = position + 1 < len(higher)
        next_close = higher.index[position[has_next] + 1] + duration
        assert (next_close > base_close[has_next]).all()
