"""Symbol names: upper-case, a strict pattern so a symbol can never escape a directory."""

from __future__ import annotations

import re

from ktrdr.echo import short_repr

# A letter or digit first: never ".", ".." or a hidden file's name.
SYMBOL_PATTERN = re.compile(r"[A-Z0-9][A-Z0-9._-]{0,31}")


def normalize_symbol(symbol: str) -> str:
    """Upper-cased ``symbol``; ``ValueError`` unless it is 1-32 of ``A-Z0-9._-`` starting
    with a letter or digit."""
    if not isinstance(symbol, str):
        raise ValueError(f"symbol must be a string, got {short_repr(symbol)}")
    name = symbol.strip().upper()
    if not SYMBOL_PATTERN.fullmatch(name):
        raise ValueError(
            f"invalid symbol {short_repr(symbol)}: use 1-32 characters from A-Z, 0-9, '.', "
            "'_', '-', starting with a letter or digit"
        )
    return name


__all__ = ["SYMBOL_PATTERN", "normalize_symbol"]
