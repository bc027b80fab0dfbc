"""The fast CSV path (Arrow's reader) and the careful one accept the same files and give the
same frames; Parquet gives the same frame as CSV."""

from __future__ import annotations

import re
from pathlib import Path
from typing import TYPE_CHECKING

import pytest

from ktrdr.errors import DataError

if TYPE_CHECKING:
    import pandas as pd

HEADER = "timestamp,open,high,low,close,volume\n"


def careful(path: Path, monkeypatch: pytest.MonkeyPatch) -> pd.DataFrame:
    from ktrdr.data import reader
    from ktrdr.data.reader import read_ohlcv_file

    with monkeypatch.context() as patch:
        patch.setattr(reader, "_read_clean_csv", lambda _path: None)
        return read_ohlcv_file(path)


@pytest.mark.parametrize("name", ["EURUSD_1h.csv", "GOOG_1d.csv"])
def test_bundled_data_reads_the_same_both_ways(
    name: str, sample_data_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import pandas as pd

    from ktrdr.data import reader
    from ktrdr.data.reader import read_ohlcv_file

    path = sample_data_dir / name
    assert reader._read_clean_csv(path) is not None  # the fast path was taken
    pd.testing.assert_frame_equal(read_ohlcv_file(path), careful(path, monkeypatch))


@pytest.mark.parametrize(
    "rows",
    [
        # mixed ISO forms, fractions of a second, unsorted and duplicate bars
        "2020-01-02 10:00:00.5,1,2,0.5,1.5,10\n2020-01-01T09:00:00,1,2,0.5,1.5,0\n"
        "2020-01-01,1,2,0.5,1.5,3\n2020-01-01 00:00:00,1,2,0.5,1.5,4\n",
        # quoted numbers, exponents, a leading space, upper-case column names below
        '2020-01-01 00:00,"1.5",2e0, 1,1.5,1e3\n',
    ],
)
def test_unusual_but_valid_files_read_the_same_both_ways(
    rows: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import pandas as pd

    from ktrdr.data.reader import read_ohlcv_file

    path = tmp_path / "X_1h.csv"
    path.write_text(HEADER.upper() + rows)
    pd.testing.assert_frame_equal(read_ohlcv_file(path), careful(path, monkeypatch))


def test_a_byte_order_mark_reads_the_same_both_ways(
    sample_data_dir: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import pandas as pd

    from ktrdr.data import reader
    from ktrdr.data.reader import read_ohlcv_file

    path = tmp_path / "EURUSD_1h.csv"
    path.write_bytes(b"\xef\xbb\xbf" + (sample_data_dir / "EURUSD_1h.csv").read_bytes())
    assert reader._read_clean_csv(path) is not None
    pd.testing.assert_frame_equal(read_ohlcv_file(path), careful(path, monkeypatch))


@pytest.mark.parametrize(
    ("rows", "message"),
    [
        ("2020-01-01,1,2,0.5,abc,1\n", "row 1: non-numeric value 'abc' in column 'close'"),
        ("2020-01-01,1,2,0.5,nan,1\n", "row 1: non-numeric value 'nan' in column 'close'"),
        ("2020-01-01,1,2,0.5,,1\n", "row 1: missing value in column 'close'"),
        ("2020-01-01,0,2,0.5,1,1\n", "row 1: non-positive price"),
        (
            "2020-01-01 00:00:00+02:00,1,2,0.5,1,1\n2020-01-02 00:00:00+02:00,1,2,3,1,1\n",
            "row 2: high < low",
        ),
        (
            "2020-01-01 00:00:00+02:00,1,2,0.5,1,1\n2020-01-02,1,2,0.5,1,1\n",
            "mixes times without a time zone (row 2: '2020-01-02', 1 rows)",
        ),
        ("01/02/2020,1,2,0.5,1,1\n02/03/2020,1,2,0.5,1,1\n", "ambiguous date '01/02/2020'"),
    ],
)
def test_files_the_fast_path_declines_get_the_careful_message(
    rows: str, message: str, tmp_path: Path
) -> None:
    from ktrdr.data import reader
    from ktrdr.data.reader import read_ohlcv_file

    path = tmp_path / "X_1h.csv"
    path.write_text(HEADER + rows)
    assert reader._read_clean_csv(path) is None
    with pytest.raises(DataError, match=re.escape(message)):
        read_ohlcv_file(path)


def test_parquet_and_csv_give_the_same_frame(sample_data_dir: Path, tmp_path: Path) -> None:
    import pandas as pd

    from ktrdr.data.reader import read_ohlcv_file

    csv_path = sample_data_dir / "EURUSD_1h.csv"
    parquet_path = tmp_path / "EURUSD_1h.parquet"
    pd.read_csv(csv_path).to_parquet(parquet_path)
    pd.testing.assert_frame_equal(read_ohlcv_file(parquet_path), read_ohlcv_file(csv_path))


def careful_parquet(path: Path, monkeypatch: pytest.MonkeyPatch) -> pd.DataFrame:
    from ktrdr.data import reader
    from ktrdr.data.reader import read_ohlcv_file

    with monkeypatch.context() as patch:
        patch.setattr(reader, "_read_clean_parquet", lambda _path: None)
        return read_ohlcv_file(path)


def _bars(n: int = 30) -> pd.DataFrame:
    import pandas as pd

    stamps = pd.date_range("2021-03-27", periods=n, freq="h")  # across a DST change in Europe
    return pd.DataFrame(
        {"timestamp": stamps, "open": 1.0, "high": 2.0, "low": 0.5, "close": 1.5, "volume": 3}
    )


def _unsorted_duplicates(b: pd.DataFrame) -> pd.DataFrame:
    import pandas as pd

    return pd.concat([b.iloc[::-1], b.iloc[:3]])


def _first_timestamp_missing(b: pd.DataFrame) -> pd.DataFrame:
    import pandas as pd

    return b.assign(timestamp=[pd.NaT, *b.timestamp[1:]])


PARQUET_FILES = {
    "naive": lambda b: b,
    "zoned": lambda b: b.assign(
        timestamp=b.timestamp.dt.tz_localize("UTC").dt.tz_convert("Europe/Berlin")
    ),
    "seconds": lambda b: b.assign(timestamp=b.timestamp.dt.as_unit("s")),
    "upper_case_names": lambda b: b.rename(columns=str.upper),
    "unsorted_duplicates": _unsorted_duplicates,
    "timestamp_index": lambda b: b.set_index("timestamp"),
    "extra_column": lambda b: b.assign(note="x"),
}


@pytest.mark.parametrize("make", PARQUET_FILES.values(), ids=PARQUET_FILES)
def test_parquet_fast_path_gives_the_careful_frame(
    make, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import pandas as pd

    from ktrdr.data import reader
    from ktrdr.data.reader import read_ohlcv_file

    frame = make(_bars())
    path = tmp_path / "X_1h.parquet"
    frame.to_parquet(path, index=not isinstance(frame.index, pd.RangeIndex))
    assert reader._read_clean_parquet(path) is not None  # the fast path was taken
    pd.testing.assert_frame_equal(read_ohlcv_file(path), careful_parquet(path, monkeypatch))


@pytest.mark.parametrize(
    ("edit", "message"),
    [
        (lambda b: b.assign(close=[float("nan")] + [1.5] * 29), "row 1: missing value"),
        (lambda b: b.assign(high=[0.1] + [2.0] * 29), "row 1: high < low"),
        (lambda b: b.assign(volume=[-1] + [3] * 29), "row 1: negative volume"),
        (_first_timestamp_missing, "row 1: unparsable timestamp"),
        (lambda b: b.drop(columns="volume"), "missing column(s) volume"),
    ],
)
def test_parquet_files_the_fast_path_declines_get_the_careful_message(
    edit, message: str, tmp_path: Path
) -> None:
    from ktrdr.data import reader
    from ktrdr.data.reader import read_ohlcv_file

    path = tmp_path / "X_1h.parquet"
    edit(_bars()).to_parquet(path, index=False)
    assert reader._read_clean_parquet(path) is None
    with pytest.raises(DataError, match=re.escape(message)):
        read_ohlcv_file(path)
