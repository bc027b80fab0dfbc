"""Security settings shared by the backend's and the host's settings classes.

``ServerSecurity`` holds the listening side (certificate, key, client CA, mTLS, the explicit
``insecure`` switches); each service adds its own fields for the peer it calls and builds
that channel's TLS and token with ``peer_tls`` and ``token_source``.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from pathlib import Path
from typing import Any, Self

from pydantic import PrivateAttr, SecretStr
from pydantic_settings import BaseSettings

from ktrdr.security.tls import ClientTLS, ServerTLS
from ktrdr.security.tokens import read_token_file

logger = logging.getLogger(__name__)


class ServerSecurity(BaseSettings):
    """TLS and authentication of a listening service (its subclass sets the env prefix)."""

    # TLS certificate and key of this server (PEM); both or neither (PREFIX_TLS_CERT/_KEY).
    tls_cert: Path | None = None
    tls_key: Path | None = None
    # CA that signs client certificates (PREFIX_TLS_CA); with TLS_REQUIRE_CLIENT_CERT every
    # client must present one (mTLS).
    tls_ca: Path | None = None
    tls_require_client_cert: bool = False
    # Allow plaintext on a non-loopback address (PREFIX_INSECURE, --insecure).
    insecure: bool = False
    # Serve without authentication; loopback addresses only (--insecure-no-auth).
    insecure_no_auth: bool = False
    # The working directory when ``absolute`` was called (at start).
    _start_dir: Path | None = PrivateAttr(default=None)

    def start_path(self, path: Path) -> Path:
        """``path`` taken from the working directory at start (see ``absolute``)."""
        return (self._start_dir or Path.cwd()) / path

    def absolute(self) -> Self:
        """A copy with every setting that names a file or directory made absolute, relative
        to the working directory now (at start): a service never resolves a relative path
        again later, and never twice. ``log_paths`` logs them once, at INFO."""
        cwd = Path.cwd()
        update: dict[str, Any] = {}
        for name in type(self).model_fields:
            value = getattr(self, name)
            if isinstance(value, Path):
                update[name] = value if value.is_absolute() else cwd / value.expanduser()
        update.update(self._absolute_extra(cwd))
        result = self.model_copy(update=update)
        result._start_dir = cwd
        return result

    def log_paths(self, service: str) -> None:
        """Log every path setting once (after ``absolute``), at INFO."""
        shown = {n: getattr(self, n) for n in type(self).model_fields}
        paths = {n: v for n, v in shown.items() if isinstance(v, Path)}
        paths.update(self._absolute_extra(self._start_dir or Path.cwd()))
        logger.info(
            "%s paths (relative ones taken from %s at start): %s",
            service,
            self._start_dir or Path.cwd(),
            ", ".join(f"{name}={paths[name]}" for name in sorted(paths)),
        )

    def _absolute_extra(self, cwd: Path) -> dict[str, Any]:
        """Settings that hold a path inside another kind of value (a subclass adds them)."""
        return {}

    def server_tls(self) -> ServerTLS:
        return ServerTLS(self.tls_cert, self.tls_key, self.tls_ca, self.tls_require_client_cert)

    @property
    def auth_enabled(self) -> bool:
        return not self.insecure_no_auth

    def peer_tls(
        self,
        *,
        enabled: bool,
        ca: Path | None,
        cert: Path | None,
        key: Path | None,
        server_name: str,
    ) -> ClientTLS:
        """TLS towards the service this one calls: on when asked or when its CA is given;
        the client certificate defaults to this server's own."""
        on = enabled or ca is not None
        return ClientTLS(
            enabled=on,
            ca=ca,
            cert=cert or (self.tls_cert if on else None),
            key=key or (self.tls_key if on else None),
            server_name=server_name,
        )


_LOGGED_TOKEN_FILES: set[tuple[str, Path]] = set()


def log_token_file(purpose: str, path: Path) -> None:
    """Say once per process which file a token is read from (at INFO)."""
    if (purpose, path) in _LOGGED_TOKEN_FILES:
        return
    _LOGGED_TOKEN_FILES.add((purpose, path))
    state = "" if path.is_file() else " (not there yet)"
    logger.info("%s: the token in %s%s, read at each call", purpose, path, state)


def token_source(
    fixed: SecretStr,
    path: Path | Callable[[], Path | None] | None,
    *,
    purpose: str = "token",
) -> Callable[[], str | None]:
    """The token to present: ``fixed`` when set, else the file at ``path`` read at each call
    (a token file rewritten while the service runs is picked up by the next call). ``path``
    may be a function, asked at each call (a file found by discovery); each file used is
    logged once."""
    value = fixed.get_secret_value()
    if value:
        return lambda: value

    def read() -> str | None:
        file = path() if callable(path) else path
        if file is None:
            return None
        log_token_file(purpose, Path(file))
        return read_token_file(file)

    return read


__all__ = ["ServerSecurity", "log_token_file", "token_source"]
