"""Admission control against a real backend: a bounded queue of pending operations."""

from __future__ import annotations

import contextlib

import grpc

from ktrdr.training.v1 import backend_pb2 as pb
from tests.support.backend import start_backend, stop_backend


async def test_pending_operations_are_bounded(tmp_path, sample_data_dir, tiny_strategy_yaml):
    (tmp_path / "strategies").mkdir()
    b = await start_backend(tmp_path, sample_data_dir, local_concurrency=1, max_pending=2)
    slow = tiny_strategy_yaml.replace("epochs: 4", "epochs: 400")
    request = pb.CreateTrainingRequest(strategy_yaml=slow, execution_mode=pb.EXECUTION_MODE_LOCAL)
    try:
        created = [(await b.stub.CreateTraining(request)).operation for _ in range(2)]
        # both may still be PENDING (the first one starts in the background): more are refused
        # until fewer than two wait
        refused = None
        for _ in range(5):
            try:
                created.append((await b.stub.CreateTraining(request)).operation)
            except grpc.aio.AioRpcError as exc:
                refused = exc
                break
        assert refused is not None and refused.code() == grpc.StatusCode.RESOURCE_EXHAUSTED
        assert "operations are queued (limit 2" in (refused.details() or "")
        pending = await b.stub.ListOperations(
            pb.ListOperationsRequest(status=pb.OPERATION_STATUS_PENDING)
        )
        assert len(pending.operations) == 2
        config = (await b.stub.GetTrainingConfig(pb.GetTrainingConfigRequest())).config
        assert config.max_pending == 2 and config.auth_required
    finally:
        for op in created:
            with contextlib.suppress(grpc.aio.AioRpcError):
                await b.stub.CancelOperation(
                    pb.CancelOperationRequest(operation_id=op.operation_id)
                )
        await stop_backend(b)
