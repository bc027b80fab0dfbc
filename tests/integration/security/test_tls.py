"""TLS and mTLS on a real backend, with certificates made by openssl for the test."""

from __future__ import annotations

import shutil
from pathlib import Path

import grpc
import pytest

from ktrdr.security.channels import aio_channel
from ktrdr.security.selfsigned import Issued, issue, make_ca
from ktrdr.security.tls import ClientTLS
from ktrdr.security.tokens import read_token_file
from ktrdr.training.v1 import backend_pb2 as pb
from ktrdr.training.v1 import backend_pb2_grpc
from tests.support.backend import start_backend, stop_backend
from tests.support.timing import scaled

pytestmark = pytest.mark.skipif(shutil.which("openssl") is None, reason="needs openssl")


class Certs:
    def __init__(self, root: Path) -> None:
        self.ca = make_ca(root / "pki")
        self.server = issue(self.ca, "server")
        self.client = issue(self.ca, "alice", service=False)
        rogue_ca = make_ca(root / "rogue", "rogue-ca")
        self.rogue = issue(rogue_ca, "mallory", service=False)


@pytest.fixture(scope="module")
def certs(tmp_path_factory: pytest.TempPathFactory) -> Certs:
    return Certs(tmp_path_factory.mktemp("certs"))


async def call(address: str, token: str | None, tls: ClientTLS | None) -> grpc.StatusCode:
    async with aio_channel(address, tls=tls, token=token) as channel:
        try:
            await backend_pb2_grpc.BackendStub(channel).ListStrategies(
                pb.ListStrategiesRequest(), timeout=scaled(5)
            )
        except grpc.aio.AioRpcError as exc:
            return exc.code()
    return grpc.StatusCode.OK


def client_tls(ca: Path, who: Issued | None = None) -> ClientTLS:
    return ClientTLS.from_paths(ca, who.cert if who else None, who.key if who else None)


async def test_tls_server_verified_against_its_ca(tmp_path, sample_data_dir, certs) -> None:
    (tmp_path / "strategies").mkdir()
    b = await start_backend(
        tmp_path, sample_data_dir, tls_cert=certs.server.cert, tls_key=certs.server.key
    )
    try:
        address = f"127.0.0.1:{b.app.port}"
        token = read_token_file(tmp_path / "admin.token")
        assert await call(address, token, client_tls(certs.ca.cert)) == grpc.StatusCode.OK
        # a plaintext client, or one that trusts another CA, cannot talk to it
        assert await call(address, token, None) == grpc.StatusCode.UNAVAILABLE
        rogue = client_tls(certs.rogue.cert.parent / "rogue-ca.pem")
        assert await call(address, token, rogue) == grpc.StatusCode.UNAVAILABLE
        # TLS does not replace the token
        assert await call(address, None, client_tls(certs.ca.cert)) == (
            grpc.StatusCode.UNAUTHENTICATED
        )
    finally:
        await stop_backend(b)


async def test_mtls_requires_a_client_certificate_from_the_ca(
    tmp_path, sample_data_dir, certs
) -> None:
    (tmp_path / "strategies").mkdir()
    b = await start_backend(
        tmp_path,
        sample_data_dir,
        tls_cert=certs.server.cert,
        tls_key=certs.server.key,
        tls_ca=certs.ca.cert,
        tls_require_client_cert=True,
    )
    try:
        address = f"127.0.0.1:{b.app.port}"
        token = read_token_file(tmp_path / "admin.token")
        ok = client_tls(certs.ca.cert, certs.client)
        assert await call(address, token, ok) == grpc.StatusCode.OK
        assert await call(address, token, client_tls(certs.ca.cert)) == (
            grpc.StatusCode.UNAVAILABLE
        )
        assert await call(address, token, client_tls(certs.ca.cert, certs.rogue)) == (
            grpc.StatusCode.UNAVAILABLE
        )
    finally:
        await stop_backend(b)
