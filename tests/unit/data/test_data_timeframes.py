"""Timeframe names, durations and ordering; symbol names."""

from __future__ import annotations

import pytest

from ktrdr.data import (
    TIMEFRAMES,
    normalize_symbol,
    normalize_timeframe,
    sort_timeframes,
    timeframe_to_timedelta,
)


def test_names_are_case_insensitive_and_stored_lower():
    assert normalize_timeframe(" 1H ") == "1h"
    assert normalize_timeframe("1D") == "1d"
    assert TIMEFRAMES == ("1m", "5m", "15m", "30m", "1h", "2h", "4h", "1d", "1w")


def test_durations():
    import pandas as pd

    assert timeframe_to_timedelta("15m") == pd.Timedelta(minutes=15)
    assert timeframe_to_timedelta("4H") == pd.Timedelta(hours=4)
    assert timeframe_to_timedelta("1w") == pd.Timedelta(days=7)


def test_unknown_timeframe_lists_the_known_ones():
    with pytest.raises(ValueError, match=r"unknown timeframe '3h'; known: 1m, 5m, 15m"):
        normalize_timeframe("3h")


def test_sort_finest_first():
    assert sort_timeframes(["1d", "15M", "4h", "1h"]) == ["15m", "1h", "4h", "1d"]


def test_symbols_upper_cased_and_strict():
    assert normalize_symbol("eurusd") == "EURUSD"
    assert normalize_symbol("brk.b") == "BRK.B"
    for bad in ("", "EUR/USD", "../etc", "A" * 33, "EUR USD"):
        with pytest.raises(ValueError, match="invalid symbol"):
            normalize_symbol(bad)
