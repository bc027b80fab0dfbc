"""The README's two-machine set-up on loopback: backend and host both serve mTLS, each
verifies the other against one CA and presents its own certificate, tokens on top; a
training in host mode goes out over one channel and the model comes back over the other."""

from __future__ import annotations

import asyncio
import shutil

import pytest

from ktrdr.security.channels import aio_channel
from ktrdr.security.selfsigned import issue, make_ca
from ktrdr.security.tls import ClientTLS
from ktrdr.security.tokens import generate_token, read_token_file
from ktrdr.training.v1 import backend_pb2 as pb
from ktrdr.training.v1 import backend_pb2_grpc
from ktrdr_host.server import start_host
from ktrdr_host.settings import HostSettings
from tests.support.backend import start_backend, stop_backend
from tests.support.timing import scaled

pytestmark = pytest.mark.skipif(shutil.which("openssl") is None, reason="needs openssl")


async def test_training_over_mtls_both_ways(tmp_path, sample_data_dir, tiny_strategy_yaml):
    ca = make_ca(tmp_path / "pki")
    backend_cert, host_cert = issue(ca, "backend"), issue(ca, "gpu1")
    alice = issue(ca, "alice", service=False)
    host_auth = generate_token()
    mtls = {"tls_ca": ca.cert, "tls_require_client_cert": True}
    host = await start_host(
        HostSettings(
            address="127.0.0.1:0",
            data_dir=sample_data_dir,
            spool_dir=tmp_path / "host" / "spool",
            device="cpu",
            tls_cert=host_cert.cert,
            tls_key=host_cert.key,
            auth_token=host_auth,  # type: ignore[arg-type]
            backend_tls_ca=ca.cert,
            backend_token_file=tmp_path / "backend" / "host.token",
            delivery_initial_backoff_s=0.05,
            delivery_max_backoff_s=0.2,
            shutdown_grace_s=1,
            **mtls,  # type: ignore[arg-type]
        )
    )
    (tmp_path / "backend" / "strategies").mkdir(parents=True)
    backend = await start_backend(
        tmp_path / "backend",
        sample_data_dir,
        host_addresses=[host.address],
        tls_cert=backend_cert.cert,
        tls_key=backend_cert.key,
        host_tls_ca=ca.cert,
        host_token=host_auth,
        **mtls,
    )
    try:
        token = read_token_file(tmp_path / "backend" / "admin.token")
        tls = ClientTLS.from_paths(ca.cert, alice.cert, alice.key)
        async with aio_channel(f"127.0.0.1:{backend.app.port}", tls=tls, token=token) as channel:
            stub = backend_pb2_grpc.BackendStub(channel)
            created = await stub.CreateTraining(
                pb.CreateTrainingRequest(
                    strategy_yaml=tiny_strategy_yaml, execution_mode=pb.EXECUTION_MODE_HOST
                )
            )
            assert created.operation.mode == pb.EXECUTION_MODE_HOST, created.operation.mode_reason
            events = [
                m
                async for m in stub.WatchOperation(
                    pb.WatchOperationRequest(operation_id=created.operation.operation_id),
                    timeout=scaled(120),
                )
            ]
            assert events[-1].status == pb.OPERATION_STATUS_COMPLETED, events[-1]
            assert events[-1].event.result.delivery.model.path.startswith("tiny_rsi/")
        # the backend's ordinary (plaintext, no certificate) channel is refused
        async with aio_channel(f"127.0.0.1:{backend.app.port}", token=token) as plain:
            with pytest.raises(Exception):  # noqa: B017 - UNAVAILABLE from the handshake
                await asyncio.wait_for(
                    backend_pb2_grpc.BackendStub(plain).ListStrategies(
                        pb.ListStrategiesRequest(), timeout=scaled(5)
                    ),
                    10,
                )
    finally:
        await stop_backend(backend)
        await host.shutdown()
