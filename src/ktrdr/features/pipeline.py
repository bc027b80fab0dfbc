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
from collections.abc import Mapping
from dataclasses import dataclass

import numpy as np
import pandas as pd

from ktrdr.config.strategy import StrategyConfig
from ktrdr.data import align_to_base
from ktrdr.fuzzy import fuzzify
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
    """Step 3: fuzzy memberships of every set of every indicator."""
    prefixes = timeframe_prefixes(config)
    out: Memberships = {}
    for symbol, per_tf in indicators.items():
        out[symbol] = {}
        for tf, series_by_id in per_tf.items():
            parts = [
                fuzzify(series_by_id[ind.id], config.fuzzy_sets[ind.id], f"{prefixes[tf]}{ind.id}")
                for ind in config.active_indicators
            ]
            out[symbol][tf] = pd.concat(parts, axis=1)
    return out


def price_context(ohlcv: pd.DataFrame) -> pd.DataFrame:
    """Scale-free price features on the base timeframe (only past and current bars)."""
    close = ohlcv["close"]
    high, low, volume = ohlcv["high"], ohlcv["low"], ohlcv["volume"]
    sma20 = close.rolling(20).mean()
    bar_range = (high - low).replace(0.0, np.nan)
    vol_mean = volume.rolling(20).mean().replace(0.0, np.nan)
    frame = pd.DataFrame(
        {
            "price_return_1": close.pct_change(1) * 100.0,
            "price_return_5": close.pct_change(5) * 100.0,
            "price_return_20": close.pct_change(20) * 100.0,
            "price_dist_sma20": (close - sma20) / sma20 * 100.0,
            "price_range_pct": (high - low) / close * 100.0,
            "price_close_position": ((close - low) / bar_range).fillna(0.5),
            "price_volume_ratio": np.log1p(volume / vol_mean).fillna(np.log(2.0)),
        },
        index=ohlcv.index,
    )
    return frame[list(PRICE_CONTEXT_FEATURES)]


def assemble_features(
    config: StrategyConfig, memberships: Memberships, data: MarketData
) -> dict[str, SymbolFeatures]:
    """Step 4: align timeframes to the base, add lags and price context, drop warm-up rows."""
    tds = config.training_data.timeframes
    base_tf = tds.base()
    features_cfg = config.model.features
    out: dict[str, SymbolFeatures] = {}
    for symbol, per_tf in memberships.items():
        base_index = data[symbol][base_tf].index
        parts = [per_tf[base_tf]]
        for tf in tds.resolved():
            if tf == base_tf:
                continue
            parts.append(align_to_base(per_tf[tf], tf, base_index, base_tf))
        members = pd.concat(parts, axis=1)
        columns = [members]
        lags = features_cfg.lookback_periods
        if lags > 0:
            lagged = {
                f"{name}_lag{k}": members[name].shift(k)
                for k in range(1, lags + 1)
                for name in members.columns
            }
            columns.append(pd.DataFrame(lagged, index=members.index))
        if features_cfg.include_price_context:
            columns.append(price_context(data[symbol][base_tf]))
        frame = pd.concat(columns, axis=1)
        valid = frame.notna().all(axis=1).to_numpy()
        kept = frame.loc[valid]
        dropped = int((~valid).sum())
        logger.debug(
            "features %s: %d columns, %d rows kept, %d dropped",
            symbol,
            frame.shape[1],
            len(kept),
            dropped,
        )
        out[symbol] = SymbolFeatures(symbol, kept.astype(np.float32), dropped)
    return out


def build_symbol_features(config: StrategyConfig, data: MarketData) -> dict[str, SymbolFeatures]:
    """Steps 2-4 in one call (used by prediction)."""
    indicators = compute_indicators(config, data)
    return assemble_features(config, compute_memberships(config, indicators), data)
