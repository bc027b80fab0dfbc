"""Many hosts behind one backend: real TrainingHost servers and a real backend on loopback.

Three hosts with two session slots each; their trainings are stand-ins that block until the
test releases them (the rest is real: capacity accounting, health, GetCapabilities, the
progress stream, and the delivery of a real model with SubmitResults). Six trainings spread
two per host; the seventh waits as PENDING with its reason and starts on the host whose slot
frees up; host mode never trains in the backend while hosts are busy; with every host down,
host mode falls back to local and says so, unless a GPU is required.
"""

from __future__ import annotations

import asyncio
import threading
import time
from collections import Counter
from collections.abc import AsyncIterator, Awaitable, Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

import grpc
import pytest
from pydantic import SecretStr

from ktrdr.errors import DataError
from ktrdr.storage import ModelBundle
from ktrdr.training.cancellation import CancellationToken
from ktrdr.training.progress import ProgressEvent, ProgressKind
from ktrdr.training.result import TrainingResult
from ktrdr.training.v1 import backend_pb2 as pb
from ktrdr.training.v1 import common_pb2
from ktrdr_host.server import RunningHost, start_host
from ktrdr_host.settings import HostSettings
from tests.support.backend import Backend, refused_address, start_backend, stop_backend

HOST = pb.EXECUTION_MODE_HOST
PENDING, RUNNING = pb.OPERATION_STATUS_PENDING, pb.OPERATION_STATUS_RUNNING
COMPLETED = pb.OPERATION_STATUS_COMPLETED
HOST_TOKEN = "many-hosts-test-token"  # what the backend presents to every host
SLOTS = 2


class HeldTraining:
    """Stands in for one session's training: reports a step, then blocks until released."""

    device_request = "cpu"

    def __init__(self, result: TrainingResult) -> None:
        self.result = result
        self.release = threading.Event()
        self.succeed = True

    def run(
        self,
        config: object,
        progress: Callable[[ProgressEvent], None] | None = None,
        cancel: CancellationToken | None = None,
        *,
        strategy_yaml: str | None = None,
    ) -> TrainingResult:
        if progress is not None:
            progress(ProgressEvent(ProgressKind.STEP_STARTED, step=1, step_name="load data"))
        while not self.release.wait(0.02):
            if cancel is not None:
                cancel.raise_if_cancelled()
        if not self.succeed:
            raise DataError("released by the test without a model")
        return self.result

    def finish(self, *, succeed: bool = True) -> None:
        self.succeed = succeed
        self.release.set()


@dataclass
class Host:
    running: RunningHost
    trainings: list[HeldTraining] = field(default_factory=list)

    @property
    def address(self) -> str:
        return self.running.address


@pytest.fixture
def trained(tiny_bundle: ModelBundle) -> TrainingResult:
    """What every released session returns: the tiny strategy's real model (trained once)."""
    return TrainingResult(
        bundle=tiny_bundle, metrics={}, summary={"test_accuracy": 0.5}, device="cpu", duration_s=1
    )


async def start_hosts(
    tmp_path: Path, sample_data_dir: Path, result: TrainingResult, count: int
) -> list[Host]:
    hosts: list[Host] = []
    for n in range(count):
        settings = HostSettings(
            address="127.0.0.1:0",
            data_dir=sample_data_dir,
            spool_dir=tmp_path / f"host{n}" / "spool",
            device="cpu",
            max_sessions=SLOTS,
            worker_spares=0,
            heartbeat_interval_s=0.5,
            delivery_initial_backoff_s=0.05,
            delivery_max_backoff_s=0.2,
            delivery_timeout_s=20,
            shutdown_grace_s=0,
            cancel_wait_s=1,
            auth_token=SecretStr(HOST_TOKEN),
            backend_token_file=tmp_path / "backend" / "host.token",  # the backend writes it
        )
        host = Host(None)  # type: ignore[arg-type]

        def factory(device: str, host: Host = host) -> HeldTraining:
            training = HeldTraining(result)
            host.trainings.append(training)
            return training

        host.running = await start_host(settings, executor_factory=factory)
        hosts.append(host)
    return hosts


