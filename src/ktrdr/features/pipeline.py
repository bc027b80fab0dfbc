"""From OHLCV bars to the feature matrix: indicators -> fuzzy memberships -> features.

The same functions serve training (the executor runs them stage by stage, one progress step
each) and prediction (``build_symbol_features`` runs them all), so a stored model always sees
features built exactly the way it was trained on.

Feature names and order:
    1. memberships, per timeframe in resolved order (base first), per indicator in YAML order,
       per fuzzy set in YAML order: ``{indicator_id}_{set}``, prefixed ``{timeframe}_`` once
       when the strategy has several timeframes;
    2. lags of every membership for k = 1..lookback_periods: ``{name}_lag{k}``;
    3. price context (base timeframe) when ``include_price_context``: ``price_*``.
Rows where any feature is NaN (indicator warm-up, lags, higher timeframes not yet closed) are
dropped, never zero-filled.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator, Mapping
from dataclasses import dataclass

import numpy as np
import pandas as pd

from ktrdr.config.strategy import StrategyConfig
from ktrdr.data import align_to_base
from ktrdr.fuzzy import fuzzify_into
from ktrdr.indicators import compute_indicator

logger = logging.getLogger(__name__)

# symbol -> timeframe -> OHLCV frame
MarketData = Mapping[str, Mapping[str, pd.DataFrame]]
# symbol -> timeframe -> indicator id -> series
IndicatorValues = dict[str, dict[str, dict[str, pd.Series]]]
# symbol -> timeframe -> membership frame
Memberships = dict[str, dict[str, pd.DataFrame]]

PRICE_CONTEXT_FEATURES: tuple[str, ...] = (
    "price_return_1",
    "price_return_5",
    "price_return_20",
    "price_dist_sma20",
    "price_range_pct",
    "price_close_position",
    "price_volume_ratio",
)


@dataclass(frozen=True)
class SymbolFeatures:
    """Features of one symbol on its base timeframe, warm-up rows removed."""

    symbol: str
    frame: pd.DataFrame  # index: base bar open times; columns: feature names in order
    dropped_warmup_rows: int


def timeframe_prefixes(config: StrategyConfig) -> dict[str, str]:
    """Prefix per timeframe: empty with a single timeframe, ``{tf}_`` with several."""
    timeframes = config.training_data.timeframes.resolved()
    if len(timeframes) == 1:
        return {timeframes[0]: ""}
    return {tf: f"{tf}_" for tf in timeframes}


def compute_indicators(config: StrategyConfig, data: MarketData) -> IndicatorValues:
    """Step 2: every declared indicator on every timeframe of every symbol."""
    out: IndicatorValues = {}
    for symbol, frames in data.items():
        out[symbol] = {}
        for tf, ohlcv in frames.items():
            out[symbol][tf] = {
                ind.id: compute_indicator(ind, ohlcv) for ind in config.active_indicators
            }
            logger.debug("indicators %s %s: %d series", symbol, tf, len(config.active_indicators))
    return out


def compute_memberships(config: StrategyConfig, indicators: IndicatorValues) -> Memberships:
    """Step 3: fuzzy memberships of every set of every indicator.

    One float64 block per symbol and timeframe, filled column by column (no frame per set,
    no concatenation).
    """
    prefixes = timeframe_prefixes(config)
    out: Memberships = {}
    for symbol, per_tf in indicators.items():
        out[symbol] = {}
        for tf, series_by_id in per_tf.items():
            sets = [(ind.id, config.fuzzy_sets[ind.id]) for ind in config.active_indicators]
            names = [f"{prefixes[tf]}{ind_id}_{name}" for ind_id, fs in sets for name in fs]
            index = next(iter(series_by_id.values())).index if series_by_id else pd.RangeIndex(0)
            block = np.empty((len(index), len(names)), dtype=np.float64, order="F")
            j = 0
            for ind_id, fuzzy_sets in sets:
                raw = series_by_id[ind_id].to_numpy(dtype=np.float64, na_value=np.nan)
                fuzzify_into(block[:, j : j + len(fuzzy_sets)], raw, fuzzy_sets)
                j += len(fuzzy_sets)
            out[symbol][tf] = pd.DataFrame(block, index=index, columns=names, copy=False)
    return out


def _pct_change(values: np.ndarray, periods: int) -> np.ndarray:
    """100 * (values[t] / values[t - periods] - 1), NaN for the first ``periods`` rows."""
    out = np.full_like(values, np.nan)
    if periods < len(values):
        with np.errstate(divide="ignore", invalid="ignore"):
            np.divide(values[periods:], values[:-periods], out=out[periods:])
        out[periods:] -= 1.0
        out[periods:] *= 100.0
    return out


def _price_context_columns(ohlcv: pd.DataFrame) -> Iterator[np.ndarray]:
    """The ``PRICE_CONTEXT_FEATURES`` columns (float64), in order: only past and current bars.

    Plain numpy on the columns, with pandas only for the two 20-bar means (its rolling mean is
    the numerically careful one): no Series per intermediate result.
    """
    close, high, low, volume = (
        ohlcv[name].to_numpy(dtype=np.float64) for name in ("close", "high", "low", "volume")
    )
    for periods in (1, 5, 20):
        yield _pct_change(close, periods)
    sma20 = ohlcv["close"].rolling(20).mean().to_numpy(dtype=np.float64)
    span = high - low
    with np.errstate(divide="ignore", invalid="ignore"):
        yield (close - sma20) / sma20 * 100.0
        yield span / close * 100.0
        position = (close - low) / np.where(span == 0.0, np.nan, span)
    position[np.isnan(position)] = 0.5
    yield position
    vol_mean = ohlcv["volume"].rolling(20).mean().to_numpy(dtype=np.float64)
    with np.errstate(divide="ignore", invalid="ignore"):
        ratio = np.log1p(volume / np.where(vol_mean == 0.0, np.nan, vol_mean))
    ratio[np.isnan(ratio)] = np.log(2.0)
    yield ratio


def price_context(ohlcv: pd.DataFrame) -> pd.DataFrame:
    """Scale-free price features on the base timeframe (only past and current bars)."""
    columns = dict(zip(PRICE_CONTEXT_FEATURES, _price_context_columns(ohlcv), strict=True))
    return pd.DataFrame(columns, index=ohlcv.index)


def _kept_rows(valid: np.ndarray) -> slice | np.ndarray:
    """Rows to keep: a slice when they are one block at the end (the usual warm-up), else a mask."""
    first = int(np.argmax(valid)) if valid.any() else len(valid)
    if valid[first:].all():
        return slice(first, None)
    return valid


def assemble_features(
    config: StrategyConfig, memberships: Memberships, data: MarketData
) -> dict[str, SymbolFeatures]:
    """Step 4: align timeframes to the base, add lags and price context, drop warm-up rows.

    Every column is written once into one preallocated float32 matrix (column-major, so each
    write is contiguous); which rows hold a NaN is tracked per source column, lags inherit it
    shifted, and the kept rows are a view when they are one block.
    """
    tds = config.training_data.timeframes
    base_tf = tds.base()
    features_cfg = config.model.features
    lags = features_cfg.lookback_periods
    out: dict[str, SymbolFeatures] = {}
    for symbol, per_tf in memberships.items():
        base_index = data[symbol][base_tf].index
        parts = [per_tf[base_tf]] + [
            align_to_base(per_tf[tf], tf, base_index, base_tf)
            for tf in tds.resolved()
            if tf != base_tf
        ]
        member_names = [name for part in parts for name in part.columns]
        names = member_names + [f"{n}_lag{k}" for k in range(1, lags + 1) for n in member_names]
        if features_cfg.include_price_context:
            names += PRICE_CONTEXT_FEATURES
        rows, width = len(base_index), len(member_names)
        matrix = np.empty((rows, len(names)), dtype=np.float32, order="F")
        members_valid = np.ones(rows, dtype=bool)
        j = 0
        for part in parts:
            for column in part.to_numpy(dtype=np.float64).T:
                matrix[:, j] = column
                members_valid &= ~np.isnan(column)
                j += 1
        valid = members_valid.copy()
        for k in range(1, lags + 1):
            block = slice(k * width, (k + 1) * width)
            matrix[k:, block] = matrix[: rows - k, :width]
            matrix[:k, block] = np.nan
            valid[k:] &= members_valid[: rows - k]
            valid[:k] = False
        if features_cfg.include_price_context:
            for i, column in enumerate(_price_context_columns(data[symbol][base_tf])):
                matrix[:, (lags + 1) * width + i] = column
                valid &= ~np.isnan(column)
        keep = _kept_rows(valid)
        frame = pd.DataFrame(
            matrix[keep], index=base_index[keep], columns=pd.Index(names), copy=False
        )
        dropped = rows - len(frame)
        logger.debug(
            "features %s: %d columns, %d rows kept, %d dropped",
            symbol,
            len(names),
            len(frame),
            dropped,
        )
        out[symbol] = SymbolFeatures(symbol, frame, dropped)
    return out


def build_symbol_features(config: StrategyConfig, data: MarketData) -> dict[str, SymbolFeatures]:
    """Steps 2-4 in one call (used by prediction)."""
    indicators = compute_indicators(config, data)
    return assemble_features(config, compute_memberships(config, indicators), data)
