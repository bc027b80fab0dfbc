"""Technical indicators backed by TA-Lib, each yielding the one series its fuzzy sets read.

See ``README.md`` in this folder for the table of series.
"""

from ktrdr.indicators.registry import (
    compute_indicator,
    get_indicator,
    known_indicators,
    normalize_name,
)
from ktrdr.indicators.spec import PRICE_SOURCES, IndicatorSpec, ParamSpec

__all__ = [
    "PRICE_SOURCES",
    "IndicatorSpec",
    "ParamSpec",
    "compute_indicator",
    "get_indicator",
    "known_indicators",
    "normalize_name",
]
