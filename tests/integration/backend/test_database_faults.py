"""A database that cannot be written for a moment (disk full, locked) while a host trains: the
operation goes on and its model is taken when it arrives (found by the chaos soak, seed 7:
the RUNNING write failed on a full disk, the follow-up ended with "internal error", the
operation FAILED and the host parked the model it delivered). A local run whose RUNNING write
fails on a full disk ends FAILED as disk full (RESOURCE_EXHAUSTED), not "internal error"
(seed 556036890)."""

from __future__ import annotations

import sqlite3

from ktrdr.backend.store import Store
from ktrdr.backend.tables import writes
from ktrdr.training.v1 import backend_pb2 as pb
from ktrdr.training.v1 import common_pb2
from tests.support.timing import async_wait_until
from tests.support.uploads import CPU, bundle_archive, deliver


async def test_a_failed_running_write_does_not_end_a_host_operation(
    host_backend, fake_host, tiny_bundle, tmp_path, tiny_strategy_yaml, monkeypatch
):
    b = host_backend
    written: list[str] = []

    def disk_full(self: Store, db: sqlite3.Connection, operation_id: str) -> bool:
        written.append(operation_id)
        raise sqlite3.OperationalError("database or disk is full")

    monkeypatch.setattr(Store, "mark_running", writes(disk_full))
    request = pb.CreateTrainingRequest(
        strategy_yaml=tiny_strategy_yaml, execution_mode=pb.EXECUTION_MODE_HOST, overrides=CPU
    )
    op = (await b.stub.CreateTraining(request)).operation
    await async_wait_until(
        lambda: written and op.operation_id in fake_host.fake.credentials,
        10,
        "the host to start the session and the RUNNING write to fail",
    )
    reply = await b.stub.GetOperation(pb.GetOperationRequest(operation_id=op.operation_id))
    assert reply.operation.status == pb.OPERATION_STATUS_PENDING, reply.operation

    delivered = await deliver(b, bundle_archive(tmp_path, tiny_bundle, "a.tar"), op.operation_id)
    assert delivered.model.version == 1
    reply = await b.stub.GetOperation(pb.GetOperationRequest(operation_id=op.operation_id))
    done = reply.operation
    assert done.status == pb.OPERATION_STATUS_COMPLETED, done
    assert done.result.delivery.status == common_pb2.DELIVERY_STATUS_DELIVERED


async def test_a_local_run_that_cannot_be_recorded_fails_as_disk_full(
    backend, tiny_strategy_yaml, monkeypatch
):
    def disk_full(self: Store, db: sqlite3.Connection, operation_id: str) -> bool:
        raise sqlite3.OperationalError("database or disk is full")

    monkeypatch.setattr(Store, "mark_running", writes(disk_full))
    request = pb.CreateTrainingRequest(
        strategy_yaml=tiny_strategy_yaml, execution_mode=pb.EXECUTION_MODE_LOCAL, overrides=CPU
    )
    op = (await backend.stub.CreateTraining(request)).operation

    async def failed() -> pb.Operation | None:
        reply = await backend.stub.GetOperation(
            pb.GetOperationRequest(operation_id=op.operation_id)
        )
        done = reply.operation
        return done if done.status == pb.OPERATION_STATUS_FAILED else None

    done = await async_wait_until(failed, 10, "the local run to fail")
    assert done.error.code == "RESOURCE_EXHAUSTED", done.error  # type: ignore[attr-defined]
    assert done.error.message.startswith("disk full:"), done.error  # type: ignore[attr-defined]
