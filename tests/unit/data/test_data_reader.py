"""Reading one OHLCV file: accepted layouts, normalization, and every bad input's message."""

from __future__ import annotations

import logging

import pytest

from ktrdr.errors import DataError

HEADER = "timestamp,open,high,low,close,volume\n"
GOOD_ROWS = (
    "2020-01-01 00:00:00,1.0,1.2,0.9,1.1,100\n"
    "2020-01-01 01:00:00,1.1,1.3,1.0,1.2,200\n"
    "2020-01-01 02:00:00,1.2,1.4,1.1,1.3,300\n"
)


def test_sample_file_follows_the_frame_convention(sample_data_dir):
    import pandas as pd

    from ktrdr.data import read_ohlcv_file

    df = read_ohlcv_file(sample_data_dir / "EURUSD_1h.csv")
    assert len(df) == 5000
    assert list(df.columns) == ["open", "high", "low", "close", "volume"]
    assert (df.dtypes == "float64").all()
    assert isinstance(df.index, pd.DatetimeIndex) and str(df.index.tz) == "UTC"
    assert df.index.name == "timestamp"
    assert df.index.is_monotonic_increasing and df.index.is_unique
    assert df.index[0] == pd.Timestamp("2017-04-19 09:00", tz="UTC")  # naive = UTC


def test_column_names_are_case_insensitive_and_extras_ignored(write_file):
    from ktrdr.data import read_ohlcv_file

    path = write_file(
        "X_1h.csv",
        "Date,Open,HIGH,Low,Close,Adj Close,Volume,OpenInterest\n2020-01-01,1,2,0.5,1.5,1.4,10,7\n",
    )
    df = read_ohlcv_file(path)
    assert list(df.columns) == ["open", "high", "low", "close", "volume"]
    assert df["close"].iloc[0] == 1.5


def test_separate_date_and_time_columns(write_file):
    import pandas as pd

    from ktrdr.data import read_ohlcv_file

    path = write_file(
        "X_1h.csv",
        "Date,Time,Open,High,Low,Close,Volume\n"
        "2020-01-01,10:00,1,2,0.5,1.5,10\n"
        "2020-01-01,11:00,1,2,0.5,1.5,10\n",
    )
    df = read_ohlcv_file(path)
    assert df.index[1] == pd.Timestamp("2020-01-01 11:00", tz="UTC")


def test_timestamp_from_an_unnamed_first_column(write_file):
    import pandas as pd

    from ktrdr.data import read_ohlcv_file

    path = write_file("X_1h.csv", ",open,high,low,close,volume\n2020-01-01 05:00,1,2,0.5,1.5,10\n")
    assert read_ohlcv_file(path).index[0] == pd.Timestamp("2020-01-01 05:00", tz="UTC")


def test_aware_times_with_different_offsets_are_each_converted_to_utc(write_file):
    import pandas as pd

    from ktrdr.data import read_ohlcv_file

    path = write_file(
        "X_1h.csv",
        HEADER
        + "2020-01-01T10:00:00+02:00,1,2,0.5,1.5,10\n"
        + "2020-01-01 18:00:00+09:00,1,2,0.5,1.5,10\n"
        + "2020-01-01 10:00:00Z,1,2,0.5,1.5,10\n",
    )
    df = read_ohlcv_file(path)
    assert list(df.index) == [
        pd.Timestamp("2020-01-01 08:00", tz="UTC"),
        pd.Timestamp("2020-01-01 09:00", tz="UTC"),
        pd.Timestamp("2020-01-01 10:00", tz="UTC"),
    ]


MIXED_ZONES = (
    "2020-01-01 08:00:00,1,2,0.5,1.5,10\n"
    "2020-01-01 09:00:00,1,2,0.5,1.5,10\n"
    "2020-01-01 19:00:00+09:00,1,2,0.5,1.5,10\n"
)
MIXED_ZONES_ERROR = (
    "the timestamp column mixes times without a time zone (row 1: '2020-01-01 08:00:00', "
    "2 rows) and times with one (row 3: '2020-01-01 19:00:00+09:00', 1 rows); naive times "
    "would be read as UTC and shifted against the others. Write every timestamp with its "
    "offset (or all in UTC without one)"
)


def test_naive_beside_zoned_times_is_refused_naming_file_rows_and_values(write_file):
    from ktrdr.data import read_ohlcv_file

    path = write_file("X_1h.csv", HEADER + MIXED_ZONES)
    with pytest.raises(DataError) as err:
        read_ohlcv_file(path)  # once read as 10:00 UTC, sorted between the naive rows
    assert str(err.value) == f"{path}: {MIXED_ZONES_ERROR}"


def test_naive_beside_zoned_times_is_refused_in_parquet_too(tmp_path):
    import pandas as pd

    from ktrdr.data import read_ohlcv_file

    rows = [line.split(",") for line in MIXED_ZONES.splitlines()]
    frame = pd.DataFrame(rows, columns=HEADER.strip().split(","))
    frame[["open", "high", "low", "close", "volume"]] = frame[
        ["open", "high", "low", "close", "volume"]
    ].astype(float)
    path = tmp_path / "X_1h.parquet"
    frame.to_parquet(path, index=False)  # timestamps as text: the only way to mix in Parquet
    with pytest.raises(DataError) as err:
        read_ohlcv_file(path)
    assert str(err.value) == f"{path}: {MIXED_ZONES_ERROR}"


