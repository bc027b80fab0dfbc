"""Step 6: one calendar split for every symbol, with unconfirmed labels excluded and a purge.

The boundaries are timestamps shared by all symbols, so no symbol's test rows predate another
symbol's training rows: ``validation_start`` and ``test_start`` are given as dates in
``training.data_split``, or derived from the ratios over the union of every symbol's bar
times (``validation_start`` is the first time after ``train`` of them, ``test_start`` the first
after ``train + validation``). A row belongs to the part its bar time falls in.

Rows used for training and for every metric are only those whose label is confirmed (see
:func:`ktrdr.labels.zigzag_label_horizon`). At each boundary:

- **purge**: a row whose label depends on a price at or after the next part's start (its
  ``known_at`` >= the boundary) is dropped, so no label of a part uses prices of the next one.
  ZigZag's label horizon varies per row (up to the bar that confirms the end of its swing), so
  the purge is exact per row rather than a fixed number of bars;
- **embargo**: ``embargo_bars`` further rows (per symbol) after each boundary are dropped too
  (default 0), for features that average over past bars.

The test *period* (every row at or after ``test_start``, confirmed or not) is what the trading
metrics trade; only its confirmed, unpurged rows are scored for accuracy. The validation
*period* (every row from ``validation_start`` to ``test_start``) is traded the same way, so a
sweep can select on, and judge, trading results that are not the test period's.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date
from typing import Any

import numpy as np
import pandas as pd

from ktrdr.config.strategy import DataSplitConfig
from ktrdr.errors import DataError
from ktrdr.training.dataset import Dataset

PARTS = ("train", "validation", "test")


@dataclass(frozen=True)
class Split:
    """Row indices into a ``Dataset`` for each part (usable rows), and what was left out."""

    train: np.ndarray
    validation: np.ndarray
    test: np.ndarray
    test_period: np.ndarray = field(default_factory=lambda: np.empty(0, np.int64))
    validation_period: np.ndarray = field(default_factory=lambda: np.empty(0, np.int64))
    info: dict[str, Any] = field(default_factory=dict)  # boundaries and row counts (metadata)


def _utc(value: date) -> np.datetime64:
    return np.datetime64(pd.Timestamp(value).normalize().to_datetime64(), "ns")


def split_boundaries(dataset: Dataset, split: DataSplitConfig) -> tuple[np.datetime64, ...]:
    """``(validation_start, test_start)`` as UTC ``datetime64[ns]``."""
    if split.test_start is not None:
        test_start = _utc(split.test_start)
        val_start = _utc(split.validation_start) if split.validation_start else test_start
        return val_start, test_start
    times = np.unique(dataset.timestamps)
    n = len(times)
    n_train = int(np.floor(n * split.train))
    n_val = int(np.floor(n * split.validation))
    if n_train < 1 or n_train + n_val >= n:
        raise DataError(
            f"{n} bar times are too few for the split train={split.train} "
            f"validation={split.validation} test={split.test}"
        )
    return times[n_train], times[n_train + n_val]


@dataclass(frozen=True)
class Parts:
    """Each row's part (0 train, 1 validation, 2 test, -1 outside the window) and why a row
    of its part is left out."""

    part: np.ndarray
    crosses: np.ndarray  # the label needs a price at or after the next part's start (purged)
    embargoed: np.ndarray

    def usable(self, dataset: Dataset) -> np.ndarray:
        return dataset.confirmed & ~self.crosses & ~self.embargoed & (self.part >= 0)


def partition(
    dataset: Dataset,
    val_start: np.datetime64,
    test_start: np.datetime64,
    embargo_bars: int,
    *,
    start: np.datetime64 | None = None,
    end: np.datetime64 | None = None,
) -> Parts:
    """Rows in ``[start, val_start)`` train, ``[val_start, test_start)`` validation,
    ``[test_start, end)`` test (an open end when ``start``/``end`` is None), with the purge at
    both boundaries and the embargo after them."""
    ts, known = dataset.timestamps, dataset.known_at
    part = np.where(ts >= test_start, 2, np.where(ts >= val_start, 1, 0))
    if start is not None:
        part = np.where(ts < start, -1, part)
    if end is not None:
        part = np.where(ts >= end, -1, part)
    # The start of the part after each row's part (the test part has none: nothing follows).
    next_start = np.where(part == 0, val_start, test_start)
    if val_start == test_start:
        next_start = np.full(len(ts), test_start)
    crosses = (part >= 0) & (part < 2) & ~np.isnat(known) & (known >= next_start)
    embargoed = np.zeros(len(ts), dtype=bool)
    if embargo_bars > 0:
        for i in range(len(dataset.symbols)):
            own = np.flatnonzero(dataset.symbol_idx == i)
            for boundary in {val_start, test_start}:
                after = own[ts[own] >= boundary][:embargo_bars]
                embargoed[after] = True
    return Parts(part, crosses, embargoed)


def chronological_split(dataset: Dataset, split: DataSplitConfig) -> Split:
    """Step 6: the calendar split, with unconfirmed rows excluded and the purge/embargo."""
    val_start, test_start = split_boundaries(dataset, split)
    parts = partition(dataset, val_start, test_start, split.embargo_bars)
    part, crosses, embargoed = parts.part, parts.crosses, parts.embargoed
    usable = parts.usable(dataset)
    rows = {name: np.flatnonzero(usable & (part == k)) for k, name in enumerate(PARTS)}
    if (
        len(rows["train"]) < 1
        or len(rows["test"]) < 1
        or (split.validation > 0 and split.test_start is None and len(rows["validation"]) < 1)
    ):
        counts = ", ".join(f"{name} {len(r)}" for name, r in rows.items())
        per_symbol = ", ".join(
            f"{symbol} {int((dataset.symbol_idx == i).sum())} rows "
            f"({int((dataset.confirmed & (dataset.symbol_idx == i)).sum())} with confirmed labels)"
            for i, symbol in enumerate(dataset.symbols)
        )
        raise DataError(
            f"too few usable rows after excluding unconfirmed labels and purging ({counts}; "
            f"{per_symbol}); widen the date range or change the split"
        )
    info = {
        "boundaries": {
            "validation_start": _iso(val_start),
            "test_start": _iso(test_start),
            "given_as_dates": split.test_start is not None,
        },
        "embargo_bars": split.embargo_bars,
        "rows": {name: len(r) for name, r in rows.items()},
        "excluded": {
            "unconfirmed_labels": int((~dataset.confirmed).sum()),
            "purged": int((crosses & dataset.confirmed).sum()),
            "embargoed": int((embargoed & dataset.confirmed & ~crosses).sum()),
        },
        "per_symbol": {
            symbol: {
                **{name: int((dataset.symbol_idx[r] == i).sum()) for name, r in rows.items()},
                "unconfirmed": int(((dataset.symbol_idx == i) & ~dataset.confirmed).sum()),
                "purged": int(((dataset.symbol_idx == i) & crosses & dataset.confirmed).sum()),
            }
            for i, symbol in enumerate(dataset.symbols)
        },
    }
    return Split(
        rows["train"],
        rows["validation"],
        rows["test"],
        test_period=np.flatnonzero(part == 2),
        validation_period=np.flatnonzero(part == 1),
        info=info,
    )


def _iso(value: np.datetime64) -> str:
    return pd.Timestamp(value).tz_localize("UTC").isoformat()


__all__ = ["PARTS", "Parts", "Split", "chronological_split", "partition", "split_boundaries"]
