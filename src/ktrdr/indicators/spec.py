"""What an indicator is: its parameters, its checks, its warm-up and its one fuzzy-input series.

An :class:`IndicatorSpec` is a small immutable description plus two functions (compute and
TA-Lib lookback). The registry (:mod:`ktrdr.indicators.registry`) finds specs by name; the
catalog (:mod:`ktrdr.indicators.catalog`) defines them.
"""

from __future__ import annotations

import logging
import math
import numbers
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Literal

from ktrdr.echo import short_repr
from ktrdr.errors import DataError, StrategyConfigError

if TYPE_CHECKING:  # numpy and pandas load only where a value is computed
    import numpy as np
    import pandas as pd

logger = logging.getLogger(__name__)

ParamKind = Literal["int", "float", "choice"]

# Where a `source` parameter may read its prices from.
PRICE_SOURCES: tuple[str, ...] = (
    "open",
    "high",
    "low",
    "close",
    "volume",
    "hl2",
    "hlc3",
    "ohlc4",
)

_SOURCE_COLUMNS: dict[str, tuple[str, ...]] = {
    "open": ("open",),
    "high": ("high",),
    "low": ("low",),
    "close": ("close",),
    "volume": ("volume",),
    "hl2": ("high", "low"),
    "hlc3": ("high", "low", "close"),
    "ohlc4": ("open", "high", "low", "close"),
}

ComputeFn = Callable[["pd.DataFrame", dict[str, Any]], "np.ndarray"]
LookbackFn = Callable[[dict[str, Any]], int]
CrossCheckFn = Callable[[dict[str, Any]], list[str]]


@dataclass(frozen=True)
class ParamSpec:
    """One parameter of an indicator."""

    name: str
    kind: ParamKind
    default: Any
    minimum: float | None = None  # inclusive
    maximum: float | None = None  # inclusive
    choices: tuple[str, ...] = ()  # for kind == "choice" (matched case-insensitively)
    aliases: tuple[str, ...] = ()  # other YAML names for the same parameter
    doc: str = ""

    def problem(self, value: Any) -> str | None:
        """Why ``value`` is not acceptable (``None`` when it is)."""
        if self.kind == "choice":
            if not isinstance(value, str) or value.strip().lower() not in self.choices:
                return f"must be one of {', '.join(self.choices)}, got {short_repr(value)}"
            return None
        # numpy's bool_ is not a numbers.Real, so it is refused here like bool.
        if isinstance(value, bool) or not isinstance(value, numbers.Real):
            wanted = "an integer" if self.kind == "int" else "a number"
            return f"must be {wanted}, got {short_repr(value)}"
        try:
            number = float(value)
        except OverflowError:  # an integer beyond float range (1 followed by 400 digits)
            return f"must be <= {self.maximum:g}, got {short_repr(value)}"
        if not math.isfinite(number):
            return f"must be finite, got {short_repr(value)}"
        if self.kind == "int" and not number.is_integer():
            return f"must be an integer, got {short_repr(value)}"
        if self.minimum is not None and number < self.minimum:
            return f"must be >= {self.minimum:g}, got {short_repr(value)}"
        if self.maximum is not None and number > self.maximum:
            return f"must be <= {self.maximum:g}, got {short_repr(value)}"
        return None

    def normalize(self, value: Any) -> Any:
        """The canonical form of an accepted value (int, float or lower-case choice)."""
        if self.kind == "choice":
            return str(value).strip().lower()
        if self.kind == "int":
            return int(value)
        return float(value)


