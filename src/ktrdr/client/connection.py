"""How a client reaches the backend: its bearer token and TLS settings.

Token, first match wins: the ``token`` argument (``--token``), ``$KTRDR_TOKEN``, the file
named by ``$KTRDR_TOKEN_FILE``, and, for a backend on this machine (a loopback address), the
admin token a fresh backend writes to ``DATA_DIR/admin.token``: the file that backend
announced for its port (``ktrdr.security.local_records``: its data directory wherever it is),
else, for a backend that announced nothing, ``$KTRDR_BACKEND_DATA_DIR/admin.token`` or
``.ktrdr/backend/admin.token`` in the working directory. The local setup works without
copying secrets, like Jupyter's token file.

TLS: ``$KTRDR_TLS_CA`` (the CA of the backend's certificate), ``$KTRDR_TLS_CERT`` and
``$KTRDR_TLS_KEY`` (a client certificate for mTLS), ``$KTRDR_TLS=1`` (TLS with the system's
roots), ``$KTRDR_TLS_SERVER_NAME`` (the name in the certificate when connecting by IP).
"""

from __future__ import annotations

import logging
import os
from pathlib import Path

from ktrdr.security.local_records import announced_token_file
from ktrdr.security.tls import ClientTLS, is_loopback_address
from ktrdr.security.tokens import read_token_file

logger = logging.getLogger(__name__)

TOKEN_ENV = "KTRDR_TOKEN"
TOKEN_FILE_ENV = "KTRDR_TOKEN_FILE"
BACKEND_DATA_DIR_ENV = "KTRDR_BACKEND_DATA_DIR"
DEFAULT_BACKEND_DATA_DIR = Path(".ktrdr/backend")
ADMIN_TOKEN_FILE = "admin.token"


def local_token_file(address: str | None = None) -> Path:
    """Where a backend on this machine (at ``address``) keeps its first admin token."""
    announced = announced_token_file(address, "backend", "admin") if address else None
    if announced is not None:
        logger.debug("admin token of the backend at %s: %s", address, announced)
        return announced
    data_dir = os.environ.get(BACKEND_DATA_DIR_ENV)
    return (Path(data_dir) if data_dir else DEFAULT_BACKEND_DATA_DIR) / ADMIN_TOKEN_FILE


def resolve_token(address: str, token: str | None = None) -> str | None:
    """The token to present to the backend at ``address`` (see the module docstring)."""
    if token:
        return token
    if os.environ.get(TOKEN_ENV):
        return os.environ[TOKEN_ENV].strip()
    if os.environ.get(TOKEN_FILE_ENV):
        return read_token_file(os.environ[TOKEN_FILE_ENV])
    if is_loopback_address(address):
        return read_token_file(local_token_file(address))
    return None


def _flag(name: str) -> bool:
    return os.environ.get(name, "").strip().lower() in ("1", "true", "yes", "on")


def client_tls(
    *,
    ca: str | Path | None = None,
    cert: str | Path | None = None,
    key: str | Path | None = None,
    enabled: bool = False,
    server_name: str | None = None,
) -> ClientTLS:
    """TLS settings: arguments first, then ``$KTRDR_TLS_*``."""
    return ClientTLS.from_paths(
        ca or os.environ.get("KTRDR_TLS_CA"),
        cert or os.environ.get("KTRDR_TLS_CERT"),
        key or os.environ.get("KTRDR_TLS_KEY"),
        enabled=enabled or _flag("KTRDR_TLS"),
        server_name=server_name or os.environ.get("KTRDR_TLS_SERVER_NAME", ""),
    )


__all__ = ["client_tls", "local_token_file", "resolve_token"]
