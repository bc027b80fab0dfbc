"""Labels, the chronological split and feature scaling (steps 5 and 6).

Rows of all symbols are stacked symbol by symbol, each symbol's rows in time order. The split
is taken per symbol in time order (train, then validation, then test), so test rows are always
the latest bars of each symbol and nothing is shuffled before the split.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

import numpy as np
import pandas as pd

from ktrdr.config.strategy import DataSplitConfig, StrategyConfig
from ktrdr.errors import DataError
from ktrdr.features import SymbolFeatures
from ktrdr.labels import zigzag_labels


@dataclass(frozen=True)
class Dataset:
    """The stacked training table of every symbol."""

    x: np.ndarray  # float32 (rows, features), unscaled
    y: np.ndarray  # int64 (rows,) BUY=0 HOLD=1 SELL=2
    symbol_idx: np.ndarray  # int64 (rows,) index into ``symbols``
    timestamps: np.ndarray  # datetime64[ns] (rows,) base bar open times (UTC)
    feature_names: list[str]
    symbols: list[str]

    def __len__(self) -> int:
        return int(self.y.shape[0])


@dataclass(frozen=True)
class Split:
    """Row indices into a ``Dataset`` for each part, each in time order per symbol."""

    train: np.ndarray
    validation: np.ndarray
    test: np.ndarray


def compute_labels(
    config: StrategyConfig,
    data: Mapping[str, Mapping[str, pd.DataFrame]],
    features: Mapping[str, SymbolFeatures],
) -> dict[str, np.ndarray]:
    """Step 5: ZigZag labels on each symbol's full base series, taken at the feature rows."""
    base_tf = config.training_data.timeframes.base()
    labels_cfg = config.training.labels
    out: dict[str, np.ndarray] = {}
    for symbol, feats in features.items():
        close = data[symbol][base_tf]["close"]
        full = zigzag_labels(
            close.to_numpy(dtype=np.float64),
            labels_cfg.zigzag_threshold,
            labels_cfg.label_lookahead,
        )
        positions = close.index.get_indexer(feats.frame.index)
        out[symbol] = np.asarray(full, dtype=np.int64)[positions]
    return out


def build_dataset(
    symbols: list[str],
    features: Mapping[str, SymbolFeatures],
    labels: Mapping[str, np.ndarray],
) -> Dataset:
    """Stack symbols in the given order; every symbol must have the same feature columns."""
    names = list(features[symbols[0]].frame.columns)
    xs, ys, idx, ts = [], [], [], []
    for i, symbol in enumerate(symbols):
        frame = features[symbol].frame
        if list(frame.columns) != names:
            raise DataError(f"{symbol}: feature columns differ from {symbols[0]}'s")
        xs.append(frame.to_numpy(dtype=np.float32))
        ys.append(labels[symbol])
        idx.append(np.full(len(frame), i, dtype=np.int64))
        ts.append(frame.index.tz_convert("UTC").tz_localize(None).to_numpy(dtype="datetime64[ns]"))
    return Dataset(
        x=np.concatenate(xs) if xs else np.empty((0, len(names)), np.float32),
        y=np.concatenate(ys).astype(np.int64),
        symbol_idx=np.concatenate(idx),
        timestamps=np.concatenate(ts),
        feature_names=names,
        symbols=list(symbols),
    )


def split_counts(n: int, split: DataSplitConfig) -> tuple[int, int, int]:
    """Rows for train, validation and test out of ``n`` (test takes the rounding rest)."""
    n_train = int(np.floor(n * split.train))
    n_val = int(np.floor(n * split.validation))
    return n_train, n_val, n - n_train - n_val


def chronological_split(dataset: Dataset, split: DataSplitConfig) -> Split:
    """Step 6: per symbol, the first rows train, the next validate, the last test."""
    parts: dict[str, list[np.ndarray]] = {"train": [], "validation": [], "test": []}
    for i, symbol in enumerate(dataset.symbols):
        rows = np.flatnonzero(dataset.symbol_idx == i)
        n_train, n_val, n_test = split_counts(len(rows), split)
        if n_train < 1 or n_test < 1 or (split.validation > 0 and n_val < 1):
            raise DataError(
                f"{symbol}: {len(rows)} usable rows are too few for the split "
                f"train={split.train} validation={split.validation} test={split.test}"
            )
        parts["train"].append(rows[:n_train])
        parts["validation"].append(rows[n_train : n_train + n_val])
        parts["test"].append(rows[n_train + n_val :])
    return Split(*(np.concatenate(parts[k]) for k in ("train", "validation", "test")))


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
