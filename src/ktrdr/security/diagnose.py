"""One line that says why a connection failed, for a person to act on.

gRPC reports every TLS mistake as ``UNAVAILABLE`` with a detail written for its developers
("Socket closed", "Tls handshake failed (TSI_PROTOCOL_FAILURE): ... WRONG_VERSION_NUMBER").
``explain_unavailable`` turns that detail, the client's own TLS settings and, where the detail
cannot tell (the server just closes the connection), a short probe of the server's port into
the likely cause and the setting to change:

* a plaintext client against a TLS port, or a TLS client against a plaintext port;
* a server certificate signed by a CA the client does not trust, or expired;
* a server certificate that does not name the address the client used;
* a server that requires a client certificate (mTLS) and got none, or refused the one given.

``names`` says how the settings are spelled on the side that connects: the CLI's flags and
``$KTRDR_TLS_*``, the backend's ``KTRDR_BACKEND_HOST_TLS_*`` or the host's
``KTRDR_HOST_BACKEND_TLS_*``. The probe is a TLS handshake of the standard library with no
verification, bounded by ``timeout_s``; it is made only after a call failed.
"""

from __future__ import annotations

import socket
import ssl
from dataclasses import dataclass

from ktrdr.security.tls import ClientTLS, split_host


@dataclass(frozen=True)
class SettingNames:
    """How one side of a connection spells its TLS and token settings (for the hint)."""

    ca: str
    cert: str
    server_name: str
    token: str
    tls_off: str  # what to remove to connect in plaintext


CLIENT_SETTINGS = SettingNames(
    ca="--tls-ca ($KTRDR_TLS_CA)",
    cert="--tls-cert and --tls-key ($KTRDR_TLS_CERT, $KTRDR_TLS_KEY)",
    server_name="--tls-server-name ($KTRDR_TLS_SERVER_NAME)",
    token="--token ($KTRDR_TOKEN or $KTRDR_TOKEN_FILE)",
    tls_off="--tls/--tls-ca/--tls-cert ($KTRDR_TLS, $KTRDR_TLS_CA, $KTRDR_TLS_CERT)",
)
BACKEND_TO_HOST = SettingNames(
    ca="KTRDR_BACKEND_HOST_TLS_CA",
    cert="KTRDR_BACKEND_HOST_TLS_CERT and KTRDR_BACKEND_HOST_TLS_KEY",
    server_name="KTRDR_BACKEND_HOST_TLS_SERVER_NAME",
    token="KTRDR_BACKEND_HOST_TOKEN (the host's KTRDR_HOST_AUTH_TOKEN)",
    tls_off="KTRDR_BACKEND_HOST_TLS_CA / KTRDR_BACKEND_HOST_TLS",
)
HOST_TO_BACKEND = SettingNames(
    ca="KTRDR_HOST_BACKEND_TLS_CA",
    cert="KTRDR_HOST_BACKEND_TLS_CERT and KTRDR_HOST_BACKEND_TLS_KEY",
    server_name="KTRDR_HOST_BACKEND_TLS_SERVER_NAME",
    token="KTRDR_HOST_BACKEND_TOKEN (a host-role token: ktrdr backend tokens create NAME "
    "--role host)",
    tls_off="KTRDR_HOST_BACKEND_TLS_CA / KTRDR_HOST_BACKEND_TLS",
)

# What ``probe_server`` finds at an address.
PLAINTEXT = "plaintext"
TLS = "tls"
TLS_CLIENT_CERT = "tls-client-cert"  # TLS, and the handshake needs a client certificate
UNKNOWN = "unknown"

_NOT_LISTENING = ("Connection refused", "DNS resolution failed", "No route to host")


