"""Finding indicators by name, and computing the one a strategy declares.

Names are matched case-insensitively and without separators, so ``BollingerBands``,
``bollinger_bands`` and ``bollinger-bands`` all find ``bbands``.
"""

from __future__ import annotations

import logging
import re
from typing import TYPE_CHECKING

from ktrdr.echo import short_repr
from ktrdr.indicators.catalog import build_catalog
from ktrdr.indicators.spec import IndicatorSpec

if TYPE_CHECKING:
    import pandas as pd

    from ktrdr.config.strategy import IndicatorConfig

logger = logging.getLogger(__name__)

_SEPARATORS = re.compile(r"[\s_\-]+")


def normalize_name(name: str) -> str:
    """Lower-case, separators (``_``, ``-``, spaces) removed: the key names are matched by."""
    return _SEPARATORS.sub("", name).lower()


def _build_index(specs: tuple[IndicatorSpec, ...]) -> dict[str, IndicatorSpec]:
    index: dict[str, IndicatorSpec] = {}
    for spec in specs:
        for name in (spec.name, *spec.aliases):
            key = normalize_name(name)
            if key in index and index[key] is not spec:
                raise RuntimeError(f"indicator name {name!r} is used twice")
            index[key] = spec
    return index


_SPECS: tuple[IndicatorSpec, ...] = build_catalog()
_INDEX: dict[str, IndicatorSpec] = _build_index(_SPECS)


def known_indicators() -> list[str]:
    """Canonical names of every indicator, sorted."""
    return sorted(spec.name for spec in _SPECS)


def get_indicator(name: str) -> IndicatorSpec:
    """The indicator called ``name`` (or one of its aliases). Unknown names raise KeyError."""
    spec = _INDEX.get(normalize_name(name)) if isinstance(name, str) else None
    if spec is None:
        raise KeyError(
            f"unknown indicator {short_repr(name)}; known: {', '.join(known_indicators())}"
        )
    return spec


def compute_indicator(ind: IndicatorConfig, ohlcv: pd.DataFrame) -> pd.Series:
    """The fuzzy-input series of a declared indicator, named by the indicator's ``id``."""
    spec = get_indicator(ind.name)
    series = spec.compute(ohlcv, ind.params)
    series.name = ind.id
    return series
