"""Tables and values as the CLI prints them: numbers with a few significant digits, and
columns cut to the terminal's width.

Values of a sweep's parameters arrive as text (``0.0012345678901234567``); ``short_value``
shows a float with 4 significant digits (``0.001235``), leaving integers, names and lists as
they are. ``fit`` shrinks the widest columns (cut with ``…``) until a table fits ``width``;
JSON output keeps every value whole.
"""

from __future__ import annotations

import math
import os
import shutil
from collections.abc import Sequence
from typing import Any

MIN_COLUMN = 10  # a column is never cut narrower than this (nor than its header)
ELLIPSIS = "…"


def short_value(value: Any) -> str:
    """A parameter or metric for a table: floats with 4 significant digits."""
    if isinstance(value, bool):
        return str(value)
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float):
        return _float(value)
    text = str(value)
    if text.isdigit() or not any(c.isdigit() for c in text):
        return text
    try:
        number = float(text)
    except ValueError:
        return text
    return _float(number)


def _float(value: float) -> str:
    if not math.isfinite(value):
        return str(value)
    if value.is_integer() and abs(value) < 1e15:
        return str(int(value))
    return f"{value:.4g}"


def short_labels(paths: Sequence[str]) -> list[str]:
    """Each path by its shortest ending that no other path shares: ``learning_rate`` for
    ``model.training.learning_rate``, unless another path ends the same way."""
    parts = [p.split(".") for p in paths]
    out = []
    for mine in parts:
        for n in range(1, len(mine) + 1):
            tail = mine[-n:]
            if sum(other[-n:] == tail for other in parts) == 1:
                break
        out.append(".".join(tail))
    return out


def terminal_width(default: int = 160) -> int:
    """The terminal's columns ($COLUMNS first); ``default`` when there is no terminal."""
    if os.environ.get("COLUMNS", "").isdigit():
        return int(os.environ["COLUMNS"])
    return shutil.get_terminal_size((default, 40)).columns


def _cut(text: str, width: int) -> str:
    return text if len(text) <= width else text[: max(width - 1, 0)] + ELLIPSIS


def fit(
    headers: Sequence[str], rows: Sequence[Sequence[Any]], width: int | None = None
) -> list[str]:
    """The table as lines (two spaces between columns), at most ``width`` wide when given:
    the widest columns are cut first (never below ``MIN_COLUMN`` or their header); columns
    that still do not fit are left out from the right (``--json`` has everything)."""
    cells = [[str(c) for c in row] for row in [headers, *rows]]
    widths = [max(len(r[i]) for r in cells) for i in range(len(headers))]

    def total() -> int:
        return sum(widths) + 2 * (len(widths) - 1)

    if width is not None:
        floor = [min(w, max(MIN_COLUMN, len(h))) for w, h in zip(widths, headers, strict=True)]
        while total() > width:
            i = max(range(len(widths)), key=lambda k: widths[k] - floor[k])
            if widths[i] <= floor[i]:
                break
            widths[i] -= 1
        while total() > width and len(widths) > 1:
            widths.pop()
    return [
        "  ".join(_cut(c, w).ljust(w) for c, w in zip(row, widths, strict=False)).rstrip()
        for row in cells
    ]


__all__ = ["fit", "short_labels", "short_value", "terminal_width"]
