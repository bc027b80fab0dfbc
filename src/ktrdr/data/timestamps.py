"""Timestamp text to UTC instants: ISO 8601, numeric dates whose day/month order the data
proves, or a given ``date_format``; naive times are UTC, zoned ones converted, and a column
mixing the two is refused (see :func:`parse_timestamps`)."""

from __future__ import annotations

import re
import warnings
from pathlib import Path

import pandas as pd

from ktrdr.errors import DataError

# Numeric dates with the day and month in an unknown order: 01/02/1999, 1.2.99 12:00...
_NUMERIC_DATE = re.compile(r"^(\d{1,2})([/.\-])(\d{1,2})\2(\d{4}|\d{2})(?:([ T])(.*))?$")
DATE_ORDERS = ("day_first", "month_first")


def parse_timestamps(
    text: pd.Series, path: Path | str = "<data>", date_format: str | None = None
) -> pd.Series:
    """UTC timestamps (naive = UTC, aware converted), NaT where unparsable.

    The whole column is parsed with ONE format: ``date_format`` when given, else ISO 8601,
    else the numeric day/month order the data proves, else the format pandas infers from the
    first row. An ambiguous numeric column (no row has a field above 12) is a ``DataError``,
    and so is a column mixing naive and zoned times; zoned times with different offsets are
    each converted to UTC.
    """
    if pd.api.types.is_datetime64_any_dtype(text):
        return pd.to_datetime(text, utc=True)
    strings = text.astype(str).str.strip()
    present = strings != ""
    _refuse_mixed_zones(strings, present, path)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)  # "could not infer format" notices
        if date_format is not None and date_format not in DATE_ORDERS:
            return pd.to_datetime(strings, errors="coerce", utc=True, format=date_format)
        parts = strings[present].str.extract(_NUMERIC_DATE)
        if present.any() and parts[0].notna().all():
            return _numeric_dates(strings, parts, Path(path), date_format)
        if date_format is not None:
            raise DataError(
                f"{path}: date_format {date_format!r} needs numeric dates such as 01/02/1999, "
                f"but the column holds e.g. {strings[present].iloc[0]!r}"
            )
        parsed = pd.to_datetime(strings, errors="coerce", utc=True, format="ISO8601")
        if not parsed[present].notna().any():
            parsed = pd.to_datetime(strings, errors="coerce", utc=True)
    return parsed


# A time of day followed by a zone: "Z", "UTC" or an offset ("+09:00", "-0500", "+09").
_ZONED = re.compile(r"\d{1,2}:\d{2}(?::\d{2}(?:\.\d+)?)?\s*(?:Z|UTC|[+-]\d{2}(?::?\d{2})?)$")


def _refuse_mixed_zones(strings: pd.Series, present: pd.Series, path: Path | str) -> None:
    """Naive times beside zoned ones are refused: naive is read as UTC, so a file mixing
    "09:00" and "09:00+09:00" would shift one kind by the offset without a word. Zoned times
    with different offsets (daylight saving, +09:00 beside +00:00) are fine: each names its
    instant and all are converted to UTC."""
    if not present.any():
        return
    zoned = strings.str.contains(_ZONED) & present
    naive = present & ~zoned
    if not zoned.any() or not naive.any():
        return
    naive_row, zoned_row = _row(strings, naive), _row(strings, zoned)
    raise DataError(
        f"{path}: the timestamp column mixes times without a time zone (row {naive_row}: "
        f"{strings[naive].iloc[0]!r}, {int(naive.sum())} rows) and times with one (row "
        f"{zoned_row}: {strings[zoned].iloc[0]!r}, {int(zoned.sum())} rows); naive times "
        "would be read as UTC and shifted against the others. Write every timestamp with its "
        "offset (or all in UTC without one)"
    )


def _numeric_dates(
    strings: pd.Series, parts: pd.DataFrame, path: Path, date_format: str | None
) -> pd.Series:
    first, second = parts[0].astype(int), parts[2].astype(int)
    order = date_format
    if order is None:
        day_first, month_first = bool((first > 12).any()), bool((second > 12).any())
        if day_first and month_first:
            raise DataError(
                f"{path}: dates mix day-first and month-first order (row "
                f"{_row(strings, first > 12)} has a day first, row {_row(strings, second > 12)} "
                "a month first)"
            )
        if day_first or month_first:
            order = "day_first" if day_first else "month_first"
        elif (first != second).any():
            differs = first != second
            label = differs[differs].index[0]
            row = _row(strings, differs)
            value = strings.loc[label]
            readings = [_iso(parts.loc[label], "day_first"), _iso(parts.loc[label], "month_first")]
            raise DataError(
                f"{path}: row {row}: ambiguous date {value!r}: day-first reads "
                f"{readings[0][:10]}, month-first reads {readings[1][:10]}, and no row decides "
                "the order; set the data source's date_format (day_first, month_first or a "
                "strftime pattern)"
            )
        else:
            order = "day_first"
    iso = pd.Series("", index=strings.index, dtype=object)
    iso[parts.index] = [_iso(row, order) for _, row in parts.iterrows()]
    return pd.to_datetime(iso, errors="coerce", utc=True, format="ISO8601")


def _row(strings: pd.Series, mask: pd.Series) -> int:
    """1-based data row of the first True in ``mask`` (indexed like ``strings``)."""
    return int(strings.index.get_loc(mask[mask].index[0])) + 1


def _iso(row: pd.Series, order: str) -> str:
    a, b, year = int(row[0]), int(row[2]), int(row[3])
    if len(str(row[3])) == 2:
        year += 1900 if year >= 69 else 2000
    day, month = (a, b) if order == "day_first" else (b, a)
    time = f" {row[5]}" if isinstance(row[5], str) and row[5] else ""
    return f"{year:04d}-{month:02d}-{day:02d}{time}"


__all__ = ["DATE_ORDERS", "parse_timestamps"]
