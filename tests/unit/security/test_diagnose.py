"""``ktrdr.security.diagnose`` without a server: a refused connection is not a TLS mistake
(against real gRPC servers: ``tests/integration/security/test_diagnose.py``)."""

from __future__ import annotations

from ktrdr.security.diagnose import explain_unavailable
from ktrdr.security.tls import ClientTLS


def test_a_refused_connection_is_not_a_tls_mistake() -> None:
    detail = "failed to connect to all addresses; ... Connection refused"
    assert explain_unavailable(detail, "127.0.0.1:1", ClientTLS()) is None