@pytest.fixture
async def three_hosts(
    tmp_path: Path, sample_data_dir: Path, trained: TrainingResult
) -> AsyncIterator[list[Host]]:
    # Three hosts and a backend share this process: each held session occupies a thread of
    # the loop's default executor (min(32, CPUs + 4) threads), which would starve the rest.
    executor = ThreadPoolExecutor(max_workers=32, thread_name_prefix="many-hosts")
    asyncio.get_running_loop().set_default_executor(executor)
    hosts = await start_hosts(tmp_path, sample_data_dir, trained, 3)
    try:
        yield hosts
    finally:
        for host in hosts:
            for training in host.trainings:
                training.finish(succeed=False)
            await host.running.shutdown()


async def backend_for(tmp_path: Path, sample_data_dir: Path, addresses: list[str]) -> Backend:
    return await start_backend(
        tmp_path / "backend",
        sample_data_dir,
        host_addresses=addresses,
        host_token=HOST_TOKEN,
        host_queue_poll_s=0.5,
        worker_spares=0,
        health_check_timeout_s=5.0,  # a loaded machine must not make a host look down
    )


async def until(check: Callable[[], Awaitable[bool]], timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    while not await check():
        assert time.monotonic() < deadline, "condition not reached in time"
        await asyncio.sleep(0.02)


async def get(b: Backend, op_id: str) -> pb.Operation:
    return (await b.stub.GetOperation(pb.GetOperationRequest(operation_id=op_id))).operation


async def create(b: Backend, yaml_text: str, **fields: object) -> pb.Operation:
    request = pb.CreateTrainingRequest(
        strategy_yaml=yaml_text,
        execution_mode=HOST,
        overrides=common_pb2.TrainingOverrides(device="cpu"),
        **fields,
    )
    return (await b.stub.CreateTraining(request)).operation


async def test_six_spread_by_capacity_the_seventh_waits_and_runs_when_a_slot_frees(
    tmp_path, sample_data_dir, tiny_strategy_yaml, three_hosts
):
    hosts = three_hosts
    addresses = [h.address for h in hosts]
    b = await backend_for(tmp_path, sample_data_dir, addresses)
    try:
        # a burst of six: decided concurrently, never two on one slot
        six = await asyncio.gather(*(create(b, tiny_strategy_yaml) for _ in range(6)))
        assert Counter(op.host_address for op in six) == dict.fromkeys(addresses, SLOTS)
        assert all(op.mode == HOST and "is healthy" in op.mode_reason for op in six)

        async def all_running() -> bool:
            ops = [await get(b, op.operation_id) for op in six]
            return all(op.status == RUNNING for op in ops)

        await until(all_running)
        assert [len(h.trainings) for h in hosts] == [SLOTS] * 3

        seventh = await create(b, tiny_strategy_yaml)
        assert (seventh.status, seventh.mode, seventh.host_address) == (PENDING, HOST, "")
        assert seventh.mode_reason.startswith("host: queued, 3 hosts busy (")
        assert all(f"{a} 2/2 sessions" in seventh.mode_reason for a in addresses)
        waiting = await get(b, seventh.operation_id)
        assert waiting.queue_position == 1
        assert waiting.queue_reason == "3 hosts busy, 1 queued (this one 1st)"
        assert waiting.last_event.message == "queued: 3 hosts busy, 1 queued (this one 1st)"
        watch = b.stub.WatchOperation(pb.WatchOperationRequest(operation_id=seventh.operation_id))
        first = await watch.read()
        assert first.status == PENDING and first.event.message.startswith("queued: ")

        # host mode never trains in the backend because hosts are busy
        assert b.app.operations._runs == {}
        assert sum(len(h.trainings) for h in hosts) == 6

        # one training on the second host ends with a model: its slot goes to the seventh
        freed = hosts[1]
        freed.trainings[0].finish()
        freed_op = next(op for op in six if op.host_address == freed.address)
        await until(lambda: _status_is(b, seventh.operation_id, RUNNING))
        placed = await get(b, seventh.operation_id)
        assert placed.host_address == freed.address
        assert placed.mode_reason.startswith(f"host: host {freed.address} is healthy")
        assert "s in the queue)" in placed.mode_reason
        assert (placed.queue_position, placed.queue_reason) == (0, "")
        assert len(freed.trainings) == SLOTS + 1

        # the seventh's own model arrives like any other
        freed.trainings[-1].finish()
        events = [first]
        async for message in watch:
            events.append(message)
        assert events[-1].status == COMPLETED
        messages = [m.event.message for m in events]
        assert any(m.startswith(f"host: host {freed.address} is healthy") for m in messages)
        done = await get(b, seventh.operation_id)
        assert done.status == COMPLETED and done.result.delivery.model.version >= 1
        assert (await get(b, freed_op.operation_id)).status in (RUNNING, COMPLETED)
        assert b.app.operations._runs == {}  # still nothing trained locally
    finally:
        await stop_backend(b)


async def _status_is(b: Backend, op_id: str, status: int) -> bool:
    return (await get(b, op_id)).status == status


async def test_host_mode_with_every_host_busy_never_trains_locally(
    tmp_path, sample_data_dir, tiny_strategy_yaml, three_hosts
):
    b = await backend_for(tmp_path, sample_data_dir, [h.address for h in three_hosts])
    try:
        placed = [await create(b, tiny_strategy_yaml) for _ in range(6)]
        queued = [await create(b, tiny_strategy_yaml) for _ in range(3)]
        assert [op.host_address == "" for op in placed + queued] == [False] * 6 + [True] * 3
        positions = [(await get(b, op.operation_id)).queue_position for op in queued]
        assert positions == [1, 2, 3]
        assert (await get(b, queued[2].operation_id)).queue_reason == (
            "3 hosts busy, 3 queued (this one 3rd)"
        )
        await asyncio.sleep(1.2)  # two polls of the hosts: the queue holds, nothing local
        for op in queued:
            seen = await get(b, op.operation_id)
            assert (seen.status, seen.mode, seen.fallback) == (PENDING, HOST, False)
        assert b.app.operations._runs == {}
        # a training that fails frees its slot just the same: the first in line takes it
        three_hosts[2].trainings[0].finish(succeed=False)
        await until(lambda: _status_is(b, queued[0].operation_id, RUNNING))
        assert (await get(b, queued[0].operation_id)).host_address == three_hosts[2].address
        assert [(await get(b, op.operation_id)).queue_position for op in queued[1:]] == [1, 2]
    finally:
        await stop_backend(b)


async def test_every_host_down_falls_back_and_says_so_unless_a_gpu_is_required(
    tmp_path, sample_data_dir, tiny_strategy_yaml
):
    down = [refused_address() for _ in range(3)]
    b = await backend_for(tmp_path, sample_data_dir, down)
    try:
        op = await create(b, tiny_strategy_yaml)
        assert op.mode == pb.EXECUTION_MODE_LOCAL and op.fallback
        assert op.mode_reason.startswith("host: fell back to local, no training host is healthy")
        assert all(f"host {a}: not reachable" in op.mode_reason for a in down)
        await b.stub.CancelOperation(pb.CancelOperationRequest(operation_id=op.operation_id))
        with pytest.raises(grpc.aio.AioRpcError) as info:
            await create(b, tiny_strategy_yaml, require_gpu=True)
        assert info.value.code() == grpc.StatusCode.FAILED_PRECONDITION
        assert "require_gpu" in (info.value.details() or "")
    finally:
        await stop_backend(b)
