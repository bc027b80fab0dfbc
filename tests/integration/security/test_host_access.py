"""The host serves only its backend, delivers only to allowed targets, and a model spooled
with its upload credential is still delivered after a host restart."""

from __future__ import annotations

import asyncio
from pathlib import Path

import grpc
import pytest

from ktrdr.security.channels import aio_channel
from ktrdr.training.result import TrainingResult
from ktrdr.training.v1 import backend_pb2 as pb
from ktrdr.training.v1 import host_pb2, host_pb2_grpc
from ktrdr.transfer import sha256_file
from ktrdr_host.delivery import summarize_bundle
from ktrdr_host.server import start_host
from ktrdr_host.settings import HostSettings
from ktrdr_host.spool import Spool
from tests.support.backend import start_backend, start_fake_host, stop_backend


def settings(tmp_path: Path, sample_data_dir: Path, **more: object) -> HostSettings:
    return HostSettings(
        address="127.0.0.1:0",
        data_dir=sample_data_dir,
        spool_dir=tmp_path / "host" / "spool",
        device="cpu",
        delivery_initial_backoff_s=0.05,
        delivery_max_backoff_s=0.2,
        shutdown_grace_s=1,
        worker_preload="first-run",  # the training stack with the first session, if any
        **more,  # type: ignore[arg-type]
    )


async def code_of(call) -> grpc.StatusCode:  # type: ignore[no-untyped-def]
    try:
        result = call
        if hasattr(result, "__aiter__"):
            async for _ in result:
                pass
        else:
            await result
    except grpc.aio.AioRpcError as exc:
        return exc.code()
    return grpc.StatusCode.OK


async def test_strangers_and_foreign_results_targets_are_refused(
    tmp_path, sample_data_dir, tiny_strategy_yaml
) -> None:
    host = await start_host(
        settings(tmp_path, sample_data_dir, allowed_results_targets=["backend.lan:50052"])
    )
    assert host.token and (tmp_path / "host" / "auth.token").read_text().strip() == host.token
    try:
        calls = {
            "StartTraining": lambda s: s.StartTraining(
                host_pb2.StartTrainingRequest(
                    session_id="s", strategy_yaml=tiny_strategy_yaml, results_target="127.0.0.1:1"
                )
            ),
            "WatchSession": lambda s: s.WatchSession(host_pb2.WatchSessionRequest(session_id="s")),
            "GetSession": lambda s: s.GetSession(host_pb2.GetSessionRequest(session_id="s")),
            "ListSessions": lambda s: s.ListSessions(host_pb2.ListSessionsRequest()),
            "CancelTraining": lambda s: s.CancelTraining(
                host_pb2.CancelTrainingRequest(session_id="s")
            ),
        }
        for token in (None, "ktrdr_wrong-token-of-some-length"):
            async with aio_channel(host.address, token=token) as channel:
                stub = host_pb2_grpc.TrainingHostStub(channel)
                for name, make in calls.items():
                    code = await code_of(make(stub))
                    assert code == grpc.StatusCode.UNAUTHENTICATED, (token, name, code)
                caps = await stub.GetCapabilities(host_pb2.GetCapabilitiesRequest())
                assert caps.max_sessions == 1  # open: the backend's probe
        async with aio_channel(host.address, token=host.token) as channel:
            stub = host_pb2_grpc.TrainingHostStub(channel)
            for target in (
                "10.0.0.5:50052",
                "unix:/tmp/backend.sock",
                "dns:evil.example:1",
                "127.0.0.1:50052",
                "backend.lan:50053",
            ):
                request = host_pb2.StartTrainingRequest(
                    session_id="s", strategy_yaml=tiny_strategy_yaml, results_target=target
                )
                with pytest.raises(grpc.aio.AioRpcError) as refused:
                    async for _ in stub.StartTraining(request):
                        pass
                assert refused.value.code() == grpc.StatusCode.PERMISSION_DENIED, target
                assert "allow-list" in (refused.value.details() or "")
            assert (await stub.ListSessions(host_pb2.ListSessionsRequest())).sessions == []
    finally:
        await host.shutdown()


async def test_default_allow_list_is_loopback(tmp_path, sample_data_dir, tiny_strategy_yaml):
    host = await start_host(settings(tmp_path, sample_data_dir))
    try:
        async with aio_channel(host.address, token=host.token) as channel:
            stub = host_pb2_grpc.TrainingHostStub(channel)
            request = host_pb2.StartTrainingRequest(
                session_id="s", strategy_yaml=tiny_strategy_yaml, results_target="10.1.2.3:50052"
            )
            with pytest.raises(grpc.aio.AioRpcError) as refused:
                async for _ in stub.StartTraining(request):
                    pass
            assert refused.value.code() == grpc.StatusCode.PERMISSION_DENIED
    finally:
        await host.shutdown()


async def test_restarted_host_delivers_its_spooled_model_with_the_credential(
    tmp_path, sample_data_dir, tiny_strategy_yaml, tiny_result: TrainingResult
) -> None:
    """The backend made the operation (through a stand-in host that kept its credential);
    the model sits in a real host's spool with that credential, as after a crash; the host
    starts and delivers it, and the backend accepts it as the operation's model."""
    fake = await start_fake_host()
    (tmp_path / "backend" / "strategies").mkdir(parents=True)
    backend = await start_backend(
        tmp_path / "backend", sample_data_dir, host_addresses=[fake.address]
    )
    try:
        created = await backend.stub.CreateTraining(
            pb.CreateTrainingRequest(
                strategy_yaml=tiny_strategy_yaml, execution_mode=pb.EXECUTION_MODE_HOST
            )
        )
        op_id = created.operation.operation_id
        for _ in range(200):
            if op_id in fake.fake.credentials:
                break
            await asyncio.sleep(0.02)
        credential = fake.fake.credentials[op_id]
        spool_dir = tmp_path / "host" / "spool"
        entry = Spool(spool_dir).put(
            tiny_result.bundle,
            session_id=op_id,
            results_target=f"127.0.0.1:{backend.app.port}",
            device="cpu",
            duration_s=tiny_result.duration_s,
            metrics={},
            summary=summarize_bundle(tiny_result, "cpu"),
            upload_credential=credential,
        )
        sidecar = spool_dir / f"{entry.key}.json"
        assert sidecar.stat().st_mode & 0o077 == 0  # the credential is not world-readable
        fake.fake.announced[op_id] = (sha256_file(entry.archive), entry.size_bytes)
        token = (tmp_path / "backend" / "host.token").read_text().strip()
        host = await start_host(settings(tmp_path, sample_data_dir, backend_token=token))
        try:
            for _ in range(500):
                op = await backend.stub.GetOperation(pb.GetOperationRequest(operation_id=op_id))
                if op.operation.status == pb.OPERATION_STATUS_COMPLETED:
                    break
                await asyncio.sleep(0.02)
            assert op.operation.status == pb.OPERATION_STATUS_COMPLETED, op.operation
            assert op.operation.result.bundle_sha256 == entry.sha256
        finally:
            await host.shutdown()
    finally:
        await stop_backend(backend)
        await fake.server.stop(0)
