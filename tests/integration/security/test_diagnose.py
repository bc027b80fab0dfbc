"""``ktrdr.security.diagnose`` against real gRPC servers on loopback: the probe tells TLS,
mTLS and plaintext apart, and each mistake gets its one line with the setting to change."""

from __future__ import annotations

import socket
from collections.abc import Iterator
from concurrent import futures

import grpc
import pytest
from grpc_health.v1 import health, health_pb2, health_pb2_grpc

from ktrdr.security.channels import sync_channel
from ktrdr.security.diagnose import (
    BACKEND_TO_HOST,
    PLAINTEXT,
    TLS,
    TLS_CLIENT_CERT,
    UNKNOWN,
    explain_unavailable,
    probe_server,
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


def _detail(address: str, tls: ClientTLS) -> str:
    with sync_channel(address, tls=tls) as channel, pytest.raises(grpc.RpcError) as caught:
        health_pb2_grpc.HealthStub(channel).Check(health_pb2.HealthCheckRequest(), timeout=5)
    assert caught.value.code() == grpc.StatusCode.UNAVAILABLE  # type: ignore[attr-defined]
    return str(caught.value.details())  # type: ignore[attr-defined]


def test_the_probe_tells_what_speaks_at_a_port(servers: dict[str, str]) -> None:
    assert probe_server(servers["plain"]) == PLAINTEXT
    assert probe_server(servers["tls"]) == TLS
    assert probe_server(servers["mtls"]) == TLS_CLIENT_CERT
    with socket.socket() as unused:
        unused.bind(("127.0.0.1", 0))
        port = unused.getsockname()[1]
    assert probe_server(f"127.0.0.1:{port}", timeout_s=1) == UNKNOWN


def test_each_mistake_names_its_setting(servers: dict[str, str], pki: dict[str, Issued]) -> None:
    ca = pki["ca"].cert
    cases = [
        (servers["tls"], ClientTLS(), "serves TLS, but this side connects in plaintext"),
        (servers["plain"], ClientTLS.from_paths(ca), "serves plaintext"),
        (servers["tls"], ClientTLS.from_paths(pki["other"].cert), "not signed by the CA given"),
        (servers["mtls"], ClientTLS.from_paths(ca), "requires a client certificate"),
        (
            servers["tls"],
            ClientTLS.from_paths(ca, server_name="wrong.example"),
            "does not name wrong.example",
        ),
    ]
    for address, tls, expected in cases:
        line = explain_unavailable(_detail(address, tls), address, tls, BACKEND_TO_HOST)
        assert line is not None and expected in line, (expected, line)
        assert "KTRDR_BACKEND_HOST_TLS" in line and "\n" not in line, line
