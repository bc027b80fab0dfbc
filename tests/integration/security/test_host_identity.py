"""A host under mTLS accepts only the client certificates on its allow-list (or its token).

Real certificates from one CA (``openssl``), a real host on 127.0.0.1: the backend's
certificate is accepted; a user's certificate and another machine's, signed by the same CA,
are refused. A host in mTLS-only mode without an allow-list refuses to start (a real
``ktrdr host serve`` process, one line on stderr).
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import grpc
import pytest

from ktrdr.security.channels import aio_channel
from ktrdr.security.selfsigned import Issued, issue, make_ca
from ktrdr.security.tls import ClientTLS
from ktrdr.security.tokens import generate_token
from ktrdr.training.v1 import host_pb2, host_pb2_grpc
from ktrdr_host.server import start_host
from ktrdr_host.settings import HostSettings

pytestmark = pytest.mark.skipif(shutil.which("openssl") is None, reason="needs openssl")


@pytest.fixture(scope="module")
def pki(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Issued]:
    ca = make_ca(tmp_path_factory.mktemp("pki"))
    return {
        "ca": ca,
        "host": issue(ca, "gpu1"),
        "backend": issue(ca, "backend"),
        "other": issue(ca, "gpu2"),  # another machine of the same CA (SAN localhost too)
        "alice": issue(ca, "alice", service=False),  # a user's certificate
    }


def settings(tmp_path: Path, sample_data_dir: Path, pki: dict[str, Issued], **extra: object):
    return HostSettings(
        address="127.0.0.1:0",
        data_dir=sample_data_dir,
        spool_dir=tmp_path / "spool",
        device="cpu",
        tls_cert=pki["host"].cert,
        tls_key=pki["host"].key,
        tls_ca=pki["ca"].cert,
        tls_require_client_cert=True,
        shutdown_grace_s=1,
        worker_preload="first-run",  # the training stack with the first session, if any
        **extra,  # type: ignore[arg-type]
    )


async def list_sessions(address: str, pki: dict[str, Issued], who: str, token: str | None = None):
    tls = ClientTLS.from_paths(pki["ca"].cert, pki[who].cert, pki[who].key)
    async with aio_channel(address, tls=tls, token=token) as channel:
        stub = host_pb2_grpc.TrainingHostStub(channel)
        try:
            await stub.ListSessions(host_pb2.ListSessionsRequest(), timeout=10)
        except grpc.aio.AioRpcError as exc:
            return exc.code(), exc.details() or ""
    return grpc.StatusCode.OK, ""


async def test_only_allowed_certificates_are_accepted(
    tmp_path: Path, sample_data_dir: Path, pki: dict[str, Issued]
) -> None:
    host = await start_host(
        settings(tmp_path, sample_data_dir, pki, allowed_client_identities=["backend"])
    )
    try:
        assert (await list_sessions(host.address, pki, "backend"))[0] == grpc.StatusCode.OK
        for who in ("alice", "other"):
            code, detail = await list_sessions(host.address, pki, who)
            assert code == grpc.StatusCode.PERMISSION_DENIED, who
            assert "KTRDR_HOST_ALLOWED_CLIENT_IDENTITIES" in detail
        # GetCapabilities stays open, as without mTLS identities
        tls = ClientTLS.from_paths(pki["ca"].cert, pki["alice"].cert, pki["alice"].key)
        async with aio_channel(host.address, tls=tls) as channel:
            stub = host_pb2_grpc.TrainingHostStub(channel)
            await stub.GetCapabilities(host_pb2.GetCapabilitiesRequest(), timeout=10)
    finally:
        await host.shutdown()


async def test_token_or_allowed_certificate(
    tmp_path: Path, sample_data_dir: Path, pki: dict[str, Issued]
) -> None:
    token = generate_token()
    host = await start_host(
        settings(
            tmp_path,
            sample_data_dir,
            pki,
            allowed_client_identities=["backend"],
            auth_token=token,
        )
    )
    try:
        assert (await list_sessions(host.address, pki, "backend"))[0] == grpc.StatusCode.OK
        assert (await list_sessions(host.address, pki, "alice", token))[0] == grpc.StatusCode.OK
        code, _ = await list_sessions(host.address, pki, "alice", "wrong")
        assert code == grpc.StatusCode.PERMISSION_DENIED
    finally:
        await host.shutdown()


def test_mtls_only_without_an_allow_list_refuses_to_start(
    tmp_path: Path, sample_data_dir: Path, pki: dict[str, Issued]
) -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith("KTRDR_HOST_")}
    env.update(
        {
            "PYTHONPATH": os.pathsep.join(sys.path),
            "KTRDR_HOST_TLS_CERT": str(pki["host"].cert),
            "KTRDR_HOST_TLS_KEY": str(pki["host"].key),
            "KTRDR_HOST_TLS_CA": str(pki["ca"].cert),
            "KTRDR_HOST_TLS_REQUIRE_CLIENT_CERT": "true",
        }
    )
    command = [sys.executable, "-m", "ktrdr.cli.main", "host", "serve", "--address"]
    command += ["127.0.0.1:0", "--spool-dir", str(tmp_path / "spool"), "--device", "cpu"]
    done = subprocess.run(command, env=env, capture_output=True, text=True, timeout=60, check=False)
    assert done.returncode == 1, done.stderr
    errors = [line for line in done.stderr.splitlines() if line.startswith("error:")]
    assert len(errors) == 1 and "KTRDR_HOST_ALLOWED_CLIENT_IDENTITIES" in errors[0], done.stderr
    assert "listening" not in done.stdout
