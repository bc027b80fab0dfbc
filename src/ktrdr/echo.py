"""Echoing user input in error messages, shortened: no message repeats more than a few
hundred characters of what a request sent (a 6 MiB value or an expanded YAML alias bomb
would otherwise end up in a gRPC status, a log line and a terminal).

``short_repr`` is ``repr`` with ``reprlib`` limits (nested lists and mappings are cut at a
few items and levels, long strings in the middle); ``short_text`` cuts plain text.
"""

from __future__ import annotations

import reprlib
from typing import Any

MAX_ECHO_CHARS = 200  # longest echo of one value in a message

_REPR = reprlib.Repr()
_REPR.maxlevel = 3
_REPR.maxlist = _REPR.maxtuple = _REPR.maxset = _REPR.maxdict = 6
_REPR.maxstring = 120
_REPR.maxlong = 60
_REPR.maxother = 120


def short_repr(value: Any, limit: int = MAX_ECHO_CHARS) -> str:
    """``repr(value)``, at most about ``limit`` characters (containers cut, never expanded)."""
    if isinstance(value, int) and value.bit_length() > 200:  # repr of a huge int is slow
        return f"<integer of about {int(value.bit_length() * 0.30103) + 1} digits>"
    try:
        text = _REPR.repr(value)
    except Exception:  # a broken __repr__ of an odd value: name the type only
        text = f"<{type(value).__name__}>"
    return short_text(text, limit)


def short_text(text: str, limit: int = MAX_ECHO_CHARS) -> str:
    """``text`` with its middle replaced by ``...`` when longer than ``limit`` characters."""
    if len(text) <= limit:
        return text
    keep = max(limit - 3, 2)
    head = keep * 2 // 3
    return f"{text[:head]}...{text[len(text) - (keep - head) :]}"


__all__ = ["MAX_ECHO_CHARS", "short_repr", "short_text"]
