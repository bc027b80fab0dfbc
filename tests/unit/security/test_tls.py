"""Plaintext or unauthenticated listening is refused off loopback (TLS and mTLS on a real
backend: ``tests/integration/security/test_tls.py``)."""

from __future__ import annotations

import pytest

from ktrdr.security.tls import SecurityConfigError, check_listen_security


def test_plaintext_or_unauthenticated_on_a_non_loopback_address_is_refused() -> None:
    kw = {"auth": True, "insecure_no_auth": False, "service": "backend"}
    for loopback in ("127.0.0.1:1", "127.0.0.5:1", "localhost:1", "[::1]:1"):
        check_listen_security(loopback, tls=False, insecure=False, **kw)  # type: ignore[arg-type]
    with pytest.raises(SecurityConfigError, match="--insecure"):
        check_listen_security("0.0.0.0:50052", tls=False, insecure=False, **kw)  # type: ignore[arg-type]
    check_listen_security("0.0.0.0:50052", tls=True, insecure=False, **kw)  # type: ignore[arg-type]
    check_listen_security("0.0.0.0:50052", tls=False, insecure=True, **kw)  # type: ignore[arg-type]
    with pytest.raises(SecurityConfigError, match="only allowed on a loopback"):
        check_listen_security(
            "0.0.0.0:50052",
            tls=True,
            insecure=False,
            auth=False,
            insecure_no_auth=True,
            service="backend",
        )
