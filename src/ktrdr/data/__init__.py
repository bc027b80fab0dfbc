"""ktrdr.data: OHLCV loading, validation, resampling and multi-timeframe alignment.

Names and timeframes (pure Python, what strategy checks need) import at once; the loaders,
reader and resampling (pandas, pyarrow) load on first use.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

from ktrdr.data.symbols import SYMBOL_PATTERN, normalize_symbol
from ktrdr.data.timeframes import (
    TIMEFRAMES,
    normalize_timeframe,
    sort_timeframes,
    timeframe_to_timedelta,
)

if TYPE_CHECKING:
    from ktrdr.data.alignment import align_to_base
    from ktrdr.data.loader import check_enough_bars, load_market_data, load_ohlcv
    from ktrdr.data.reader import OHLCV_COLUMNS, read_ohlcv_file
    from ktrdr.data.resample import resample_ohlcv

_LAZY = {
    "align_to_base": "ktrdr.data.alignment",
    "check_enough_bars": "ktrdr.data.loader",
    "load_market_data": "ktrdr.data.loader",
    "load_ohlcv": "ktrdr.data.loader",
    "OHLCV_COLUMNS": "ktrdr.data.reader",
    "read_ohlcv_file": "ktrdr.data.reader",
    "resample_ohlcv": "ktrdr.data.resample",
}

__all__ = [
    "OHLCV_COLUMNS",
    "SYMBOL_PATTERN",
    "TIMEFRAMES",
    "align_to_base",
    "check_enough_bars",
    "load_market_data",
    "load_ohlcv",
    "normalize_symbol",
    "normalize_timeframe",
    "read_ohlcv_file",
    "resample_ohlcv",
    "sort_timeframes",
    "timeframe_to_timedelta",
]


def __getattr__(name: str) -> Any:
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module 'ktrdr.data' has no attribute {name!r}")
    return getattr(importlib.import_module(module), name)
