"""Training labels: ZigZag segments as BUY (0), HOLD (1), SELL (2).

The classes import without pandas (``ktrdr.labels.classes``); the ZigZag functions load
``ktrdr.labels.zigzag`` (pandas) when first used, so code that only names the classes (the
trading metrics, the services, collecting the tests) does not pay for it.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from ktrdr.labels.classes import BUY, CLASS_NAMES, HOLD, SELL

if TYPE_CHECKING:
    from ktrdr.labels.zigzag import (
        zigzag_extremes,
        zigzag_extremes_confirmed,
        zigzag_label_horizon,
        zigzag_labels,
    )

_ZIGZAG = {
    "zigzag_extremes",
    "zigzag_extremes_confirmed",
    "zigzag_label_horizon",
    "zigzag_labels",
}


def __getattr__(name: str) -> Any:
    if name in _ZIGZAG:
        from ktrdr.labels import zigzag

        return getattr(zigzag, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


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
