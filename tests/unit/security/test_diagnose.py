"""``ktrdr.security.diagnose`` without a server: a refused connection is not a TLS mistake
(against real gRPC servers: ``tests/integration/security/test_diagnose.py``)."""

from __future__ import annotations

from collections.abc import Iterator
from concurrent import futures

import grpc
import pytest
from grpc_health.v1 import health, health_pb2_grpc

from ktrdr.security.diagnose import (
    explain_unavailable,
)
from ktrdr.security.selfsigned import Issued, issue, make_ca
from ktrdr.security.tls import ClientTLS, ServerTLS


@pytest.fixture(scope="module")
def pki(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Issued]:
    root = tmp_path_factory.mktemp("pki")
    ca = make_ca(root)
    return {"ca": ca, "svc": issue(ca, "svc"), "other": make_ca(root / "other", "other")}


@pytest.fixture(scope="module")
def servers(pki: dict[str, Issued]) -> Iterator[dict[str, str]]:
    started, addresses = [], {}
    svc, ca = pki["svc"], pki["ca"]
    for name, tls in (
        ("plain", None),
        ("tls", ServerTLS(svc.cert, svc.key)),
        ("mtls", ServerTLS(svc.cert, svc.key, ca.cert, True)),
    ):
        server = grpc.server(futures.ThreadPoolExecutor(2))
        health_pb2_grpc.add_HealthServicer_to_server(health.HealthServicer(), server)
        creds = tls.credentials() if tls else None
        port = (
            server.add_secure_port("127.0.0.1:0", creds)
            if creds
            else server.add_insecure_port("127.0.0.1:0")
        )
        server.start()
        started.append(server)
        addresses[name] = f"127.0.0.1:{port}"
    yield addresses
    for server in started:
        server.stop(None)


def test_a_refused_connection_is_not_a_tls_mistake() -> None:
    detail = "failed to connect to all addresses; ... Connection refused"
    assert explain_unavailable(detail, "127.0.0.1:1", ClientTLS()) is None
