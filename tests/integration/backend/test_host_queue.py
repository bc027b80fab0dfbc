"""The host queue through a real backend and scripted hosts on loopback: busy hosts make host
requests wait as PENDING (never train locally), bounded, cancellable, re-queued after a restart,
and decided by the request rule when every host is gone."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable

import grpc
import pytest

from ktrdr.backend.execution.host_operations import MAX_HOST_REFUSALS
from ktrdr.training.v1 import backend_pb2 as pb
from ktrdr.training.v1 import common_pb2, host_pb2
from tests.support.backend import FakeHost, start_backend, start_fake_host, stop_backend

HOST, AUTO = pb.EXECUTION_MODE_HOST, pb.EXECUTION_MODE_AUTO
CPU = common_pb2.TrainingOverrides(device="cpu")
PENDING, RUNNING = pb.OPERATION_STATUS_PENDING, pb.OPERATION_STATUS_RUNNING


class RefusingHost(FakeHost):
    """Reports a free slot, then refuses every session as full (another backend's count)."""

    async def StartTraining(self, request, context):  # type: ignore[no-untyped-def]
        self.started.append(request.session_id)
        await context.abort(grpc.StatusCode.RESOURCE_EXHAUSTED, "the host is at capacity")
        yield  # pragma: no cover - makes this an async generator like the real one


async def until(check: Callable[[], Awaitable[bool]], timeout: float = 20.0) -> None:
    deadline = time.monotonic() + timeout
    while not await check():
        assert time.monotonic() < deadline, "condition not reached in time"
        await asyncio.sleep(0.02)


async def get(b, op_id: str) -> pb.Operation:
    return (await b.stub.GetOperation(pb.GetOperationRequest(operation_id=op_id))).operation


async def create(b, yaml_text: str, mode: int = HOST, **fields: object) -> pb.Operation:
    request = pb.CreateTrainingRequest(
        strategy_yaml=yaml_text, execution_mode=mode, overrides=CPU, **fields
    )
    return (await b.stub.CreateTraining(request)).operation


async def has_status(b, op_id: str, status: int) -> bool:
    return (await get(b, op_id)).status == status


@pytest.fixture
async def busy_host():
    host = await start_fake_host(FakeHost(max_sessions=1, active_sessions=1))
    yield host
    await host.server.stop(0)


async def queue_backend(tmp_path, sample_data_dir, *addresses: str, **settings: object):
    return await start_backend(
        tmp_path,
        sample_data_dir,
        host_addresses=list(addresses),
        host_queue_poll_s=0.05,
        worker_spares=0,
        health_check_timeout_s=5.0,  # a loaded machine must not make a host look down
        **settings,
    )


async def test_busy_hosts_make_a_host_request_wait_and_it_starts_when_a_slot_frees(
    tmp_path, sample_data_dir, tiny_strategy_yaml, busy_host
):
    b = await queue_backend(tmp_path, sample_data_dir, busy_host.address)
    try:
        op = await create(b, tiny_strategy_yaml)
        assert (op.status, op.mode, op.host_address) == (PENDING, HOST, "")
        assert op.mode_reason.startswith("host: queued, 1 host busy (")
        assert "1/1 sessions" in op.mode_reason and not op.fallback
        seen = await get(b, op.operation_id)
        assert seen.queue_position == 1
        assert seen.queue_reason == "1 host busy, 1 queued (this one 1st)"
        assert "queued: 1 host busy" in seen.last_event.message
        # it waits: several rounds later it is still queued, nothing ran anywhere
        await asyncio.sleep(0.3)  # let the dispatcher ask the busy host a few times
        assert (await get(b, op.operation_id)).status == PENDING
        assert busy_host.fake.started == [] and b.app.operations._runs == {}
        busy_host.fake.active_sessions = 0  # the host's other session ended
        await until(lambda: has_status(b, op.operation_id, RUNNING))
        placed = await get(b, op.operation_id)
        assert busy_host.fake.started == [op.operation_id]
        assert (placed.mode, placed.host_address) == (HOST, busy_host.address)
        assert placed.mode_reason.startswith(f"host: host {busy_host.address} is healthy")
        assert "in the queue)" in placed.mode_reason
        assert (placed.queue_position, placed.queue_reason) == (0, "")
        assert busy_host.fake.credentials[op.operation_id]  # a fresh upload credential
    finally:
        await stop_backend(b)


async def test_the_queue_is_bounded(tmp_path, sample_data_dir, tiny_strategy_yaml, busy_host):
    b = await queue_backend(tmp_path, sample_data_dir, busy_host.address, max_host_queue=1)
    try:
        await create(b, tiny_strategy_yaml)
        with pytest.raises(grpc.aio.AioRpcError) as info:
            await create(b, tiny_strategy_yaml)
        assert info.value.code() == grpc.StatusCode.RESOURCE_EXHAUSTED
        details = info.value.details() or ""
        assert "1 host operations already wait" in details
        assert "KTRDR_BACKEND_MAX_HOST_QUEUE" in details and "--mode local" in details
        config = (await b.stub.GetTrainingConfig(pb.GetTrainingConfigRequest())).config
        assert config.max_host_queue == 1
    finally:
        await stop_backend(b)


async def test_cancelling_a_queued_operation_takes_it_out_of_the_queue(
    tmp_path, sample_data_dir, tiny_strategy_yaml, busy_host
):
    b = await queue_backend(tmp_path, sample_data_dir, busy_host.address)
    try:
        first = await create(b, tiny_strategy_yaml)
        second = await create(b, tiny_strategy_yaml)
        assert "1 queued ahead" in second.mode_reason
        assert (await get(b, second.operation_id)).queue_position == 2
        response = await b.stub.CancelOperation(
            pb.CancelOperationRequest(operation_id=first.operation_id, reason="not needed")
        )
        assert response.status == pb.OPERATION_STATUS_CANCELLED
        assert response.operation.error.message == "not needed"
        assert response.operation.queue_position == 0
        moved = await get(b, second.operation_id)
        assert moved.queue_position == 1
        assert moved.queue_reason.endswith("1 queued (this one 1st)")
        busy_host.fake.active_sessions = 0
        await until(lambda: has_status(b, second.operation_id, RUNNING))
        assert busy_host.fake.started == [second.operation_id]  # the cancelled one never ran
    finally:
        await stop_backend(b)


async def test_queued_operations_are_queued_again_after_a_restart(
    tmp_path, sample_data_dir, tiny_strategy_yaml, busy_host
):
    b = await queue_backend(tmp_path, sample_data_dir, busy_host.address)
    ids = [(await create(b, tiny_strategy_yaml)).operation_id for _ in range(2)]
    await stop_backend(b)
    b = await queue_backend(tmp_path, sample_data_dir, busy_host.address)
    try:
        again = [await get(b, op_id) for op_id in ids]
        assert [(o.status, o.mode, o.queue_position) for o in again] == [
            (PENDING, HOST, 1),
            (PENDING, HOST, 2),
        ]
        busy_host.fake.max_sessions = 2
        busy_host.fake.active_sessions = 1  # one slot: the first in line gets it
        await until(lambda: has_status(b, ids[0], RUNNING))
        assert busy_host.fake.started == [ids[0]]
        assert (await get(b, ids[1])).queue_position == 1
    finally:
        await stop_backend(b)


async def test_a_queued_operation_falls_back_to_local_when_every_host_is_gone(
    tmp_path, sample_data_dir, tiny_strategy_yaml, busy_host
):
    b = await queue_backend(tmp_path, sample_data_dir, busy_host.address)
    try:
        op = await create(b, tiny_strategy_yaml)
        await busy_host.set_serving(False)

        async def fell_back() -> bool:
            return (await get(b, op.operation_id)).mode == pb.EXECUTION_MODE_LOCAL

        await until(fell_back)
        local = await get(b, op.operation_id)
        assert local.fallback and local.host_address == ""
        assert "fell back to local after" in local.mode_reason
        assert "no training host is healthy" in local.mode_reason
        assert "NOT_SERVING" in local.mode_reason
        try:  # the local run may be over already (the in-thread trainer is quick)
            await b.stub.CancelOperation(pb.CancelOperationRequest(operation_id=op.operation_id))
        except grpc.aio.AioRpcError as exc:
            assert exc.code() == grpc.StatusCode.FAILED_PRECONDITION, exc.details()
            assert "already finished" in (exc.details() or ""), exc.details()
    finally:
        await stop_backend(b)


async def test_a_queued_gpu_operation_fails_when_no_gpu_host_is_left(
    tmp_path, sample_data_dir, tiny_strategy_yaml
):
    gpu = await start_fake_host(
        FakeHost(device_type=host_pb2.DEVICE_TYPE_CUDA, max_sessions=1, active_sessions=1)
    )
    b = await queue_backend(tmp_path, sample_data_dir, gpu.address)
    try:
        op = await create(b, tiny_strategy_yaml, require_gpu=True)
        assert op.status == PENDING and op.mode == HOST
        await gpu.set_serving(False)
        await until(lambda: has_status(b, op.operation_id, pb.OPERATION_STATUS_FAILED))
        failed = await get(b, op.operation_id)
        assert failed.error.code == "FAILED_PRECONDITION"
        assert "no healthy training host with a GPU is left" in failed.error.message
        assert failed.mode == HOST and not failed.fallback  # it never ran locally
    finally:
        await stop_backend(b)
        await gpu.server.stop(0)


async def test_a_host_that_refuses_as_full_sends_the_operation_back_then_it_fails(
    tmp_path, sample_data_dir, tiny_strategy_yaml
):
    refusing = await start_fake_host(RefusingHost(max_sessions=1))
    b = await queue_backend(tmp_path, sample_data_dir, refusing.address)
    try:
        op = await create(b, tiny_strategy_yaml)
        assert op.host_address == refusing.address  # placed at once: it reported a free slot
        await until(lambda: has_status(b, op.operation_id, pb.OPERATION_STATUS_FAILED))
        failed = await get(b, op.operation_id)
        assert failed.error.code == "RESOURCE_EXHAUSTED"
        assert (
            "is full" in failed.error.message and "the host is at capacity" in failed.error.message
        )
        assert len(refusing.fake.started) == MAX_HOST_REFUSALS + 1
    finally:
        await stop_backend(b)
        await refusing.server.stop(0)


async def test_auto_keeps_its_rule_and_runs_locally_beside_busy_gpu_hosts(
    tmp_path, sample_data_dir, tiny_strategy_yaml
):
    gpu = await start_fake_host(
        FakeHost(device_type=host_pb2.DEVICE_TYPE_CUDA, max_sessions=1, active_sessions=1)
    )
    b = await queue_backend(tmp_path, sample_data_dir, gpu.address)
    try:
        op = await create(b, tiny_strategy_yaml, mode=AUTO)
        assert op.mode == pb.EXECUTION_MODE_LOCAL and not op.fallback
        assert "no healthy host with a GPU and a free slot" in op.mode_reason
        await b.stub.CancelOperation(pb.CancelOperationRequest(operation_id=op.operation_id))
        with pytest.raises(grpc.aio.AioRpcError) as info:
            await create(b, tiny_strategy_yaml, mode=AUTO, require_gpu=True)
        assert info.value.code() == grpc.StatusCode.FAILED_PRECONDITION
    finally:
        await stop_backend(b)
        await gpu.server.stop(0)


async def test_ktrdr_train_says_it_waits_for_a_host_and_never_runs_locally(
    tmp_path, sample_data_dir, tiny_strategy_yaml, busy_host, capsys
):
    import json

    from ktrdr.cli.main import main
    from ktrdr.security.tokens import read_token_file

    b = await queue_backend(tmp_path, sample_data_dir, busy_host.address)
    strategy = tmp_path / "tiny.yaml"
    strategy.write_text(tiny_strategy_yaml)
    token = read_token_file(tmp_path / "admin.token")
    address = f"127.0.0.1:{b.app.port}"
    try:
        argv = ["train", str(strategy), "--backend", address, "--token", token or ""]
        code = await asyncio.to_thread(main, [*argv, "--mode", "host", "--detach", "--json"])
        out = capsys.readouterr()
        assert code == 0, out.err
        shown = json.loads(out.out)
        assert (shown["status"], shown["mode"], shown["queue_position"]) == ("pending", "host", 1)
        assert shown["fallback"] is False and shown["host_address"] == ""
        assert "mode host, queued for a host slot, position 1: 1 host busy, 1 queued" in out.err
        assert b.app.operations._runs == {}  # nothing trains in the backend
        code = await asyncio.to_thread(main, ["ops", "show", shown["operation_id"], *argv[2:]])
        text = capsys.readouterr().out
        assert code == 0 and "queue        position 1: 1 host busy, 1 queued" in text
        assert "placement    queued for a host" in text
    finally:
        await stop_backend(b)
