"""Who may use this host and where it may send models.

- Calls: every TrainingHost RPC but GetCapabilities (and the health check) needs the token
  the backend presents (``KTRDR_HOST_AUTH_TOKEN``). Without that setting the host uses the
  token in its token file, creating one at first start, or, when it requires client
  certificates (mTLS), the verified certificate identifies the backend, and only the
  identities on ``KTRDR_HOST_ALLOWED_CLIENT_IDENTITIES`` (certificate CN or DNS SAN) are
  accepted: a host in mTLS-only mode without that list refuses to start, since every
  certificate its CA signed (users' too) would pass. With a token and the list, a call may
  present either.
- Results targets: the host delivers only to addresses on its allow-list
  (``KTRDR_HOST_ALLOWED_RESULTS_TARGETS``; loopback only by default), so a caller cannot make
  it connect out to an address of its choosing.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

import grpc

from ktrdr.security.interceptor import REFLECTION_METHODS, AuthInterceptor, Identity, Policy
from ktrdr.security.peer_identity import CertificateInterceptor
from ktrdr.security.tls import SecurityConfigError, is_loopback_address, split_host
from ktrdr.security.tokens import generate_token, read_token_file, same_secret, write_token_file
from ktrdr_host.settings import HostSettings
from ktrdr_host.validation import RequestRefused

logger = logging.getLogger(__name__)

SERVICE = "/ktrdr.training.v1.TrainingHost/"
BACKEND_ROLE = "backend"
_GUARDED = ("StartTraining", "CancelTraining", "GetSession", "ListSessions", "WatchSession")


def host_policy() -> Policy:
    rules = {SERVICE + name: frozenset({BACKEND_ROLE}) for name in _GUARDED}
    rules.update({method: frozenset({BACKEND_ROLE}) for method in REFLECTION_METHODS})
    return Policy(rules, open_methods=frozenset({SERVICE + "GetCapabilities"}))


@dataclass(frozen=True)
class HostAuth:
    """How callers are authenticated: the interceptor (None: mTLS or no auth) and a summary."""

    interceptor: grpc.aio.ServerInterceptor | None
    summary: str
    token: str | None = None  # the token callers must present (None: no token check)


def host_auth(settings: HostSettings) -> HostAuth:
    """The host's authentication from its settings (may create the token file)."""
    mtls = settings.tls_require_client_cert
    token = settings.auth_token.get_secret_value()
    if settings.insecure_no_auth:
        return HostAuth(None, "NO authentication (--insecure-no-auth)")
    source = "KTRDR_HOST_AUTH_TOKEN"
    identities = [name for name in settings.allowed_client_identities if name.strip()]
    if identities and not mtls:
        raise SecurityConfigError(
            "host: KTRDR_HOST_ALLOWED_CLIENT_IDENTITIES needs client certificates: set "
            "KTRDR_HOST_TLS_REQUIRE_CLIENT_CERT=true with TLS_CERT, TLS_KEY and TLS_CA"
        )
    if not token and mtls:
        if not identities:
            raise SecurityConfigError(
                "host: client certificates without KTRDR_HOST_AUTH_TOKEN need "
                "KTRDR_HOST_ALLOWED_CLIENT_IDENTITIES (the backend certificate's CN or DNS "
                "name); otherwise every certificate the CA signed would be accepted"
            )
        return HostAuth(
            _certificates(identities, None),
            f"client certificates named {', '.join(identities)} (mTLS)",
        )
    if not token:
        if not is_loopback_address(settings.address):
            raise SecurityConfigError(
                f"host: on non-loopback address {settings.address} set KTRDR_HOST_AUTH_TOKEN "
                "(the token the backend presents as KTRDR_BACKEND_HOST_TOKEN) or require client "
                "certificates (KTRDR_HOST_TLS_REQUIRE_CLIENT_CERT)"
            )
        path = settings.token_file
        token = read_token_file(path) or ""
        if not token:
            token = generate_token()
            write_token_file(path, token)
            logger.info("first start: host token written to %s (mode 0600)", path)
        source = f"the token in {path}"
    expected = token

    def resolve(given: str) -> Identity | None:
        return Identity(BACKEND_ROLE, BACKEND_ROLE) if same_secret(given, expected) else None

    interceptor = AuthInterceptor(
        resolve,
        host_policy(),
        service="training host",
        hint="the backend presents it from KTRDR_BACKEND_HOST_TOKEN (or its token file)",
    )
    summary = f"token auth ({source})" + (" and client certificates" if mtls else "")
    if identities:
        summary = f"token auth ({source}) or client certificates named {', '.join(identities)}"
        return HostAuth(_certificates(identities, expected), summary, expected)
    return HostAuth(interceptor, summary, expected)


def _certificates(identities: list[str], token: str | None) -> CertificateInterceptor:
    return CertificateInterceptor(
        host_policy(),
        identities,
        role=BACKEND_ROLE,
        service="training host",
        setting="KTRDR_HOST_ALLOWED_CLIENT_IDENTITIES",
        token=token,
    )


def check_results_target(target: str, allowed: list[str]) -> None:
    """Refuse a results target that is not on the allow-list (PERMISSION_DENIED)."""
    if _allowed(target, allowed):
        return
    shown = target[:200]
    listed = ", ".join(allowed) if allowed else "loopback addresses only"
    raise RequestRefused(
        grpc.StatusCode.PERMISSION_DENIED,
        f"results_target: {shown!r} is not on this host's allow-list ({listed}); the operator "
        "sets KTRDR_HOST_ALLOWED_RESULTS_TARGETS",
    )


def _allowed(target: str, allowed: list[str]) -> bool:
    if ":" not in target or target.split(":", 1)[0] in (
        "dns",
        "unix",
        "unix-abstract",
        "ipv4",
        "ipv6",
    ):
        return target in allowed  # URI schemes only when listed exactly
    if not allowed:
        return is_loopback_address(target)
    host = split_host(target).lower()
    for entry in allowed:
        entry = entry.strip()
        if entry == target or (":" not in entry.strip("[]") and entry.strip("[]").lower() == host):
            return True
        if entry.startswith("[") and "]:" not in entry and entry.strip("[]").lower() == host:
            return True
    return False


__all__ = ["BACKEND_ROLE", "HostAuth", "check_results_target", "host_auth", "host_policy"]
