"""Timeframe names, their durations and their order (finest first)."""

from __future__ import annotations

from collections.abc import Iterable
from datetime import timedelta
from typing import TYPE_CHECKING

from ktrdr.echo import short_repr

if TYPE_CHECKING:  # pandas loads only when a duration is asked for (strategy checks need none)
    import pandas as pd

# The supported timeframes, finest first, with the duration of one bar.
_DURATIONS: dict[str, timedelta] = {
    "1m": timedelta(minutes=1),
    "5m": timedelta(minutes=5),
    "15m": timedelta(minutes=15),
    "30m": timedelta(minutes=30),
    "1h": timedelta(hours=1),
    "2h": timedelta(hours=2),
    "4h": timedelta(hours=4),
    "1d": timedelta(days=1),
    "1w": timedelta(days=7),
}

TIMEFRAMES: tuple[str, ...] = tuple(_DURATIONS)


def normalize_timeframe(timeframe: str) -> str:
    """Return the canonical (lower-case) name of ``timeframe``; ``ValueError`` if unknown."""
    if not isinstance(timeframe, str):
        raise ValueError(f"timeframe must be a string, got {short_repr(timeframe)}")
    name = timeframe.strip().lower()
    if name not in _DURATIONS:
        raise ValueError(
            f"unknown timeframe {short_repr(timeframe)}; known: {', '.join(TIMEFRAMES)}"
        )
    return name


def timeframe_to_timedelta(timeframe: str) -> pd.Timedelta:
    """Duration of one bar of ``timeframe`` (case-insensitive)."""
    import pandas as pd

    return pd.Timedelta(_DURATIONS[normalize_timeframe(timeframe)])


def sort_timeframes(timeframes: Iterable[str]) -> list[str]:
    """Normalized timeframes ordered from finest to coarsest."""
    return sorted((normalize_timeframe(tf) for tf in timeframes), key=_DURATIONS.__getitem__)


__all__ = ["TIMEFRAMES", "normalize_timeframe", "sort_timeframes", "timeframe_to_timedelta"]