def probe_server(address: str, timeout_s: float = 2.0) -> str:
    """What speaks at ``address``: TLS (needing a client certificate or not), plaintext, or
    ``UNKNOWN`` (nothing answers, or the answer says neither)."""
    host, port = split_host(address), address.rpartition(":")[2]
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    context.check_hostname = False
    context.verify_mode = ssl.CERT_NONE
    context.set_alpn_protocols(["h2"])
    try:
        raw = socket.create_connection((host, int(port)), timeout=timeout_s)
    except (OSError, ValueError):
        return UNKNOWN
    with raw:
        try:
            conn = context.wrap_socket(raw)
        except ssl.SSLError as exc:
            return PLAINTEXT if "WRONG_VERSION_NUMBER" in str(exc) else UNKNOWN
        except OSError:
            return UNKNOWN
        with conn:
            try:
                # A gRPC server sends its HTTP/2 settings at once; one that wants a client
                # certificate ends the connection (TLS 1.3 says so after the handshake).
                data = conn.recv(64)
            except ssl.SSLError as exc:
                text = str(exc).upper()
                if "CERTIFICATE_REQUIRED" in text or "HANDSHAKE_FAILURE" in text:
                    return TLS_CLIENT_CERT
                return UNKNOWN
            except OSError:
                return UNKNOWN
            return TLS if data else TLS_CLIENT_CERT


def explain_unavailable(
    detail: str,
    address: str,
    tls: ClientTLS | None,
    names: SettingNames = CLIENT_SETTINGS,
    *,
    probe: bool = True,
    timeout_s: float = 2.0,
) -> str | None:
    """The likely cause of an UNAVAILABLE call to ``address`` in one line, or None when it is
    not a TLS mistake (nothing listens, the service went away, ...).

    ``tls``: the connecting side's settings (None: unknown, then only the detail is used).
    """
    if any(marker in detail for marker in _NOT_LISTENING):
        return None
    ca = tls.ca.name if tls is not None and tls.ca is not None else ""
    if "WRONG_VERSION_NUMBER" in detail:
        return (
            f"the service serves plaintext, but this side connects with TLS: drop "
            f"{names.tls_off}, or start the service with --tls-cert/--tls-key"
        )
    if "CERTIFICATE_VERIFY_FAILED" in detail:
        if "expired" in detail:
            return (
                "the service's certificate has expired: give the service a new one "
                "(ktrdr certs create)"
            )
        trusted = f"the CA given ({ca})" if ca else "the system's roots"
        return (
            f"the service's certificate is not signed by {trusted}: set {names.ca} to the CA "
            "that signed it"
        )
    if "Hostname Verification" in detail or "No match found for server name" in detail:
        expected = (tls.server_name if tls is not None else "") or split_host(address)
        return (
            f"the service's certificate does not name {expected}: connect by a name or IP in "
            f"its subjectAltName, or set {names.server_name}"
        )
    if not probe or ("Socket closed" not in detail and "Connection reset" not in detail):
        return None
    found = probe_server(address, timeout_s)
    plaintext_client = tls is not None and not tls.enabled
    if found in (TLS, TLS_CLIENT_CERT) and plaintext_client:
        return (
            f"the service serves TLS, but this side connects in plaintext: set {names.ca} "
            "to the CA of its certificate"
        )
    if found == TLS_CLIENT_CERT and tls is not None and tls.enabled:
        if tls.cert is None:
            return (
                "the service requires a client certificate (mTLS) and this side presents "
                f"none: set {names.cert}"
            )
        return (
            f"the service refused this side's client certificate ({tls.cert.name}): it is "
            "not signed by the CA the service trusts (its --tls-ca), or it has expired"
        )
    return None


def explain_token(message: str, names: SettingNames = CLIENT_SETTINGS) -> str:
    """An UNAUTHENTICATED message with the setting that gives the token."""
    if names.token in message:
        return message
    return f"{message.rstrip('. ')}; set a valid token with {names.token}"


__all__ = [
    "BACKEND_TO_HOST",
    "CLIENT_SETTINGS",
    "HOST_TO_BACKEND",
    "SettingNames",
    "explain_token",
    "explain_unavailable",
    "probe_server",
]
