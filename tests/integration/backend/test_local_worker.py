"""Local runs train in worker processes: a killed worker fails its operation truthfully."""

from __future__ import annotations

import asyncio
import os
import time
from pathlib import Path

import pytest

from ktrdr.training.v1 import backend_pb2 as pb
from ktrdr.training.v1 import common_pb2
from ktrdr.worker import ProcessExecutor
from tests.support.backend import start_backend, stop_backend
from tests.support.timing import scaled

pytestmark = pytest.mark.integration


async def test_a_killed_local_worker_fails_its_operation(
    tmp_path: Path, sample_data_dir: Path, tiny_strategy_yaml: str
) -> None:
    backend = await start_backend(tmp_path, sample_data_dir, real_worker=True)
    try:
        long = tiny_strategy_yaml.replace("epochs: 4", "epochs: 400")
        created = (
            await backend.stub.CreateTraining(pb.CreateTrainingRequest(strategy_yaml=long))
        ).operation
        watch = backend.stub.WatchOperation(
            pb.WatchOperationRequest(operation_id=created.operation_id)
        )
        async for message in watch:
            if message.event.kind == common_pb2.PROGRESS_KIND_EPOCH:
                break
        executor = backend.app.operations._runs[created.operation_id].executor
        assert isinstance(executor, ProcessExecutor)
        pid = executor.last_pid
        assert pid != os.getpid()
        os.kill(pid, 9)
        rest = [m async for m in watch]
        assert rest[-1].status == pb.OPERATION_STATUS_FAILED
        error = rest[-1].event.error
        assert error.code == "ABORTED"
        assert f"worker process (pid {pid}) died" in error.message
        assert "SIGKILL" in error.message
        operation = (
            await backend.stub.GetOperation(
                pb.GetOperationRequest(operation_id=created.operation_id)
            )
        ).operation
        assert operation.status == pb.OPERATION_STATUS_FAILED
        deadline = time.monotonic() + scaled(10)
        while os.path.exists(f"/proc/{pid}") and time.monotonic() < deadline:
            await asyncio.sleep(0.05)
        assert not os.path.exists(f"/proc/{pid}"), "the dead worker was not reaped"
    finally:
        await stop_backend(backend)
