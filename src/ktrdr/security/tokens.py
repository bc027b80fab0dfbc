"""Bearer tokens: generation, hashing, constant-time comparison, and local token files.

Tokens are 32 random bytes (URL-safe base64 with a ``ktrdr_`` prefix). Only their SHA-256 is
stored: a token has 256 bits of entropy, so a fast hash is enough (no password stretching).
A token file holds one token and is written with mode 0600.
"""

from __future__ import annotations

import hashlib
import hmac
import os
import secrets
from pathlib import Path

TOKEN_PREFIX = "ktrdr_"


def generate_token() -> str:
    return TOKEN_PREFIX + secrets.token_urlsafe(32)


def hash_token(token: str) -> str:
    return hashlib.sha256(token.encode("utf-8")).hexdigest()


def same_secret(given: str, expected: str) -> bool:
    """Constant-time comparison of two secrets (compares their hashes)."""
    return hmac.compare_digest(hash_token(given), hash_token(expected))


def read_token_file(path: Path | str | None) -> str | None:
    """The token in ``path``, or None when there is no such file (or it is empty)."""
    if not path:
        return None
    try:
        text = Path(path).read_text(encoding="utf-8").strip()
    except (FileNotFoundError, NotADirectoryError, IsADirectoryError, PermissionError):
        return None
    return text or None


def write_token_file(path: Path | str, token: str) -> Path:
    """Write ``token`` to ``path`` (mode 0600, replaced atomically)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w", encoding="utf-8") as file:
        file.write(token + "\n")
    os.replace(tmp, path)
    return path


__all__ = [
    "TOKEN_PREFIX",
    "generate_token",
    "hash_token",
    "read_token_file",
    "same_secret",
    "write_token_file",
]
