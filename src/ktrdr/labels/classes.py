"""The three label classes, importable without the libraries that compute labels (pandas)."""

from __future__ import annotations

BUY, HOLD, SELL = 0, 1, 2
CLASS_NAMES: tuple[str, str, str] = ("BUY", "HOLD", "SELL")

__all__ = ["BUY", "CLASS_NAMES", "HOLD", "SELL"]
