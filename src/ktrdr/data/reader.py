"""Reading and validating one OHLCV file (CSV or Parquet).

The result follows the frame convention: a UTC ``DatetimeIndex`` named ``timestamp`` (bar open
times), float64 columns ``open high low close volume``, sorted, unique. Problems raise
``DataError`` naming the file, the first bad data row (1-based, header excluded) and its raw
values, plus how many other rows are bad.
"""

from __future__ import annotations

import csv
import logging
from collections.abc import Callable, Mapping
from pathlib import Path

import numpy as np
import pandas as pd

from ktrdr.data.timestamps import DATE_ORDERS, parse_timestamps
from ktrdr.errors import DataError

logger = logging.getLogger(__name__)

OHLCV_COLUMNS: tuple[str, ...] = ("open", "high", "low", "close", "volume")
# Column names that hold the timestamp, in order of preference (matched case-insensitively).
_TIMESTAMP_NAMES: tuple[str, ...] = ("timestamp", "datetime", "date", "time")

# What a fast reader gives: the UTC timestamps and the OHLCV values, by name.
_Clean = tuple["pd.Series | pd.DatetimeIndex", Mapping[str, "pd.Series | np.ndarray"]]
# A check: (bad-row mask, describe(row position) -> problem text).
_Check = tuple["pd.Series[bool]", Callable[[int], str]]


def read_ohlcv_file(path: str | Path, date_format: str | None = None) -> pd.DataFrame:
    """Read, validate and normalize one OHLCV file; ``DataError`` on any problem.

    ``date_format`` says how the data source writes dates: ``day_first``, ``month_first`` or
    a ``strftime`` pattern (``%d/%m/%Y``). Without it, ISO dates are read as such and numeric
    ``a/b/yyyy`` dates take the order that some row proves (a field above 12); when no row
    decides, the column is ambiguous and reading stops with both readings of a row.
    """
    path = Path(path)
    clean = _read_clean(path) if date_format is None else None
    if clean is not None:
        timestamps, values = clean
    else:  # the careful reader: every value as text, every problem named with its row
        raw = _read_raw(path)
        if raw.empty:
            raise DataError(f"{path}: no data rows")
        columns = _find_ohlcv_columns(raw, path)
        ts_columns = _find_timestamp_columns(raw, path, columns)
        timestamps = parse_timestamps(_timestamp_text(raw, ts_columns), path, date_format)
        values = {name: _to_numeric(raw[col]) for name, col in columns.items()}

        checks = _row_checks(raw, ts_columns, timestamps, columns, values)
        _raise_on_first_bad_row(path, raw, [*ts_columns, *columns.values()], checks)

    index = pd.DatetimeIndex(timestamps, name="timestamp").as_unit("ns")
    frame = pd.DataFrame(
        {name: np.asarray(values[name], dtype="float64") for name in OHLCV_COLUMNS},
        index=index,
    )
    if index.is_monotonic_increasing and index.is_unique:  # the usual file: nothing to do
        return frame
    frame = frame.sort_index(kind="stable")
    duplicated = frame.index.duplicated(keep="first")
    if duplicated.any():
        logger.warning(
            "%s: dropped %d rows with duplicate timestamps (first: %s); kept the first of each",
            path,
            int(duplicated.sum()),
            frame.index[duplicated][0],
        )
        frame = frame[~duplicated]
    return frame


def _read_clean(path: Path) -> _Clean | None:
    """The fast reader for the file's type (``None``: read it the careful way)."""
    suffix = path.suffix.lower()
    if suffix == ".csv":
        return _read_clean_csv(path)
    if suffix == ".parquet":
        return _read_clean_parquet(path)
    return None


