"""Fuzzy set coverage: on how many bars of the data each set is active (the unit trap check).

A set is *active* on a bar when its membership is above :data:`ACTIVE_MEMBERSHIP` (0.05, so a
gaussian's far tails, which never reach exactly 0, do not count). Bars are every bar of the
strategy's data (its date range, each symbol and timeframe) where the indicator has a value;
the check runs before the split, on the same bars ``ktrdr strategy validate --data-dir`` reads.

Warnings (never errors):

- a set active on fewer than :data:`RARE_SET_SHARE` (2 %) of a symbol's bars: almost never
  active, usually because its parameters are in other units than the series (sma/ema sets
  written for KTRDR's ``close / MA`` ~1.0 fed a ``units: percent`` series, or the reverse);
- an indicator whose sets together are active on fewer than :data:`MIN_INDICATOR_COVERAGE`
  (50 %) of a symbol's bars: most bars fall between or outside its sets.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd

from ktrdr.fuzzy.membership import membership

ACTIVE_MEMBERSHIP = 0.05  # a set is active on a bar when its membership is above this
RARE_SET_SHARE = 0.02  # warn when a set is active on fewer than this share of bars
MIN_INDICATOR_COVERAGE = 0.5  # warn when an indicator's sets together cover less than this

_ANY = "(any)"  # the row of an indicator: bars where any of its sets is active


@dataclass
class CoverageReport:
    """Active shares per symbol, timeframe, indicator and set; the warnings they raise."""

    rows: list[dict[str, Any]] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        """The bundle metadata's ``fuzzy_coverage``."""
        return {
            "active_membership": ACTIVE_MEMBERSHIP,
            "rare_set_share": RARE_SET_SHARE,
            "min_indicator_coverage": MIN_INDICATOR_COVERAGE,
            "rows": self.rows,
            "warnings": self.warnings,
        }

    def table(self) -> str:
        """One line per set (and per indicator: ``(any)``), one column per symbol."""
        return coverage_table(self.rows)


def coverage_table(rows: list[dict[str, Any]]) -> str:
    """Text table of coverage rows (as stored in ``fuzzy_coverage.rows``)."""
    if not rows:
        return "fuzzy set coverage: no indicator with fuzzy sets"
    symbols = list(dict.fromkeys(row["symbol"] for row in rows))
    shares: dict[tuple[str, str], dict[str, float]] = {}
    for row in rows:
        label = f"{row['timeframe']} {row['indicator']}" if row["several_tf"] else row["indicator"]
        shares.setdefault((label, row["set"]), {})[row["symbol"]] = row["active_share"]
    width = max(len(label) + len(name) for label, name in shares) + 3
    lines = [
        f"fuzzy set coverage (share of bars where membership > {ACTIVE_MEMBERSHIP:g}; "
        f"warning below {RARE_SET_SHARE:.0%} per set, {MIN_INDICATOR_COVERAGE:.0%} per indicator):",
        "  " + "indicator.set".ljust(width) + "".join(f"{s:>10}" for s in symbols),
    ]
    for (label, name), per_symbol in shares.items():
        cells = "".join(
            f"{per_symbol[s]:>10.1%}" if s in per_symbol else f"{'-':>10}" for s in symbols
        )
        lines.append("  " + f"{label}.{name}".ljust(width) + cells)
    return "\n".join(lines)


def _share(mask: np.ndarray, bars: int) -> float:
    return float(mask.sum()) / bars if bars else 0.0


def fuzzy_coverage(
    config: Any, indicators: Mapping[str, Mapping[str, Mapping[str, pd.Series]]]
) -> CoverageReport:
    """Coverage of ``config``'s fuzzy sets on indicator values (symbol -> tf -> id -> series)."""
    report = CoverageReport()
    several_tf = len(config.training_data.timeframes.resolved()) > 1
    for symbol, per_tf in indicators.items():
        for tf, series_by_id in per_tf.items():
            for ind in config.active_indicators:
                raw = series_by_id[ind.id].to_numpy(dtype="float64", na_value=np.nan)
                values = raw[~np.isnan(raw)]
                bars = len(values)
                where = f"{symbol} {tf}"
                name = f"{tf} {ind.id}" if several_tf else ind.id
                covered = np.zeros(bars, dtype=bool)
                base = {"symbol": symbol, "timeframe": tf, "indicator": ind.id, "bars": bars}
                base["several_tf"] = several_tf
                for set_name, fuzzy_set in config.fuzzy_sets[ind.id].items():
                    active = membership(fuzzy_set.type, fuzzy_set.parameters, values) > (
                        ACTIVE_MEMBERSHIP
                    )
                    covered |= active
                    share = _share(active, bars)
                    report.rows.append({**base, "set": set_name, "active_share": share})
                    if bars and share < RARE_SET_SHARE:
                        report.warnings.append(
                            f"fuzzy set {name}.{set_name} is active on {share:.2%} of {where} "
                            f"bars (< {RARE_SET_SHARE:.0%}): {_hint(ind, fuzzy_set, values)}"
                        )
                share = _share(covered, bars)
                report.rows.append({**base, "set": _ANY, "active_share": share})
                if bars and share < MIN_INDICATOR_COVERAGE:
                    report.warnings.append(
                        f"the fuzzy sets of {name} leave {1 - share:.1%} of {where} bars "
                        f"uncovered (covered {share:.1%} < {MIN_INDICATOR_COVERAGE:.0%}); "
                        f"{_range(values)}"
                    )
    return report


def _range(values: np.ndarray) -> str:
    low, mid, high = np.percentile(values, [5, 50, 95])
    return f"the series runs {low:.4g} .. {high:.4g} (5th..95th percentile, median {mid:.4g})"


def _hint(ind: Any, fuzzy_set: Any, values: np.ndarray) -> str:
    params = ", ".join(f"{p:g}" for p in fuzzy_set.parameters)
    text = f"check [{params}] against the series' units and range; {_range(values)}"
    if ind.name.lower() in ("sma", "ema"):
        units = ind.params.get("units", "ratio")
        text += (
            f" (units: {units}; {ind.name} gives close / MA around 1.0 by default, "
            "100 * (close - MA) / MA around 0 with `units: percent`)"
        )
    return text


__all__ = [
    "ACTIVE_MEMBERSHIP",
    "MIN_INDICATOR_COVERAGE",
    "RARE_SET_SHARE",
    "CoverageReport",
    "coverage_table",
    "fuzzy_coverage",
]
