"""Named bearer tokens in the backend's SQLite database (only their SHA-256 is stored).

Used by the running backend (to resolve a token to an identity) and by
``ktrdr backend tokens create|list|revoke``, which open the same database file while the
backend runs (SQLite WAL allows it; a new or revoked token takes effect within seconds).

A fresh backend with no tokens creates two, so a local setup works without copying secrets:
``local-admin`` (admin), written to ``DATA_DIR/admin.token`` where ``ktrdr`` and
``TrainingClient`` on this machine find it, and ``local-host`` (host), written to
``DATA_DIR/host.token`` for a training host on this machine. Both files are mode 0600.
"""

from __future__ import annotations

import logging
import re
import sqlite3
import time
from dataclasses import dataclass
from pathlib import Path

from ktrdr.backend.auth.roles import ROLES
from ktrdr.backend.database import Database
from ktrdr.backend.tables import Tables, reads, writes
from ktrdr.security.interceptor import Identity
from ktrdr.security.tokens import generate_token, hash_token, write_token_file

logger = logging.getLogger(__name__)

ADMIN_TOKEN_FILE = "admin.token"
HOST_TOKEN_FILE = "host.token"
_NAME_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._@-]{0,63}\Z")

_SCHEMA = """
CREATE TABLE IF NOT EXISTS tokens (
    name TEXT PRIMARY KEY,
    role TEXT NOT NULL,
    token_sha256 TEXT NOT NULL UNIQUE,
    created_us INTEGER NOT NULL,
    revoked_us INTEGER
);
"""


class TokenError(ValueError):
    """A token request that cannot be done (bad name or role, name taken, unknown name)."""


@dataclass(frozen=True)
class TokenInfo:
    name: str
    role: str
    created_us: int
    revoked_us: int | None

    @property
    def active(self) -> bool:
        return self.revoked_us is None


def _migrate(db: sqlite3.Connection) -> None:
    db.executescript(_SCHEMA)


class TokenStore(Tables):
    """The ``tokens`` table of ``backend.db`` (a shared ``Database``, or a path: the CLI)."""

    def __init__(self, database: Database | Path | str) -> None:
        super().__init__(database)
        self.database.migrate("tokens", _migrate)

    def create(self, name: str, role: str) -> str:
        """A new token for ``name``; returns the token (the only time it is ever shown)."""
        return self.add(name, role, generate_token())

    def add(self, name: str, role: str, token: str) -> str:
        """Register a token made elsewhere (a secret manager, a test) under ``name``."""
        if len(token) < 16:
            raise TokenError("token: at least 16 characters")
        if not _NAME_RE.match(name):
            raise TokenError(
                f"name: {name[:80]!r} is not a token name (letters, digits, '.', '_', '@', '-'; "
                "at most 64)"
            )
        if role not in ROLES:
            raise TokenError(f"role: {role!r} is not one of {', '.join(ROLES)}")
        self._insert(name, role, hash_token(token))
        logger.info("token %r created with role %s", name, role)
        return token

    @writes
    def _insert(self, db: sqlite3.Connection, name: str, role: str, digest: str) -> None:
        try:
            db.execute(
                "INSERT INTO tokens (name, role, token_sha256, created_us) VALUES (?,?,?,?)",
                (name, role, digest, time.time_ns() // 1000),
            )
        except sqlite3.IntegrityError:
            raise TokenError(
                f"name: a token named {name!r} exists already (revoke it first, or pick "
                "another name)"
            ) from None

    def revoke(self, name: str) -> TokenInfo:
        info = self._revoke(name)
        logger.info("token %r revoked", name)
        return info

    @writes
    def _revoke(self, db: sqlite3.Connection, name: str) -> TokenInfo:
        row = db.execute("SELECT role, created_us FROM tokens WHERE name = ?", (name,)).fetchone()
        if row is None:
            raise TokenError(f"name: no token named {name!r}")
        # Renamed so the name can be given to a new token; the row stays as a record.
        stamp = time.time_ns() // 1000
        db.execute(
            "UPDATE tokens SET revoked_us = ?, name = ? WHERE name = ?",
            (stamp, f"{name}~revoked-{stamp}", name),
        )
        return TokenInfo(name, row[0], row[1], stamp)

    @reads
    def list(self, db: sqlite3.Connection, *, include_revoked: bool = False) -> list[TokenInfo]:
        sql = "SELECT name, role, created_us, revoked_us FROM tokens"
        if not include_revoked:
            sql += " WHERE revoked_us IS NULL"
        rows = db.execute(sql + " ORDER BY created_us").fetchall()
        return [TokenInfo(*row) for row in rows]

    @reads
    def resolve(self, db: sqlite3.Connection, token: str) -> Identity | None:
        """The identity of an active token, or None (a read: never waits for the writer)."""
        row = db.execute(
            "SELECT name, role FROM tokens WHERE token_sha256 = ? AND revoked_us IS NULL",
            (hash_token(token),),
        ).fetchone()
        return None if row is None else Identity(name=row[0], role=row[1])

    @reads
    def is_empty(self, db: sqlite3.Connection) -> bool:
        return bool(db.execute("SELECT COUNT(*) FROM tokens").fetchone()[0] == 0)


def bootstrap_local_tokens(store: TokenStore, data_dir: Path) -> list[Path]:
    """On a backend that has never had a token: create ``local-admin`` and ``local-host`` and
    write them to files in ``data_dir``; returns the files written (none otherwise)."""
    if not store.is_empty():
        return []
    written = []
    for name, role, file_name in (
        ("local-admin", "admin", ADMIN_TOKEN_FILE),
        ("local-host", "host", HOST_TOKEN_FILE),
    ):
        written.append(write_token_file(data_dir / file_name, store.create(name, role)))
    return written


__all__ = [
    "ADMIN_TOKEN_FILE",
    "HOST_TOKEN_FILE",
    "TokenError",
    "TokenInfo",
    "TokenStore",
    "bootstrap_local_tokens",
]