def _read_clean_parquet(path: Path) -> tuple[pd.DatetimeIndex, dict[str, np.ndarray]] | None:
    """A clean Parquet file at the speed of ``pyarrow.parquet.read_table``: only the needed
    columns, converted to numpy straight from Arrow, checked with numpy. The columns are found
    by the same names as the careful reader finds them, the timestamp column only by its name
    (``timestamp``, ``datetime``, ``date`` or ``time``) and only as an Arrow timestamp, with a
    time zone (converted to UTC) or without (read as UTC); OHLCV as integers or floats. Any
    other file, a null, or a row that fails a check: ``None``, and the careful reader reads
    the file again and names the problem and its row."""
    if not path.is_file():
        return None
    import pyarrow as pa
    import pyarrow.parquet as pq

    try:
        parquet = pq.ParquetFile(path)
        schema = parquet.schema_arrow
    except Exception:  # pyarrow's own error types for corrupt files: the careful reader says
        return None
    header = [name for name in schema.names if not name.startswith("__index_level_")]
    if len(set(header)) != len(header):
        return None
    names = pd.DataFrame(columns=header)
    try:
        columns = _find_ohlcv_columns(names, path)
    except DataError:
        return None
    lower = _by_lower_name(names)
    found = [lower[name] for name in _TIMESTAMP_NAMES if name in lower]
    separate = "date" in lower and "time" in lower
    if not found or len(found[0]) != 1 or separate:
        return None
    ts_column = found[0][0]
    ts_type = schema.field(ts_column).type
    if not pa.types.is_timestamp(ts_type):
        return None
    if not all(
        pa.types.is_floating(t) or pa.types.is_integer(t)
        for t in (schema.field(col).type for col in columns.values())
    ):
        return None
    try:
        table = parquet.read(columns=[ts_column, *columns.values()], use_pandas_metadata=False)
        if table.num_rows == 0 or any(column.null_count for column in table.columns):
            return None
        # UTC nanoseconds: an aware column holds UTC instants, a naive one is read as UTC
        epoch_ns = table.column(ts_column).cast(pa.timestamp("ns", tz=ts_type.tz)).cast(pa.int64())
        values = {
            name: table.column(col).to_numpy().astype("float64", copy=False)
            for name, col in columns.items()
        }
    except (pa.ArrowException, OSError, ValueError):
        return None
    o, h, lo, c, v = (values[name] for name in OHLCV_COLUMNS)
    with np.errstate(invalid="ignore"):
        bad = ~(np.isfinite(o) & np.isfinite(h) & np.isfinite(lo) & np.isfinite(c))
        bad |= ~np.isfinite(v)
        bad |= (o <= 0) | (h <= 0) | (lo <= 0) | (c <= 0) | (v < 0) | (h < lo)
        bad |= (h < np.maximum(o, c)) | (lo > np.minimum(o, c))
    if bad.any():
        return None
    stamps = epoch_ns.to_numpy().view("datetime64[ns]")
    return pd.DatetimeIndex(stamps).tz_localize("UTC"), values


def _read_clean_csv(path: Path) -> tuple[pd.Series, dict[str, pd.Series]] | None:
    """A clean CSV at the speed of Arrow's reader: timestamps parsed as naive ISO 8601 (UTC)
    and OHLCV as floats by pyarrow. ``None`` whenever anything is unusual (a value Arrow does
    not parse, numeric or zoned dates, separate date and time columns, a row that fails a
    check): the careful reader then reads the file again and names the problem and its row,
    so both readers accept the same files and give the same frames."""
    if path.suffix.lower() != ".csv" or not path.is_file():
        return None
    try:
        with open(path, newline="", encoding="utf-8-sig") as fh:  # -sig: a BOM is no name
            header = next(csv.reader(fh))
    except (OSError, UnicodeDecodeError, StopIteration, csv.Error):
        return None
    if len(set(header)) != len(header):
        return None
    names = pd.DataFrame(columns=header)
    try:
        columns = _find_ohlcv_columns(names, path)
        ts_columns = _find_timestamp_columns(names, path, columns)
    except DataError:
        return None
    if len(ts_columns) != 1:
        return None
    import pyarrow as pa
    import pyarrow.csv as pa_csv

    types = {col: pa.float64() for col in columns.values()}
    types[ts_columns[0]] = pa.timestamp("ns")
    options = pa_csv.ConvertOptions(
        column_types=types,
        include_columns=[ts_columns[0], *columns.values()],
        null_values=[],
        strings_can_be_null=False,
        quoted_strings_can_be_null=False,
    )
    try:
        table = pa_csv.read_csv(path, convert_options=options)
    except (pa.ArrowException, OSError, ValueError):
        return None
    if table.num_rows == 0:
        return None
    timestamps = pd.Series(table.column(ts_columns[0]).to_numpy(), dtype="datetime64[ns]")
    timestamps = timestamps.dt.tz_localize("UTC")
    values = {
        name: pd.Series(table.column(col).to_numpy(), dtype="float64")
        for name, col in columns.items()
    }
    checks = _row_checks(names, ts_columns, timestamps, columns, values)
    if any(bool(mask.to_numpy(dtype=bool).any()) for mask, _ in checks):
        return None
    return timestamps, values


def _read_raw(path: Path) -> pd.DataFrame:
    suffix = path.suffix.lower()
    if not path.is_file():
        raise DataError(f"{path}: file not found")
    try:
        if suffix == ".parquet":
            raw = pd.read_parquet(path)
            if not isinstance(raw.index, pd.RangeIndex):
                raw = raw.reset_index()
            return raw
        if suffix == ".csv":
            return pd.read_csv(path, dtype=str, keep_default_na=False, skipinitialspace=True)
    except pd.errors.EmptyDataError as exc:
        raise DataError(f"{path}: file is empty") from exc
    except (ValueError, OSError, UnicodeDecodeError) as exc:
        raise DataError(f"{path}: cannot read file: {exc}") from exc
    except Exception as exc:  # pyarrow raises its own error types for corrupt files
        raise DataError(f"{path}: cannot read file: {exc}") from exc
    raise DataError(f"{path}: unsupported file type {suffix!r} (use .csv or .parquet)")


