"""Which part of a model's training data new bars fall in, so a reader of its signals knows
which of them are in-sample.

Only the train part is in-sample: the model's weights were fit on it. The validation part was
not fit on, but it chose the epoch that was kept (early stopping) and so is not a clean
out-of-sample either; it is named as such. The test period, and bars before or after the
training data, are out-of-sample. The boundaries are the recorded ones (``split.boundaries``
and ``data[symbol][timeframe]`` in ``metadata.json``), compared by calendar time; rows the
split purged or embargoed near a boundary are not told apart.

Pure pandas: no PyTorch, so the CLI and tests can use it without loading a model.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import pandas as pd


def sample_periods_line(
    index: pd.DatetimeIndex, metadata: Mapping[str, Any], symbol: str, timeframe: str
) -> str | None:
    """One line counting the bars of ``index`` per part of the training data, or ``None``
    when the model records no data period for ``symbol`` / ``timeframe``."""
    span = metadata.get("data", {}).get(symbol.upper(), {}).get(timeframe)
    if not span:
        return None
    first, last = pd.Timestamp(span["first"]), pd.Timestamp(span["last"])
    total = len(index)
    bounds = metadata.get("split", {}).get("boundaries") or {}
    if not bounds.get("validation_start") or not bounds.get("test_start"):
        inside = int(((index >= first) & (index <= last)).sum())
        return (
            f"{inside} of {total} bars fall inside the training data's period "
            f"({first:%Y-%m-%d} .. {last:%Y-%m-%d}); the model records no split, so its "
            "train, validation and test parts cannot be told apart"
        )
    val_start = pd.Timestamp(bounds["validation_start"])
    test_start = pd.Timestamp(bounds["test_start"])
    parts = [
        (index < first, f"out-of-sample (before the training data, which starts {first:%Y-%m-%d})"),
        (
            (index >= first) & (index < val_start),
            f"in-sample (the train part the model was fit on, {first:%Y-%m-%d} .. "
            f"{val_start:%Y-%m-%d})",
        ),
        (
            (index >= val_start) & (index < test_start),
            "in the validation period (not fit on, but it chose the kept epoch: not a clean "
            "out-of-sample)",
        ),
        (
            (index >= test_start) & (index <= last),
            f"out-of-sample (test period, {test_start:%Y-%m-%d} .. {last:%Y-%m-%d})",
        ),
        (index > last, "out-of-sample (after the training data)"),
    ]
    counted = [f"{int(mask.sum())} {label}" for mask, label in parts if mask.any()]
    return f"{total} bars: " + "; ".join(counted or ["none"])


__all__ = ["sample_periods_line"]
