"""Walk-forward folds: where each fold's train, validation and test periods lie.

The folds cover the *development* period, every bar time before the test split's
``test_start`` (see :mod:`ktrdr.training.split`); the test split itself is never a fold's test,
so a walk-forward aggregate can be selected on without touching the numbers the final model's
test period reports. Bars are the distinct base bar times of every symbol (as the split counts
them), ``n`` of them before ``test_start``:

- the folds' tests are ``folds`` consecutive blocks of ``test_bars`` bars that end at
  ``test_start`` (default ``test_bars``: ``n // (folds + 1)``, so the first fold trains on at
  least as many bars as one test has);
- ``expanding``: each fold trains on every bar before its test; ``rolling``: on the
  ``train_bars`` bars before it (default: as many as the first fold has);
- the last ``validation / (train + validation)`` of each fold's training window (the strategy's
  ``data_split`` ratios) is its validation part, for early stopping, as in the single split.

Rows are then assigned as the single split assigns them (:func:`ktrdr.training.split.partition`):
a row whose label needs a price of the next part is purged, exactly, and ``embargo_bars`` rows
per symbol after each boundary are dropped too.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from ktrdr.config.strategy import DataSplitConfig, WalkForwardConfig
from ktrdr.errors import DataError
from ktrdr.training.dataset import Dataset
from ktrdr.training.split import PARTS, Split, _iso, partition, split_boundaries


@dataclass(frozen=True)
class FoldBounds:
    """One fold as positions in the development period's bar times (ends exclusive)."""

    number: int  # 1-based
    train_start: int
    validation_start: int  # == test_start when the fold has no validation part
    test_start: int
    test_end: int


def fold_bounds(n_bars: int, wf: WalkForwardConfig, validation_share: float) -> list[FoldBounds]:
    """The folds over ``n_bars`` bar times; DataError naming the numbers when they do not fit.

    ``validation_share`` is the part of each training window kept for validation (0: none).
    """
    folds = wf.folds
    test_bars = wf.test_bars if wf.test_bars is not None else max(1, n_bars // (folds + 1))
    first_test = n_bars - folds * test_bars
    # a fold trains on at least 2 bars (1 when part of them is validation would leave none)
    min_train = wf.train_bars if wf.train_bars is not None else 2
    if first_test < min_train:
        training = f"{min_train}" if wf.train_bars is not None else f"at least {min_train}"
        raise DataError(
            f"walk-forward with {folds} folds of {test_bars} test bars and {training} training "
            f"bars needs {folds * test_bars + min_train} bar times before the test split; "
            f"there are {n_bars}. Use fewer folds, fewer test_bars or train_bars, or a longer "
            "date range"
        )
    train_bars = wf.train_bars if wf.train_bars is not None else first_test
    out: list[FoldBounds] = []
    for k in range(folds):
        test_start = first_test + k * test_bars
        train_start = 0 if wf.window == "expanding" else test_start - train_bars
        window = test_start - train_start
        val_bars = math.floor(window * validation_share)
        if window - val_bars < 1:
            val_bars = window - 1
        out.append(
            FoldBounds(
                k + 1, train_start, test_start - val_bars, test_start, test_start + test_bars
            )
        )
    return out


def validation_share(split: DataSplitConfig) -> float:
    """The share of a fold's training window kept for validation: the split's own ratio."""
    return split.validation / (split.train + split.validation)


def fold_splits(dataset: Dataset, split: DataSplitConfig, wf: WalkForwardConfig) -> list[Split]:
    """One :class:`Split` per fold (its ``test_period``: every row of the fold's test)."""
    _, test_start = split_boundaries(dataset, split)
    times = np.unique(dataset.timestamps)
    times = times[times < test_start]
    bounds = fold_bounds(len(times), wf, validation_share(split))
    splits = []
    for b in bounds:
        end = times[b.test_end] if b.test_end < len(times) else test_start
        parts = partition(
            dataset,
            times[b.validation_start] if b.validation_start < b.test_start else times[b.test_start],
            times[b.test_start],
            wf.embargo_bars,
            start=times[b.train_start],
            end=end,
        )
        usable = parts.usable(dataset)
        rows = {name: np.flatnonzero(usable & (parts.part == k)) for k, name in enumerate(PARTS)}
        if len(rows["train"]) < 1 or len(rows["test"]) < 1:
            counts = ", ".join(f"{name} {len(r)}" for name, r in rows.items())
            raise DataError(
                f"walk-forward fold {b.number}/{len(bounds)} has too few usable rows after "
                f"excluding unconfirmed labels, the purge and the embargo ({counts}); use fewer "
                "folds, more test_bars, or a longer date range"
            )
        info = {
            "fold": b.number,
            "bars": {
                "train": b.validation_start - b.train_start,
                "validation": b.test_start - b.validation_start,
                "test": b.test_end - b.test_start,
            },
            "boundaries": {
                "train_start": _iso(times[b.train_start]),
                "validation_start": _iso(times[b.validation_start])
                if b.validation_start < b.test_start
                else None,
                "test_start": _iso(times[b.test_start]),
                "test_end": _iso(times[b.test_end - 1]),  # the last bar time in the test
            },
            "rows": {name: len(r) for name, r in rows.items()},
            "excluded": {
                "purged": int((parts.crosses & dataset.confirmed).sum()),
                "embargoed": int(
                    (parts.embargoed & dataset.confirmed & ~parts.crosses & (parts.part >= 0)).sum()
                ),
            },
        }
        splits.append(
            Split(
                rows["train"],
                rows["validation"],
                rows["test"],
                test_period=np.flatnonzero(parts.part == 2),
                validation_period=np.flatnonzero(parts.part == 1),
                info=info,
            )
        )
    return splits


__all__ = ["FoldBounds", "fold_bounds", "fold_splits", "validation_share"]