def _by_lower_name(raw: pd.DataFrame) -> dict[str, list[str]]:
    names: dict[str, list[str]] = {}
    for column in raw.columns:
        names.setdefault(str(column).strip().lower(), []).append(column)
    return names


def _find_ohlcv_columns(raw: pd.DataFrame, path: Path) -> dict[str, str]:
    names = _by_lower_name(raw)
    missing = [name for name in OHLCV_COLUMNS if name not in names]
    if missing:
        raise DataError(
            f"{path}: missing column(s) {', '.join(missing)}; "
            f"found: {', '.join(str(c) for c in raw.columns)}"
        )
    ambiguous = [name for name in OHLCV_COLUMNS if len(names[name]) > 1]
    if ambiguous:
        raise DataError(
            f"{path}: ambiguous column(s) {', '.join(ambiguous)} "
            "(several columns differ only in case)"
        )
    return {name: names[name][0] for name in OHLCV_COLUMNS}


def _find_timestamp_columns(raw: pd.DataFrame, path: Path, ohlcv: dict[str, str]) -> list[str]:
    """One timestamp column, or ``[date, time]`` when they are separate."""
    names = _by_lower_name(raw)
    separate = "date" in names and "time" in names
    if separate and "timestamp" not in names and "datetime" not in names:
        return [names["date"][0], names["time"][0]]
    for name in _TIMESTAMP_NAMES:
        if name in names:
            return [names[name][0]]
    first = raw.columns[0]
    if first in ohlcv.values():
        raise DataError(
            f"{path}: no timestamp column (expected one named timestamp/datetime/date/time "
            "or a first column holding times)"
        )
    return [first]


def _timestamp_text(raw: pd.DataFrame, ts_columns: list[str]) -> pd.Series:
    if len(ts_columns) == 1:
        return raw[ts_columns[0]]
    date_col, time_col = (raw[c] for c in ts_columns)
    if pd.api.types.is_datetime64_any_dtype(date_col):
        date_col = date_col.dt.strftime("%Y-%m-%d")
    return date_col.astype(str).str.strip() + " " + time_col.astype(str).str.strip()


def _to_numeric(column: pd.Series) -> pd.Series:
    if pd.api.types.is_numeric_dtype(column):
        return column.astype("float64")
    text = column.astype(str).str.strip()
    return pd.to_numeric(text, errors="coerce").astype("float64")


def _is_blank(value: object) -> bool:
    return value is None or (isinstance(value, float) and np.isnan(value)) or str(value) == ""


def _row_checks(
    raw: pd.DataFrame,
    ts_columns: list[str],
    timestamps: pd.Series,
    columns: dict[str, str],
    values: dict[str, pd.Series],
) -> list[_Check]:
    """Every row check, in the order their problems are reported for one row."""
    ts_label = " + ".join(str(c) for c in ts_columns)
    checks: list[_Check] = [
        (timestamps.isna(), lambda _row: f"unparsable timestamp in column '{ts_label}'")
    ]
    for name in OHLCV_COLUMNS:
        col = columns[name]

        def non_numeric(row: int, col: str = col, name: str = name) -> str:
            value = raw[col].iloc[row]
            if _is_blank(value):
                return f"missing value in column '{col}'"
            if not pd.isna(values[name].iloc[row]):
                return f"non-finite value {value!r} in column '{col}'"
            return f"non-numeric value {value!r} in column '{col}'"

        checks.append((~np.isfinite(values[name]), non_numeric))
    o, h, lo, c, v = (values[name] for name in OHLCV_COLUMNS)
    checks += [
        (
            (o <= 0) | (h <= 0) | (lo <= 0) | (c <= 0),
            lambda _row: "non-positive price (open, high, low and close must be > 0)",
        ),
        (v < 0, lambda _row: "negative volume"),
        (h < lo, lambda _row: "high < low"),
        (h < np.maximum(o, c), lambda _row: "high below open or close"),
        (lo > np.minimum(o, c), lambda _row: "low above open or close"),
    ]
    return checks


def _raise_on_first_bad_row(
    path: Path, raw: pd.DataFrame, shown_columns: list[str], checks: list[_Check]
) -> None:
    bad = np.zeros(len(raw), dtype=bool)
    for mask, _ in checks:
        bad |= mask.to_numpy(dtype=bool)
    if not bad.any():
        return
    row = int(np.argmax(bad))
    problem = next(
        describe(row) for mask, describe in checks if bool(mask.to_numpy(dtype=bool)[row])
    )
    shown = ", ".join(f"{col}={raw[col].iloc[row]!s}" for col in shown_columns)
    others = int(bad.sum()) - 1
    more = f"; {others} more bad row(s)" if others else ""
    raise DataError(f"{path}: row {row + 1}: {problem} (values: {shown}){more}")


__all__ = ["DATE_ORDERS", "OHLCV_COLUMNS", "parse_timestamps", "read_ohlcv_file"]
