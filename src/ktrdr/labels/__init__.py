"""Training labels: ZigZag segments as BUY (0), HOLD (1), SELL (2)."""

from ktrdr.labels.zigzag import (
    BUY,
    CLASS_NAMES,
    HOLD,
    SELL,
    zigzag_extremes,
    zigzag_extremes_confirmed,
    zigzag_label_horizon,
    zigzag_labels,
)

__all__ = [
    "BUY",
    "CLASS_NAMES",
    "HOLD",
    "SELL",
    "zigzag_extremes",
    "zigzag_extremes_confirmed",
    "zigzag_label_horizon",
    "zigzag_labels",
]