@dataclass(frozen=True)
class IndicatorSpec:
    """An indicator: name, aliases, parameters, and the ONE series that feeds its fuzzy sets."""

    name: str  # canonical, lower-case (e.g. "bbands")
    aliases: tuple[str, ...]  # other accepted names (matched case- and separator-insensitively)
    params: tuple[ParamSpec, ...]
    series_doc: str  # what compute() returns, its unit and range
    columns: tuple[str, ...]  # OHLCV columns always needed (besides those of `source`)
    compute_fn: ComputeFn = field(repr=False)  # resolved params -> values (float64, len n)
    lookback_fn: LookbackFn = field(repr=False)  # resolved params -> bars of warm-up
    cross_check: CrossCheckFn | None = field(default=None, repr=False)

    @property
    def defaults(self) -> dict[str, Any]:
        """Every parameter with its default value."""
        return {p.name: p.default for p in self.params}

    def _param_by_yaml_name(self) -> dict[str, ParamSpec]:
        names: dict[str, ParamSpec] = {}
        for p in self.params:
            names[p.name] = p
            for alias in p.aliases:
                names[alias] = p
        return names

    def check_params(self, params: Mapping[str, Any]) -> list[str]:
        """Every problem with ``params`` (as given in the YAML); empty when they are fine."""
        problems: list[str] = []
        by_name = self._param_by_yaml_name()
        allowed = ", ".join(p.name for p in self.params) or "(none)"
        seen: dict[str, str] = {}
        resolved = self.defaults
        for key, value in params.items():
            spec = by_name.get(key)
            if spec is None:
                problems.append(
                    f"unknown parameter {short_repr(key)} for {self.name}; allowed: {allowed}"
                )
                continue
            if spec.name in seen:
                problems.append(
                    f"{self.name}: '{seen[spec.name]}' and {short_repr(key)} are the same "
                    "parameter; "
                    "give only one"
                )
                continue
            seen[spec.name] = key
            problem = spec.problem(value)
            if problem is not None:
                problems.append(f"{self.name}.{key} {problem}")
            else:
                resolved[spec.name] = spec.normalize(value)
        if not problems and self.cross_check is not None:
            problems.extend(f"{self.name}: {p}" for p in self.cross_check(resolved))
        return problems

    def resolve_params(self, params: Mapping[str, Any]) -> dict[str, Any]:
        """Canonical names, normalized values, defaults filled. Raises StrategyConfigError."""
        problems = self.check_params(params)
        if problems:
            raise StrategyConfigError(problems)
        by_name = self._param_by_yaml_name()
        resolved = self.defaults
        for key, value in params.items():
            spec = by_name[key]
            resolved[spec.name] = spec.normalize(value)
        return resolved

    def warmup(self, params: Mapping[str, Any]) -> int:
        """Bars before the first valid (non-NaN) value of :meth:`compute`."""
        return int(self.lookback_fn(self.resolve_params(params)))

    def required_columns(self, params: Mapping[str, Any]) -> tuple[str, ...]:
        """OHLCV columns that :meth:`compute` reads for these parameters."""
        resolved = self.resolve_params(params)
        cols = list(self.columns)
        source = resolved.get("source")
        if source is not None:
            cols.extend(c for c in _SOURCE_COLUMNS[source] if c not in cols)
        return tuple(cols)

    def compute(self, ohlcv: pd.DataFrame, params: Mapping[str, Any]) -> pd.Series:
        """The fuzzy-input series: same index as ``ohlcv``, NaN during the warm-up."""
        import numpy as np
        import pandas as pd

        resolved = self.resolve_params(params)
        missing = [c for c in self.required_columns(resolved) if c not in ohlcv.columns]
        if missing:
            raise DataError(
                f"indicator {self.name} needs column(s) {', '.join(missing)}; "
                f"the data has {', '.join(map(str, ohlcv.columns))}"
            )
        logger.debug("computing %s with %s on %d bars", self.name, resolved, len(ohlcv))
        if len(ohlcv) == 0:
            return pd.Series(np.array([], dtype=np.float64), index=ohlcv.index, name=self.name)
        with np.errstate(divide="ignore", invalid="ignore"):
            values = np.asarray(self.compute_fn(ohlcv, resolved), dtype=np.float64)
        return pd.Series(values, index=ohlcv.index, name=self.name)


def column(ohlcv: pd.DataFrame, name: str) -> np.ndarray:
    """One OHLCV column as a contiguous float64 array (what TA-Lib wants)."""
    import numpy as np

    return np.ascontiguousarray(ohlcv[name].to_numpy(dtype=np.float64))


def source_prices(ohlcv: pd.DataFrame, source: str) -> np.ndarray:
    """The prices a `source` parameter names (``hl2`` = (high + low) / 2, etc.)."""
    import numpy as np

    cols = _SOURCE_COLUMNS[source]
    if len(cols) == 1:
        return column(ohlcv, cols[0])
    total = np.zeros(len(ohlcv), dtype=np.float64)
    for c in cols:
        total += column(ohlcv, c)
    return total / len(cols)
