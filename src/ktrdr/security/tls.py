"""TLS material from PEM files, and the rule about plaintext on non-loopback addresses.

A server serves TLS when given a certificate and key, and requires client certificates
(mTLS) when also given a client CA with ``require_client_cert``. A client verifies the
server against a CA (or the system roots) and may present its own certificate.
"""

from __future__ import annotations

import ipaddress
from dataclasses import dataclass
from pathlib import Path

import grpc


class SecurityConfigError(Exception):
    """A security setting that cannot work (missing file, key without certificate, ...)."""


def _read(path: Path | None, what: str) -> bytes | None:
    if path is None:
        return None
    try:
        return Path(path).read_bytes()
    except OSError as exc:
        raise SecurityConfigError(f"{what}: cannot read {path}: {exc.strerror or exc}") from None


@dataclass(frozen=True)
class ServerTLS:
    """A server's certificate and key, and the CA its clients' certificates must chain to."""

    cert: Path | None = None
    key: Path | None = None
    client_ca: Path | None = None
    require_client_cert: bool = False

    @property
    def enabled(self) -> bool:
        return self.cert is not None

    def check(self, prefix: str) -> None:
        if (self.cert is None) != (self.key is None):
            raise SecurityConfigError(
                f"{prefix}TLS_CERT and {prefix}TLS_KEY go together: set both or neither"
            )
        if self.require_client_cert and (self.cert is None or self.client_ca is None):
            raise SecurityConfigError(
                f"{prefix}TLS_REQUIRE_CLIENT_CERT needs {prefix}TLS_CERT, {prefix}TLS_KEY and "
                f"{prefix}TLS_CA (the CA that signs client certificates)"
            )

    def credentials(self, prefix: str = "") -> grpc.ServerCredentials:
        self.check(prefix)
        cert = _read(self.cert, f"{prefix}TLS_CERT")
        key = _read(self.key, f"{prefix}TLS_KEY")
        assert cert is not None and key is not None
        ca = _read(self.client_ca, f"{prefix}TLS_CA")
        check_key_pair(self.cert, self.key, prefix)  # grpcio would say only "cannot bind"
        return grpc.ssl_server_credentials(
            [(key, cert)],
            root_certificates=ca,
            require_client_auth=self.require_client_cert,
        )


def check_key_pair(cert: Path | None, key: Path | None, prefix: str = "") -> None:
    """``SecurityConfigError`` naming the problem when ``key`` is not a usable private key
    for ``cert`` (not PEM, encrypted, or another certificate's key)."""
    if cert is None or key is None:
        return
    import ssl

    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    try:
        context.load_cert_chain(str(cert), str(key), password=lambda: b"")
    except ssl.SSLError as exc:
        reason = str(exc.reason or exc).lower()
        if "mismatch" in reason:
            why = f"{prefix}TLS_KEY is not the private key of {prefix}TLS_CERT"
        elif "bad decrypt" in reason or "password" in reason:
            why = f"{prefix}TLS_KEY is encrypted (a key without a passphrase is needed)"
        else:
            why = f"{prefix}TLS_CERT/{prefix}TLS_KEY: not a PEM certificate and private key"
        raise SecurityConfigError(f"{why} ({cert.name}, {key.name})") from None


@dataclass(frozen=True)
class ClientTLS:
    """How a channel verifies its server and which certificate it presents.

    ``enabled`` with no ``ca`` verifies against the system's roots. ``server_name`` overrides
    the name checked against the server's certificate (for addresses given as an IP).
    """

    enabled: bool = False
    ca: Path | None = None
    cert: Path | None = None
    key: Path | None = None
    server_name: str = ""

    @classmethod
    def from_paths(
        cls,
        ca: Path | str | None = None,
        cert: Path | str | None = None,
        key: Path | str | None = None,
        *,
        enabled: bool = False,
        server_name: str = "",
    ) -> ClientTLS:
        def path(value: Path | str | None) -> Path | None:
            return Path(value) if value else None

        ca_, cert_, key_ = path(ca), path(cert), path(key)
        return cls(
            enabled=bool(enabled or ca_ or cert_),
            ca=ca_,
            cert=cert_,
            key=key_,
            server_name=server_name,
        )

    def credentials(self, prefix: str = "") -> grpc.ChannelCredentials:
        if (self.cert is None) != (self.key is None):
            raise SecurityConfigError(
                f"{prefix}TLS_CERT and {prefix}TLS_KEY go together: set both or neither"
            )
        return grpc.ssl_channel_credentials(
            root_certificates=_read(self.ca, f"{prefix}TLS_CA"),
            private_key=_read(self.key, f"{prefix}TLS_KEY"),
            certificate_chain=_read(self.cert, f"{prefix}TLS_CERT"),
        )


def split_host(address: str) -> str:
    """The host part of ``host:port`` / ``[v6]:port`` (scheme prefixes such as ``ipv4:`` kept)."""
    host = address.rsplit(":", 1)[0] if ":" in address else address
    return host.strip("[]")


def is_loopback_address(address: str) -> bool:
    """True for ``127.0.0.0/8``, ``::1`` and ``localhost`` (with or without a port)."""
    host = split_host(address)
    if host.lower() == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def check_listen_security(
    address: str, *, tls: bool, insecure: bool, auth: bool, insecure_no_auth: bool, service: str
) -> None:
    """Refuse plaintext or unauthenticated serving on a non-loopback address.

    Plaintext needs ``--insecure`` there; serving without authentication is refused there
    whatever the flags say.
    """
    if is_loopback_address(address):
        return
    if not tls and not insecure:
        raise SecurityConfigError(
            f"{service}: refusing to serve plaintext on non-loopback address {address}: "
            "give a TLS certificate and key, or pass --insecure to accept that risk"
        )
    if not auth and insecure_no_auth:
        raise SecurityConfigError(
            f"{service}: --insecure-no-auth is only allowed on a loopback address, not on {address}"
        )


__all__ = [
    "ClientTLS",
    "SecurityConfigError",
    "ServerTLS",
    "check_listen_security",
    "is_loopback_address",
    "split_host",
]
