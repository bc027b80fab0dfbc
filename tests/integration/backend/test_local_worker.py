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


def _parent_of(pid: int) -> int:
    with open(f"/proc/{pid}/stat") as stat:
        return int(stat.read().rsplit(")", 1)[1].split()[1])


async def test_a_backend_that_trains_locally_preloads_its_warm_workers_at_start(
    tmp_path: Path, sample_data_dir: Path, tiny_strategy_yaml: str
) -> None:
    """Default settings (worker_preload auto, default mode local): the forkserver imports the
    training stack while the backend waits for work, and the first run is forked from it."""
    backend = await start_backend(tmp_path, sample_data_dir, real_worker=True)
    try:
        pool = backend.app.operations.workers
        forkserver = pool.forkserver_pid
        assert forkserver is not None, "no forkserver started with the backend"
        assert await asyncio.to_thread(pool.wait_ready, scaled(120))
        created = (
            await backend.stub.CreateTraining(
                pb.CreateTrainingRequest(strategy_yaml=tiny_strategy_yaml)
            )
        ).operation
        watch = backend.stub.WatchOperation(
            pb.WatchOperationRequest(operation_id=created.operation_id)
        )
        async for message in watch:
            if message.event.kind == common_pb2.PROGRESS_KIND_EPOCH:
                pid = backend.app.operations._runs[created.operation_id].executor.last_pid
                assert _parent_of(pid) == forkserver, "the first run did not fork"
            if message.status == pb.OPERATION_STATUS_COMPLETED:
                break
        assert pool.forkserver_pid == forkserver
    finally:
        await stop_backend(backend)


@pytest.mark.parametrize(
    ("settings", "why"),
    [
        ({"worker_preload": "first-run"}, "first-run asked for"),
        ({"default_mode": "host", "host_addresses": ["127.0.0.1:9"]}, "trains on hosts"),
    ],
)
async def test_a_backend_that_does_not_train_locally_imports_nothing_at_start(
    tmp_path: Path, sample_data_dir: Path, settings: dict, why: str
) -> None:
    backend = await start_backend(tmp_path, sample_data_dir, real_worker=True, **settings)
    try:
        assert backend.app.operations.workers.forkserver_pid is None, why
    finally:
        await stop_backend(backend)