def test_rows_are_sorted_and_duplicates_dropped_with_a_warning(write_file, caplog):
    from ktrdr.data import read_ohlcv_file

    rows = GOOD_ROWS.splitlines(keepends=True)
    path = write_file("X_1h.csv", HEADER + rows[2] + rows[0] + rows[1] + rows[0])
    with caplog.at_level(logging.WARNING, logger="ktrdr.data"):
        df = read_ohlcv_file(path)
    assert df.index.is_monotonic_increasing and len(df) == 3
    assert "dropped 1 rows with duplicate timestamps" in caplog.text


def test_parquet_with_a_datetime_index(tmp_path):
    import pandas as pd

    from ktrdr.data import read_ohlcv_file

    index = pd.date_range("2020-01-01", periods=3, freq="h", name="Datetime")
    frame = pd.DataFrame(
        {"Open": 1.0, "High": 2.0, "Low": 0.5, "Close": 1.5, "Volume": 10}, index=index
    )
    path = tmp_path / "X_1h.parquet"
    frame.to_parquet(path)
    df = read_ohlcv_file(path)
    assert len(df) == 3 and str(df.index.tz) == "UTC"


BAD_FILES = [
    (
        "missing column",
        "timestamp,open,high,low,close\n2020-01-01,1,2,0.5,1.5\n",
        "bad.csv: missing column(s) volume; found: timestamp, open, high, low, close",
    ),
    (
        "non-numeric value",
        HEADER + GOOD_ROWS + "2020-01-01 03:00:00,1.2,abc,1.1,1.3,300\n",
        "bad.csv: row 4: non-numeric value 'abc' in column 'high' (values: "
        "timestamp=2020-01-01 03:00:00, open=1.2, high=abc, low=1.1, close=1.3, volume=300)",
    ),
    (
        "missing value",
        HEADER + "2020-01-01 03:00:00,1.2,1.4,,1.3,300\n",
        "bad.csv: row 1: missing value in column 'low'",
    ),
    (
        "unparsable timestamp",
        HEADER + GOOD_ROWS + "yesterday,1.2,1.4,1.1,1.3,300\n",
        "bad.csv: row 4: unparsable timestamp in column 'timestamp' (values: timestamp=yesterday",
    ),
    (
        "infinite value",
        HEADER + "2020-01-01 03:00:00,1.2,inf,1.1,1.3,300\n",
        "bad.csv: row 1: non-finite value 'inf' in column 'high'",
    ),
    (
        "high below low",
        HEADER + "2020-01-01 03:00:00,1.2,1.0,1.1,1.05,300\n",
        "bad.csv: row 1: high < low",
    ),
    (
        "high below close",
        HEADER + GOOD_ROWS + "2020-01-01 03:00:00,1.2,1.3,1.1,1.35,300\n",
        "bad.csv: row 4: high below open or close",
    ),
    (
        "low above open",
        HEADER + "2020-01-01 03:00:00,1.0,1.3,1.1,1.2,300\n",
        "bad.csv: row 1: low above open or close",
    ),
    (
        "negative volume",
        HEADER + "2020-01-01 03:00:00,1.2,1.3,1.1,1.2,-5\n",
        "bad.csv: row 1: negative volume",
    ),
    ("empty file", "", "bad.csv: file is empty"),
    ("header only", HEADER, "bad.csv: no data rows"),
    (
        "no timestamp column",
        "open,high,low,close,volume\n1,2,0.5,1.5,10\n",
        "bad.csv: no timestamp column",
    ),
]


@pytest.mark.parametrize(("text", "expected"), [pytest.param(t, e, id=i) for i, t, e in BAD_FILES])
def test_bad_files_name_the_file_and_the_first_bad_row(write_file, text, expected):
    from ktrdr.data import read_ohlcv_file

    path = write_file("bad.csv", text)
    with pytest.raises(DataError) as info:
        read_ohlcv_file(path)
    message = str(info.value)
    assert str(path.parent) in message
    assert expected in message, message


def test_first_bad_row_is_reported_with_a_count_of_the_others(write_file):
    from ktrdr.data import read_ohlcv_file

    path = write_file(
        "bad.csv",
        HEADER
        + GOOD_ROWS
        + "2020-01-01 03:00:00,1.2,1.0,1.1,1.05,300\n"
        + "2020-01-01 04:00:00,x,1.4,1.1,1.3,300\n",
    )
    with pytest.raises(DataError, match=r"row 4: high < low .*; 1 more bad row\(s\)"):
        read_ohlcv_file(path)


def test_missing_file(tmp_path):
    from ktrdr.data import read_ohlcv_file

    with pytest.raises(DataError, match="file not found"):
        read_ohlcv_file(tmp_path / "nothing.csv")
