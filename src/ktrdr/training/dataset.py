"""Labels and the stacked training table (step 5), and feature scaling (step 6).

Rows of all symbols are stacked symbol by symbol, each symbol's rows in time order. Every row
keeps its label, whether that label is confirmed (ZigZag labels before the first and after the
last extreme only mean "unknown"), the time of the last bar its label depends on, and the
return of the next bar (for the trading metrics). The split is :mod:`ktrdr.training.split`.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

import numpy as np
import pandas as pd

from ktrdr.config.strategy import StrategyConfig
from ktrdr.errors import DataError
from ktrdr.features import SymbolFeatures
from ktrdr.labels import zigzag_label_horizon, zigzag_labels


@dataclass(frozen=True)
class Dataset:
    """The stacked training table of every symbol."""

    x: np.ndarray  # float32 (rows, features), unscaled
    y: np.ndarray  # int64 (rows,) BUY=0 HOLD=1 SELL=2
    symbol_idx: np.ndarray  # int64 (rows,) index into ``symbols``
    timestamps: np.ndarray  # datetime64[ns] (rows,) base bar open times (UTC)
    feature_names: list[str]
    symbols: list[str]
    confirmed: np.ndarray  # bool (rows,) the label is known (not before/after the extremes)
    known_at: np.ndarray  # datetime64[ns] (rows,) open time of the last bar the label needs
    next_return: np.ndarray  # float64 (rows,) close-to-close return of the next bar (0 at end)

    def __len__(self) -> int:
        return int(self.y.shape[0])


@dataclass(frozen=True)
class SymbolLabels:
    """Labels of one symbol's feature rows, with what the split and the metrics need."""

    labels: np.ndarray  # int64
    confirmed: np.ndarray  # bool
    known_at: np.ndarray  # datetime64[ns]; NaT where not confirmed
    next_return: np.ndarray  # float64


def compute_labels(
    config: StrategyConfig,
    data: Mapping[str, Mapping[str, pd.DataFrame]],
    features: Mapping[str, SymbolFeatures],
) -> dict[str, SymbolLabels]:
    """Step 5: ZigZag labels on each symbol's full base series, taken at the feature rows."""
    base_tf = config.training_data.timeframes.base()
    labels_cfg = config.training.labels
    out: dict[str, SymbolLabels] = {}
    for symbol, feats in features.items():
        close = data[symbol][base_tf]["close"]
        prices = close.to_numpy(dtype=np.float64)
        bad = ~(np.isfinite(prices) & (prices > 0))
        if bad.any():
            raise DataError(
                f"{symbol} {base_tf}: close must be finite and > 0; the bar of "
                f"{close.index[int(np.argmax(bad))]} has {prices[int(np.argmax(bad))]!r}"
            )
        args = (prices, labels_cfg.zigzag_threshold, labels_cfg.label_lookahead)
        full = zigzag_labels(*args)
        confirmed, known_at = zigzag_label_horizon(*args)
        times = close.index.tz_convert("UTC").tz_localize(None).to_numpy(dtype="datetime64[ns]")
        known_times = np.where(
            known_at >= 0, times[np.maximum(known_at, 0)], np.datetime64("NaT", "ns")
        )
        next_return = np.zeros_like(prices)
        next_return[:-1] = prices[1:] / prices[:-1] - 1.0
        positions = close.index.get_indexer(feats.frame.index)
        out[symbol] = SymbolLabels(
            labels=np.asarray(full, dtype=np.int64)[positions],
            confirmed=confirmed[positions],
            known_at=known_times[positions],
            next_return=next_return[positions],
        )
    return out


def build_dataset(
    symbols: list[str],
    features: Mapping[str, SymbolFeatures],
    labels: Mapping[str, SymbolLabels],
) -> Dataset:
    """Stack symbols in the given order; every symbol must have the same feature columns."""
    names = list(features[symbols[0]].frame.columns)
    xs, ys, idx, ts = [], [], [], []
    confirmed, known, returns = [], [], []
    for i, symbol in enumerate(symbols):
        frame = features[symbol].frame
        if list(frame.columns) != names:
            raise DataError(f"{symbol}: feature columns differ from {symbols[0]}'s")
        xs.append(frame.to_numpy(dtype=np.float32))
        ys.append(labels[symbol].labels)
        confirmed.append(labels[symbol].confirmed)
        known.append(labels[symbol].known_at)
        returns.append(labels[symbol].next_return)
        idx.append(np.full(len(frame), i, dtype=np.int64))
        ts.append(frame.index.tz_convert("UTC").tz_localize(None).to_numpy(dtype="datetime64[ns]"))
    return Dataset(
        x=np.concatenate(xs) if xs else np.empty((0, len(names)), np.float32),
        y=np.concatenate(ys).astype(np.int64),
        symbol_idx=np.concatenate(idx),
        timestamps=np.concatenate(ts),
        feature_names=names,
        symbols=list(symbols),
        confirmed=np.concatenate(confirmed).astype(bool),
        known_at=np.concatenate(known).astype("datetime64[ns]"),
        next_return=np.concatenate(returns).astype(np.float64),
    )


@dataclass(frozen=True)
class Scaler:
    """Standard scaling fitted on the training rows only; identity when disabled."""

    mean: np.ndarray  # float32 (features,)
    scale: np.ndarray  # float32 (features,)
    enabled: bool

    @classmethod
    def fit(cls, x_train: np.ndarray, enabled: bool) -> Scaler:
        n = x_train.shape[1]
        if not enabled:
            return cls(np.zeros(n, np.float32), np.ones(n, np.float32), False)
        mean = x_train.mean(axis=0, dtype=np.float64)
        std = x_train.std(axis=0, dtype=np.float64)
        std[std < 1e-12] = 1.0  # constant features stay constant instead of dividing by 0
        return cls(mean.astype(np.float32), std.astype(np.float32), True)

    def transform(self, x: np.ndarray) -> np.ndarray:
        if not self.enabled:
            return x.astype(np.float32, copy=False)
        return ((x - self.mean) / self.scale).astype(np.float32)
