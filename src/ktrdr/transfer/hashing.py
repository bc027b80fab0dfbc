"""SHA-256 of files, computed in one streaming pass."""

from __future__ import annotations

import hashlib
import re
from pathlib import Path

_SHA256_HEX = re.compile(r"[0-9a-f]{64}")


def sha256_file(path: Path | str) -> str:
    """Lowercase hex SHA-256 of the file's bytes, read incrementally."""
    with open(path, "rb") as f:
        return hashlib.file_digest(f, "sha256").hexdigest()


def is_sha256_hex(text: str) -> bool:
    """True for a lowercase hex SHA-256 digest (64 characters)."""
    return _SHA256_HEX.fullmatch(text) is not None
