"""Security settings shared by the backend's and the host's settings classes.

``ServerSecurity`` holds the listening side (certificate, key, client CA, mTLS, the explicit
``insecure`` switches); each service adds its own fields for the peer it calls and builds
that channel's TLS and token with ``peer_tls`` and ``token_source``.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from pydantic import SecretStr
from pydantic_settings import BaseSettings

from ktrdr.security.tls import ClientTLS, ServerTLS
from ktrdr.security.tokens import read_token_file


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


def token_source(fixed: SecretStr, path: Path | None) -> Callable[[], str | None]:
    """The token to present: ``fixed`` when set, else the file at ``path`` read at each call
    (a token file rewritten while the service runs is picked up by the next call)."""
    value = fixed.get_secret_value()
    return (lambda: value) if value else (lambda: read_token_file(path))


__all__ = ["ServerSecurity", "token_source"]
