"""Day-first dates are never scrambled, and non-positive prices never pass the reader."""

from __future__ import annotations

import pytest

from ktrdr.errors import DataError

HEADER = "date,open,high,low,close,volume\n"


def _rows(dates: list[str]) -> str:
    return HEADER + "".join(
        f"{d},{i + 1},{i + 2},{i + 0.5},{i + 1.5},10\n" for i, d in enumerate(dates)
    )


def _day_first_dates(n: int) -> list[str]:
    import pandas as pd

    days = pd.date_range("1999-02-01", periods=n, freq="D")
    return [f"{d.day:02d}/{d.month:02d}/{d.year}" for d in days]


def test_day_first_dates_proven_by_a_later_row_are_all_read_day_first(write_file):
    # First rows are ambiguous (01/02/1999); 13/02/1999 proves the order.
    import pandas as pd

    from ktrdr.data.reader import read_ohlcv_file

    path = write_file("X_1d.csv", _rows(_day_first_dates(40)))
    df = read_ohlcv_file(path)
    expected = pd.date_range("1999-02-01", periods=40, freq="D", tz="UTC")
    assert list(df.index) == list(expected)
    assert df["close"].iloc[0] == 1.5  # the first close stays on 1999-02-01


def test_an_ambiguous_column_names_the_file_a_row_and_both_readings(write_file):
    from ktrdr.data.reader import read_ohlcv_file

    path = write_file("X_1d.csv", _rows(_day_first_dates(12)))  # 01/02 .. 12/02: no proof
    with pytest.raises(DataError) as err:
        read_ohlcv_file(path)
    text = str(err.value)
    assert "X_1d.csv: row 1: ambiguous date '01/02/1999'" in text
    assert "day-first reads 1999-02-01" in text and "month-first reads 1999-01-02" in text


@pytest.mark.parametrize(
    ("date_format", "first"),
    [("day_first", "1999-02-01"), ("month_first", "1999-01-02"), ("%d/%m/%Y", "1999-02-01")],
)
def test_the_data_source_can_say_the_order(write_file, date_format, first):
    import pandas as pd

    from ktrdr.data import load_ohlcv
    from ktrdr.data.reader import read_ohlcv_file

    path = write_file("X_1d.csv", _rows(_day_first_dates(12)))
    df = read_ohlcv_file(path, date_format=date_format)
    assert df.index[0] == pd.Timestamp(first, tz="UTC")
    loaded = load_ohlcv(path.parent, "X", "1d", date_format=date_format)
    assert loaded.index[0] == pd.Timestamp(first, tz="UTC")


def test_a_column_mixing_both_orders_is_an_error(write_file):
    from ktrdr.data.reader import read_ohlcv_file

    path = write_file("X_1d.csv", _rows(["13/02/1999", "02/14/1999"]))
    with pytest.raises(DataError, match="mix day-first and month-first"):
        read_ohlcv_file(path)


def test_a_column_is_never_parsed_with_two_formats(write_file):
    # ISO rows then a day-first row: the odd row is reported, not re-read with another format.
    from ktrdr.data.reader import read_ohlcv_file

    path = write_file("X_1d.csv", _rows(["1999-02-01", "1999-02-02", "13/02/1999"]))
    with pytest.raises(DataError, match="row 3: unparsable timestamp"):
        read_ohlcv_file(path)


@pytest.mark.parametrize("bad", ["0", "-1.5"])
def test_non_positive_prices_are_a_data_error_with_file_and_row(write_file, bad):
    from ktrdr.data.reader import read_ohlcv_file

    text = HEADER + "2020-01-01,1,2,0.5,1.5,10\n" + f"2020-01-02,1,2,{bad},1.5,10\n"
    path = write_file("X_1d.csv", text)
    with pytest.raises(DataError, match=r"X_1d.csv: row 2: non-positive price"):
        read_ohlcv_file(path)
