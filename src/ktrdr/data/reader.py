"""Reading and validating one OHLCV file (CSV or Parquet).

The result follows the frame convention: a UTC ``DatetimeIndex`` named ``timestamp`` (bar open
times), float64 columns ``open high low close volume``, sorted, unique. Problems raise
``DataError`` naming the file, the first bad data row (1-based, header excluded) and its raw
values, plus how many other rows are bad.
"""

from __future__ import annotations

import logging
import warnings
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pandas as pd

from ktrdr.errors import DataError

logger = logging.getLogger(__name__)

OHLCV_COLUMNS: tuple[str, ...] = ("open", "high", "low", "close", "volume")
# Column names that hold the timestamp, in order of preference (matched case-insensitively).
_TIMESTAMP_NAMES: tuple[str, ...] = ("timestamp", "datetime", "date", "time")

# A check: (bad-row mask, describe(row position) -> problem text).
_Check = tuple["pd.Series[bool]", Callable[[int], str]]


def read_ohlcv_file(path: str | Path) -> pd.DataFrame:
    """Read, validate and normalize one OHLCV file; ``DataError`` on any problem."""
    path = Path(path)
    raw = _read_raw(path)
    if raw.empty:
        raise DataError(f"{path}: no data rows")
    columns = _find_ohlcv_columns(raw, path)
    ts_columns = _find_timestamp_columns(raw, path, columns)
    timestamps = _parse_timestamps(_timestamp_text(raw, ts_columns))
    values = {name: _to_numeric(raw[col]) for name, col in columns.items()}

    checks = _row_checks(raw, ts_columns, timestamps, columns, values)
    _raise_on_first_bad_row(path, raw, [*ts_columns, *columns.values()], checks)

    frame = pd.DataFrame(
        {name: values[name].to_numpy(dtype="float64") for name in OHLCV_COLUMNS},
        index=pd.DatetimeIndex(timestamps, name="timestamp").as_unit("ns"),
    )
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


def _parse_timestamps(text: pd.Series) -> pd.Series:
    """UTC timestamps (naive = UTC, aware converted), NaT where unparsable."""
    if pd.api.types.is_datetime64_any_dtype(text):
        return pd.to_datetime(text, utc=True)
    strings = text.astype(str).str.strip()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)  # "could not infer format" notices
        parsed = pd.to_datetime(strings, errors="coerce", utc=True)
        retry = parsed.isna() & (strings != "")
        if retry.any():
            # Formats that differ from the first row's (e.g. mixed UTC offsets) one by one.
            parsed[retry] = pd.to_datetime(
                strings[retry], errors="coerce", utc=True, format="mixed"
            )
    return parsed


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


__all__ = ["OHLCV_COLUMNS", "read_ohlcv_file"]
