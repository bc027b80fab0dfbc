"""ktrdr.data: OHLCV loading, validation, resampling and multi-timeframe alignment."""

from ktrdr.data.alignment import align_to_base
from ktrdr.data.loader import check_enough_bars, load_market_data, load_ohlcv
from ktrdr.data.reader import OHLCV_COLUMNS, read_ohlcv_file
from ktrdr.data.resample import resample_ohlcv
from ktrdr.data.symbols import SYMBOL_PATTERN, normalize_symbol
from ktrdr.data.timeframes import (
    TIMEFRAMES,
    normalize_timeframe,
    sort_timeframes,
    timeframe_to_timedelta,
)

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
