"""Every host operation is bound to its upload credential from the moment it exists.

A real backend (gRPC on loopback, SQLite) with a fake host whose only slot is taken, so the
host operation waits in the backend's host queue (PENDING, no host yet). A forged bundle sent
for it with a valid host-role token is refused; once placed, the host receives the credential
minted when the operation was created. An operation left without a credential by an older
backend is refused with a precise status.
"""

from __future__ import annotations

import sqlite3
from pathlib import Path

import grpc
import pytest

from ktrdr.security.tokens import hash_token
from ktrdr.storage import ModelBundle
from ktrdr.training.v1 import backend_pb2 as pb
from ktrdr.transfer import send_results
from tests.support.backend import Backend, start_backend, stop_backend
from tests.support.timing import async_wait_until
from tests.support.uploads import bundle_archive, host_stub, status_of


@pytest.fixture
async def busy_host_backend(tmp_path, sample_data_dir, fake_host):
    fake_host.fake.active_sessions = 1  # its one slot is taken: host operations queue
    b = await start_backend(
        tmp_path,
        sample_data_dir,
        host_addresses=[fake_host.address],
        host_queue_poll_s=0.1,
    )
    b.fake = fake_host.fake
    yield b
    await stop_backend(b)


async def queued_operation(b: Backend, yaml_text: str) -> pb.Operation:
    request = pb.CreateTrainingRequest(
        strategy_yaml=yaml_text,
        execution_mode=pb.EXECUTION_MODE_HOST,
        overrides={"device": "cpu"},  # type: ignore[arg-type]
    )
    op = (await b.stub.CreateTraining(request)).operation
    assert op.status == pb.OPERATION_STATUS_PENDING and "queued" in op.mode_reason, op
    return op


async def test_forged_bundle_for_a_queued_operation_is_refused(
    busy_host_backend: Backend, tiny_bundle: ModelBundle, tmp_path: Path, tiny_strategy_yaml: str
) -> None:
    b = busy_host_backend
    op = await queued_operation(b, tiny_strategy_yaml)
    minted = b.app.operations.store.get_operation(op.operation_id).upload_credential_sha256
    assert minted is not None  # bound at creation, before any host is chosen
    forged = bundle_archive(tmp_path, tiny_bundle, "forged.tar", metrics={"test_accuracy": 0.999})
    channel, stub = host_stub(b)
    async with channel:
        for given in ("", "guess"):
            code = await status_of(
                send_results(
                    stub,
                    forged,
                    session_id=op.operation_id,
                    strategy_name="tiny_rsi",
                    timeout_s=10,
                    upload_credential=given,
                )
            )
            assert code == grpc.StatusCode.PERMISSION_DENIED, (given, code)
    still = await b.stub.GetOperation(pb.GetOperationRequest(operation_id=op.operation_id))
    assert still.operation.status == pb.OPERATION_STATUS_PENDING
    assert b.app.operations.store.models() == []

    # the slot frees up: the host gets the credential minted at creation, unchanged
    assert b.fake is not None
    b.fake.active_sessions = 0
    fake = b.fake
    await async_wait_until(
        lambda: op.operation_id in fake.credentials, 10, "the host to be given the operation"
    )
    given = b.fake.credentials[op.operation_id]
    assert hash_token(given) == minted
    placed = b.app.operations.store.get_operation(op.operation_id)
    assert placed.upload_credential_sha256 == minted


async def test_operation_without_a_credential_is_refused_precisely(
    busy_host_backend: Backend, tiny_bundle: ModelBundle, tmp_path: Path, tiny_strategy_yaml: str
) -> None:
    b = busy_host_backend
    op = await queued_operation(b, tiny_strategy_yaml)
    # as an older backend left it: no credential at all
    with sqlite3.connect(b.settings.db_path) as db:
        db.execute(
            "UPDATE operations SET upload_credential_sha256 = NULL WHERE id = ?",
            (op.operation_id,),
        )
    bundle = bundle_archive(tmp_path, tiny_bundle, "any.tar")
    channel, stub = host_stub(b)
    async with channel:
        with pytest.raises(grpc.aio.AioRpcError) as refused:
            await send_results(
                stub, bundle, session_id=op.operation_id, strategy_name="tiny_rsi", timeout_s=10
            )
    assert refused.value.code() == grpc.StatusCode.PERMISSION_DENIED
    assert "has no upload credential" in (refused.value.details() or "")
    assert b.app.operations.store.models() == []
