"""Recognising a full disk, so that it is answered as such (RESOURCE_EXHAUSTED, "disk full").

A full disk shows up as ``OSError`` with ENOSPC (or EDQUOT, a quota) from file writes, and as
``sqlite3.OperationalError: database or disk is full`` (SQLITE_FULL) from the database, often
wrapped in another exception. Messages built here never name a path.

A database locked by another connection (SQLITE_BUSY / SQLITE_LOCKED) is recognised here too,
so that it is answered UNAVAILABLE "database busy, retry shortly", never INTERNAL.
"""

from __future__ import annotations

import errno
import sqlite3

_ERRNOS = frozenset({errno.ENOSPC, errno.EDQUOT})


def is_disk_full(exc: BaseException | None) -> bool:
    """True when ``exc`` (or an exception it was raised from) says the disk is full."""
    seen = 0
    while exc is not None and seen < 8:
        if isinstance(exc, OSError) and exc.errno in _ERRNOS:
            return True
        if isinstance(exc, sqlite3.DatabaseError) and (
            getattr(exc, "sqlite_errorcode", None) == sqlite3.SQLITE_FULL
            or "disk is full" in str(exc)
        ):
            return True
        exc = exc.__cause__ or exc.__context__
        seen += 1
    return False


def is_database_busy(exc: BaseException | None) -> bool:
    """True when ``exc`` (or an exception it was raised from) is SQLite's "database is
    locked" / "database is busy" (also its extended codes)."""
    seen = 0
    while exc is not None and seen < 8:
        if isinstance(exc, sqlite3.OperationalError):
            code = getattr(exc, "sqlite_errorcode", None)
            if isinstance(code, int):
                if code & 0xFF in (sqlite3.SQLITE_BUSY, sqlite3.SQLITE_LOCKED):
                    return True
            elif "database is locked" in str(exc) or "database is busy" in str(exc):
                return True
        exc = exc.__cause__ or exc.__context__
        seen += 1
    return False


def disk_full_message(what: str) -> str:
    """``disk full: <what> ...``: what could not be written, and what to do."""
    return f"disk full: {what}; free space on the server's storage and try again"


__all__ = ["disk_full_message", "is_database_busy", "is_disk_full"]
