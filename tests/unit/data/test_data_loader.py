"""Finding files, the date filter, resampling missing timeframes, warm-up checks."""

from __future__ import annotations

import logging
import shutil
from datetime import date

import pytest

from ktrdr.errors import DataError


@pytest.fixture
def data_dir(tmp_path, sample_data_dir):
    """A private copy of the sample files (so tests can add files beside them)."""
    for name in ("EURUSD_1h.csv", "GOOG_1d.csv"):
        shutil.copy(sample_data_dir / name, tmp_path / name)
    return tmp_path


def test_symbol_and_timeframe_are_case_insensitive(sample_data_dir):
    from ktrdr.data import load_ohlcv

    df = load_ohlcv(sample_data_dir, "eurusd", "1H")
    assert len(df) == 5000


def test_file_name_case_variants_are_found(tmp_path, sample_data_dir):
    from ktrdr.data import load_ohlcv

    shutil.copy(sample_data_dir / "GOOG_1d.csv", tmp_path / "goog_1D.CSV")
    assert len(load_ohlcv(tmp_path, "GOOG", "1d")) == 2148


def test_missing_file_lists_what_exists_for_the_symbol(sample_data_dir):
    from ktrdr.data import load_ohlcv

    with pytest.raises(DataError) as info:
        load_ohlcv(sample_data_dir, "GOOG", "1h")
    message = str(info.value)
    assert "no data file for GOOG 1h" in message
    assert "files for GOOG: GOOG_1d.csv" in message


def test_unknown_symbol(sample_data_dir):
    from ktrdr.data import load_ohlcv

    with pytest.raises(DataError, match="there are no files for AAPL"):
        load_ohlcv(sample_data_dir, "AAPL", "1d")


def test_missing_data_directory(tmp_path):
    from ktrdr.data import load_ohlcv

    with pytest.raises(DataError, match="does not exist"):
        load_ohlcv(tmp_path / "nowhere", "GOOG", "1d")


def test_bad_names_are_data_errors(sample_data_dir):
    from ktrdr.data import load_ohlcv

    with pytest.raises(DataError, match="invalid symbol"):
        load_ohlcv(sample_data_dir, "../GOOG", "1d")
    with pytest.raises(DataError, match="unknown timeframe"):
        load_ohlcv(sample_data_dir, "GOOG", "3d")


def test_date_filter_is_inclusive_and_the_end_covers_its_day(sample_data_dir):
    import pandas as pd

    from ktrdr.data import load_ohlcv

    df = load_ohlcv(sample_data_dir, "EURUSD", "1h", "2017-05-02", "2017-05-03")
    assert df.index[0] == pd.Timestamp("2017-05-02 00:00", tz="UTC")
    assert df.index[-1] == pd.Timestamp("2017-05-03 23:00", tz="UTC")
    same = load_ohlcv(sample_data_dir, "EURUSD", "1h", date(2017, 5, 2), date(2017, 5, 3))
    assert same.equals(df)
    daily = load_ohlcv(sample_data_dir, "GOOG", "1d", "2010-01-04", "2010-01-04")
    assert list(daily.index) == [pd.Timestamp("2010-01-04", tz="UTC")]


def test_nothing_left_after_the_date_filter_names_the_file_span(sample_data_dir):
    from ktrdr.data import load_ohlcv

    with pytest.raises(DataError) as info:
        load_ohlcv(sample_data_dir, "GOOG", "1d", "2020-01-01", "2020-02-01")
    assert str(info.value) == (
        "GOOG_1d.csv: no bars between 2020-01-01 and 2020-02-01; "
        "the data covers 2004-08-19 00:00 .. 2013-03-01 00:00 UTC"
    )


def test_start_after_end(sample_data_dir):
    from ktrdr.data import load_ohlcv

    with pytest.raises(DataError, match="after end"):
        load_ohlcv(sample_data_dir, "GOOG", "1d", "2010-02-01", "2010-01-01")


def test_missing_higher_timeframe_is_resampled_and_logged(sample_data_dir, caplog):
    import pandas as pd

    from ktrdr.data import load_ohlcv

    with caplog.at_level(logging.INFO, logger="ktrdr.data"):
        daily = load_ohlcv(sample_data_dir, "EURUSD", "1d")
    assert "EURUSD 1d: no 1d file; resampling from" in caplog.text
    assert "EURUSD_1h.csv" in caplog.text
    hourly = load_ohlcv(sample_data_dir, "EURUSD", "1h", "2017-05-02", "2017-05-02")
    day = daily.loc[pd.Timestamp("2017-05-02", tz="UTC")]
    assert day["open"] == hourly["open"].iloc[0]
    assert day["high"] == hourly["high"].max()
    assert day["low"] == hourly["low"].min()
    assert day["close"] == hourly["close"].iloc[-1]
    assert day["volume"] == hourly["volume"].sum()


def test_resampling_uses_the_finest_finer_file(data_dir, sample_data_dir, caplog):
    from ktrdr.data import load_ohlcv

    four_hourly = load_ohlcv(data_dir, "EURUSD", "4h")
    four_hourly.iloc[::2].to_csv(data_dir / "EURUSD_4h.csv")  # a coarser, gappy 4h file
    with caplog.at_level(logging.INFO, logger="ktrdr.data"):
        daily = load_ohlcv(data_dir, "EURUSD", "1d")
    assert "resampling from" in caplog.text and "EURUSD_1h.csv" in caplog.text
    assert daily.equals(load_ohlcv(sample_data_dir, "EURUSD", "1d"))  # only 1h there


def test_an_existing_file_wins_over_resampling(data_dir):
    from ktrdr.data import load_ohlcv

    weekly = load_ohlcv(data_dir, "GOOG", "1w")
    weekly.iloc[:10].to_csv(data_dir / "GOOG_1w.csv")
    assert len(load_ohlcv(data_dir, "GOOG", "1w")) == 10


def test_load_market_data_nests_symbol_then_timeframe(sample_data_dir):
    import pandas as pd

    from ktrdr.data import load_market_data

    data = load_market_data(
        sample_data_dir, ["eurusd"], ["1h", "4h", "1D"], "2017-06-01", "2017-06-30"
    )
    assert list(data) == ["EURUSD"]
    assert list(data["EURUSD"]) == ["1h", "4h", "1d"]
    assert data["EURUSD"]["4h"].index[0] == pd.Timestamp("2017-06-01", tz="UTC")
    assert data["EURUSD"]["1d"].index[-1] == pd.Timestamp("2017-06-30", tz="UTC")


def test_check_enough_bars(sample_data_dir):
    from ktrdr.data import check_enough_bars, load_ohlcv

    df = load_ohlcv(sample_data_dir, "GOOG", "1d", "2010-01-01", "2010-01-31")
    check_enough_bars(df, len(df), "GOOG_1d.csv")
    with pytest.raises(DataError) as info:
        check_enough_bars(df, 100, "GOOG_1d.csv")
    assert str(info.value).startswith(
        f"GOOG_1d.csv: only {len(df)} bars after the date filter, but at least 100 are needed"
    )
