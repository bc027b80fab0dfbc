"""Finding and loading market data: ``{data_dir}/{SYMBOL}_{TIMEFRAME}.csv`` or ``.parquet``.

File names are matched case-insensitively (``EURUSD_1h.csv``, ``EURUSD_1H.csv``...), preferring
the exact-case name. A timeframe without a file is resampled from the finest finer file of the
same symbol. The date filter is inclusive at both ends; a date-only end covers its whole day.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import date, datetime
from pathlib import Path
from typing import TypeAlias

import pandas as pd

from ktrdr.data.reader import read_ohlcv_file
from ktrdr.data.resample import resample_ohlcv
from ktrdr.data.symbols import normalize_symbol
from ktrdr.data.timeframes import normalize_timeframe, timeframe_to_timedelta
from ktrdr.errors import DataError

logger = logging.getLogger(__name__)

# A date (whole day), a datetime / pd.Timestamp (that instant) or an ISO string of either.
DateLike: TypeAlias = date | datetime | str
_EXTENSIONS = (".csv", ".parquet")
_DATE_ONLY = re.compile(r"^\s*\d{4}-\d{2}-\d{2}\s*$")


@dataclass(frozen=True)
class _DataFile:
    path: Path
    timeframe: str


def load_ohlcv(
    data_dir: str | Path,
    symbol: str,
    timeframe: str,
    start: DateLike | None = None,
    end: DateLike | None = None,
    date_format: str | None = None,
) -> pd.DataFrame:
    """Bars of ``symbol`` at ``timeframe`` between ``start`` and ``end`` (inclusive).

    ``date_format`` (``day_first``, ``month_first`` or a strftime pattern) says how the files
    write dates; see :func:`ktrdr.data.reader.read_ohlcv_file`.
    """
    return _Loader(Path(data_dir), date_format).load(symbol, timeframe, start, end)


def load_market_data(
    data_dir: str | Path,
    symbols: Iterable[str],
    timeframes: Iterable[str],
    start: DateLike | None = None,
    end: DateLike | None = None,
    date_format: str | None = None,
) -> dict[str, dict[str, pd.DataFrame]]:
    """``{symbol: {timeframe: frame}}`` for every pair; each source file is read once."""
    loader = _Loader(Path(data_dir), date_format)
    timeframe_list = list(timeframes)
    return {
        normalize_symbol(symbol): {
            normalize_timeframe(tf): loader.load(symbol, tf, start, end) for tf in timeframe_list
        }
        for symbol in symbols
    }


def data_files_for(data_dir: str | Path, symbol: str) -> list[Path]:
    """The files in ``data_dir`` the loader would consider for ``symbol`` (every timeframe)."""
    try:
        symbol = normalize_symbol(symbol)
    except ValueError as exc:
        raise DataError(str(exc)) from exc
    return [f.path for f in _Loader(Path(data_dir))._files_for(symbol)]


def check_enough_bars(df: pd.DataFrame, needed: int, file_label: str) -> None:
    """``DataError`` unless ``df`` has at least ``needed`` bars (warm-up, lookback, split)."""
    if len(df) < needed:
        raise DataError(
            f"{file_label}: only {len(df)} bars after the date filter, but at least {needed} "
            "are needed (indicator warm-up, lookback and the data split); widen the date range"
        )


class _Loader:
    """Loads frames from one directory, reading each file at most once."""

    def __init__(self, data_dir: Path, date_format: str | None = None) -> None:
        self.data_dir = data_dir
        self.date_format = date_format
        self._cache: dict[Path, pd.DataFrame] = {}

    def load(
        self, symbol: str, timeframe: str, start: DateLike | None, end: DateLike | None
    ) -> pd.DataFrame:
        try:
            symbol = normalize_symbol(symbol)
            timeframe = normalize_timeframe(timeframe)
        except ValueError as exc:
            raise DataError(str(exc)) from exc
        lower, upper = _date_bounds(start, end)
        frame, label = self._frame(symbol, timeframe)
        selected = frame
        if lower is not None:
            selected = selected[selected.index >= lower]
        if upper is not None:
            selected = selected[selected.index < upper]
        if selected.empty:
            raise DataError(
                f"{label}: no bars between {start or 'the beginning'} and {end or 'the end'}; "
                f"the data covers {_span(frame)}"
            )
        return selected

    def _frame(self, symbol: str, timeframe: str) -> tuple[pd.DataFrame, str]:
        files = self._files_for(symbol)
        exact = [f for f in files if f.timeframe == timeframe]
        if exact:
            path = _prefer_exact_case(exact, f"{symbol}_{timeframe}").path
            return self._read(path), path.name
        wanted = timeframe_to_timedelta(timeframe)
        finer = [f for f in files if timeframe_to_timedelta(f.timeframe) < wanted]
        if not finer:
            raise DataError(self._missing_message(symbol, timeframe, files))
        source = min(finer, key=lambda f: (timeframe_to_timedelta(f.timeframe), f.path.name))
        logger.info(
            "%s %s: no %s file; resampling from %s", symbol, timeframe, timeframe, source.path
        )
        frame = resample_ohlcv(self._read(source.path), timeframe)
        return frame, f"{source.path.name} resampled to {timeframe}"

    def _read(self, path: Path) -> pd.DataFrame:
        if path not in self._cache:
            self._cache[path] = read_ohlcv_file(path, self.date_format)
        return self._cache[path]

    def _files_for(self, symbol: str) -> list[_DataFile]:
        if not self.data_dir.is_dir():
            where = "" if self.data_dir.is_absolute() else " (relative to where it was started)"
            raise DataError(f"data directory {self.data_dir} does not exist{where}")
        found = []
        for path in sorted(self.data_dir.iterdir()):
            if not path.is_file() or path.suffix.lower() not in _EXTENSIONS:
                continue
            name, _, tf = path.stem.rpartition("_")
            if name.upper() != symbol:
                continue
            try:
                found.append(_DataFile(path, normalize_timeframe(tf)))
            except ValueError:
                continue
        return found

    def _missing_message(self, symbol: str, timeframe: str, files: list[_DataFile]) -> str:
        looked_for = f"{symbol}_{timeframe}.csv or .parquet"
        if files:
            available = ", ".join(f.path.name for f in files)
            return (
                f"no data file for {symbol} {timeframe} in {self.data_dir} (looked for "
                f"{looked_for}, and found no finer file to resample); files for {symbol}: "
                f"{available}"
            )
        return (
            f"no data file for {symbol} {timeframe} in {self.data_dir} (looked for "
            f"{looked_for}); there are no files for {symbol} there"
        )


def _prefer_exact_case(files: list[_DataFile], stem: str) -> _DataFile:
    for f in files:
        if f.path.stem == stem and f.path.suffix == ".csv":
            return f
    for f in files:
        if f.path.stem == stem:
            return f
    return files[0]


def _date_bounds(
    start: DateLike | None, end: DateLike | None
) -> tuple[pd.Timestamp | None, pd.Timestamp | None]:
    """``[lower, upper)`` in UTC; a date-only ``end`` extends to the end of its day."""
    lower = _to_utc(start) if start is not None else None
    upper = None
    if end is not None:
        upper = _to_utc(end)
        upper += pd.Timedelta(days=1) if _is_date_only(end) else pd.Timedelta(1, unit="ns")
    if lower is not None and upper is not None and lower >= upper:
        raise DataError(f"start {start} is after end {end}")
    return lower, upper


def _is_date_only(value: DateLike) -> bool:
    if isinstance(value, str):
        return bool(_DATE_ONLY.match(value))
    return isinstance(value, date) and not isinstance(value, datetime)


def _to_utc(value: DateLike) -> pd.Timestamp:
    try:
        stamp = pd.Timestamp(value)
    except (ValueError, TypeError) as exc:
        raise DataError(f"invalid date {value!r}") from exc
    if stamp is pd.NaT:
        raise DataError(f"invalid date {value!r}")
    return stamp.tz_localize("UTC") if stamp.tzinfo is None else stamp.tz_convert("UTC")


def _span(frame: pd.DataFrame) -> str:
    if frame.empty:
        return "nothing"
    return f"{frame.index[0]:%Y-%m-%d %H:%M} .. {frame.index[-1]:%Y-%m-%d %H:%M} UTC"


__all__ = [
    "check_enough_bars",
    "data_files_for",
    "load_market_data",
    "load_ohlcv",
    "read_ohlcv_file",
]
