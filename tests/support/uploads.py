"""Deliveries to a backend as a training host makes them: a host operation on the fake host,
a bundle archive, and SubmitResults announced and authorised the way the real host does."""

from __future__ import annotations

import hashlib
from pathlib import Path

import grpc
import grpc.aio

from ktrdr.security.channels import aio_channel
from ktrdr.storage import ModelBundle
from ktrdr.training.v1 import backend_pb2 as pb
from ktrdr.training.v1 import backend_pb2_grpc, common_pb2
from ktrdr.transfer import send_results
from tests.support.backend import Backend
from tests.support.timing import async_wait_until, scaled

CPU = common_pb2.TrainingOverrides(device="cpu")


async def host_operation(b: Backend, yaml_text: str) -> pb.Operation:
    """A host-mode operation, once the fake host has started it (RUNNING, credential given)."""
    op = (
        await b.stub.CreateTraining(
            pb.CreateTrainingRequest(
                strategy_yaml=yaml_text, execution_mode=pb.EXECUTION_MODE_HOST, overrides=CPU
            )
        )
    ).operation
    assert op.mode == pb.EXECUTION_MODE_HOST
    fake = b.fake
    assert fake is not None

    async def started() -> bool:
        request = pb.GetOperationRequest(operation_id=op.operation_id)
        status = (await b.stub.GetOperation(request)).operation.status
        return status == pb.OPERATION_STATUS_RUNNING and op.operation_id in fake.credentials

    await async_wait_until(started, 10, "the fake host to start the operation")
    return op


def bundle_archive(tmp_path: Path, bundle: ModelBundle, name: str, **meta: object) -> Path:
    """``bundle`` as a transfer archive in ``tmp_path``, with metadata entries replaced."""
    path = tmp_path / name
    type(bundle)(weights=bundle.weights, metadata={**bundle.metadata, **meta}).to_archive(path)
    return path


def announce(b: Backend, op_id: str, path: Path) -> None:
    """Make the fake host report ``path`` as the finished model of ``op_id``."""
    data = path.read_bytes()
    assert b.fake is not None
    b.fake.announced[op_id] = (hashlib.sha256(data).hexdigest(), len(data))


async def deliver(
    b: Backend, path: Path, op_id: str, strategy: str = "tiny_rsi"
) -> pb.SubmitResultsResponse:
    """SubmitResults of ``path`` as the fake host would: announced, with its credential."""
    credential = ""
    if b.fake is not None:
        announce(b, op_id, path)
        credential = b.fake.credentials.get(op_id, "")
    return await send_results(
        b.stub,
        path,
        session_id=op_id,
        strategy_name=strategy,
        timeout_s=scaled(60),  # a bound: the first bundle read imports torch
        upload_credential=credential,
    )


def host_stub(b: Backend) -> tuple[grpc.aio.Channel, backend_pb2_grpc.BackendStub]:
    """A channel with the backend's local ``host``-role token, as a host would present."""
    token = (b.settings.data_dir / "host.token").read_text().strip()
    channel = aio_channel(f"127.0.0.1:{b.app.port}", token=token)
    return channel, backend_pb2_grpc.BackendStub(channel)


async def status_of(call) -> grpc.StatusCode:  # type: ignore[no-untyped-def]
    try:
        await call
    except grpc.aio.AioRpcError as exc:
        return exc.code()
    return grpc.StatusCode.OK
