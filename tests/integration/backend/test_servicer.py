"""BackendServicer through a real in-process grpc.aio server (local runs and a fake host)."""

from __future__ import annotations

import asyncio
import hashlib
from pathlib import Path

import grpc
import pytest

from ktrdr.backend.store import OperationRecord, Store, now_us
from ktrdr.service.convert import simple_event
from ktrdr.storage import ModelStorage
from ktrdr.training.progress import ProgressKind
from ktrdr.training.v1 import backend_pb2 as pb
from ktrdr.training.v1 import common_pb2
from ktrdr.transfer import iter_submit_requests
from tests.support.backend import start_backend, stop_backend
from tests.support.timing import scaled
from tests.support.uploads import bundle_archive, deliver, host_operation

CPU = common_pb2.TrainingOverrides(device="cpu")


async def watch_to_end(stub, op_id: str) -> list[pb.WatchOperationResponse]:
    return [m async for m in stub.WatchOperation(pb.WatchOperationRequest(operation_id=op_id))]


async def get(stub, op_id: str) -> pb.Operation:
    return (await stub.GetOperation(pb.GetOperationRequest(operation_id=op_id))).operation


async def code_of(call) -> grpc.StatusCode:
    with pytest.raises(grpc.aio.AioRpcError) as info:
        await call
    return info.value.code()


async def test_local_training_end_to_end(backend, tiny_strategy_yaml):
    stub = backend.stub
    created = (
        await stub.CreateTraining(pb.CreateTrainingRequest(strategy_name="tiny_rsi"))
    ).operation
    assert created.mode == pb.EXECUTION_MODE_LOCAL
    assert "default mode" in created.mode_reason
    stream = await watch_to_end(stub, created.operation_id)
    assert stream[-1].event.kind == common_pb2.PROGRESS_KIND_COMPLETED
    assert stream[-1].status == pb.OPERATION_STATUS_COMPLETED
    seqs = [m.event.sequence for m in stream]
    assert seqs == sorted(seqs) and len(set(seqs)) == len(seqs)
    op = await get(stub, created.operation_id)
    assert op.status == pb.OPERATION_STATUS_COMPLETED
    assert op.last_event == stream[-1].event
    ref = op.result.delivery.model
    assert (ref.strategy_name, ref.version) == ("tiny_rsi", 1)
    models = (await stub.ListModels(pb.ListModelsRequest())).strategies
    assert [(m.strategy_name, [v.version for v in m.versions]) for m in models] == [
        ("tiny_rsi", [1])
    ]
    assert models[0].versions[0].operation_id == created.operation_id
    assert "test_accuracy" in models[0].versions[0].test_metrics
    strategies = {
        s.name: s for s in (await stub.ListStrategies(pb.ListStrategiesRequest())).strategies
    }
    assert strategies["tiny_rsi"].status == pb.STRATEGY_STATUS_TRAINED
    assert strategies["tiny_rsi"].latest_version == 1
    # a finished operation: the stream is its final state only; cancelling it is refused
    again = await watch_to_end(stub, created.operation_id)
    assert [m.event for m in again] == [stream[-1].event]
    cancel = stub.CancelOperation(pb.CancelOperationRequest(operation_id=created.operation_id))
    assert await code_of(cancel) == grpc.StatusCode.FAILED_PRECONDITION


async def test_invalid_requests(backend, tiny_strategy_yaml):
    stub = backend.stub
    bad = tiny_strategy_yaml.replace("epochs: 4", "epochs: -1")
    with pytest.raises(grpc.aio.AioRpcError) as info:
        await stub.CreateTraining(pb.CreateTrainingRequest(strategy_yaml=bad))
    assert info.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert "model.training.epochs" in info.value.details()
    missing = stub.CreateTraining(pb.CreateTrainingRequest(strategy_name="nope"))
    assert await code_of(missing) == grpc.StatusCode.NOT_FOUND
    empty = stub.CreateTraining(pb.CreateTrainingRequest())
    assert await code_of(empty) == grpc.StatusCode.INVALID_ARGUMENT
    for call in (
        stub.GetOperation(pb.GetOperationRequest(operation_id="x")),
        stub.CancelOperation(pb.CancelOperationRequest(operation_id="x")),
        watch_to_end(stub, "x"),
    ):
        assert await code_of(call) == grpc.StatusCode.NOT_FOUND
    token = stub.ListOperations(pb.ListOperationsRequest(page_token="garbage!"))
    assert await code_of(token) == grpc.StatusCode.INVALID_ARGUMENT
    mode = stub.UpdateTrainingConfig(pb.UpdateTrainingConfigRequest(default_mode=0))
    assert await code_of(mode) == grpc.StatusCode.INVALID_ARGUMENT


async def test_default_mode_change_affects_later_requests(backend, tiny_strategy_yaml):
    stub = backend.stub
    config = (await stub.GetTrainingConfig(pb.GetTrainingConfigRequest())).config
    assert config.default_mode == pb.EXECUTION_MODE_LOCAL
    changed = await stub.UpdateTrainingConfig(
        pb.UpdateTrainingConfigRequest(default_mode=pb.EXECUTION_MODE_HOST)
    )
    assert (changed.previous_default_mode, changed.default_mode) == (
        pb.EXECUTION_MODE_LOCAL,
        pb.EXECUTION_MODE_HOST,
    )
    # no host known yet: host mode waits for one to register, and says the default was host
    op = (
        await stub.CreateTraining(pb.CreateTrainingRequest(strategy_yaml=tiny_strategy_yaml))
    ).operation
    assert op.mode == pb.EXECUTION_MODE_HOST and op.status == pb.OPERATION_STATUS_PENDING
    assert op.mode_reason.startswith("host (the default mode): queued, no training host")
    await stub.CancelOperation(pb.CancelOperationRequest(operation_id=op.operation_id))


async def test_cancel_pending_and_running_local(backend, tiny_strategy_yaml):
    stub = backend.stub
    long = tiny_strategy_yaml.replace("epochs: 4", "epochs: 400")
    first = (await stub.CreateTraining(pb.CreateTrainingRequest(strategy_yaml=long))).operation
    second = (await stub.CreateTraining(pb.CreateTrainingRequest(strategy_yaml=long))).operation
    assert (await get(stub, second.operation_id)).status == pb.OPERATION_STATUS_PENDING
    cancelled = await stub.CancelOperation(
        pb.CancelOperationRequest(operation_id=second.operation_id, reason="not needed")
    )
    assert cancelled.status == pb.OPERATION_STATUS_CANCELLED
    assert cancelled.operation.error.message == "not needed"
    async for message in stub.WatchOperation(
        pb.WatchOperationRequest(operation_id=first.operation_id)
    ):
        if message.event.kind == common_pb2.PROGRESS_KIND_EPOCH:
            break
    response = await stub.CancelOperation(
        pb.CancelOperationRequest(operation_id=first.operation_id)
    )
    assert response.status == pb.OPERATION_STATUS_CANCELLED
    assert response.operation.last_event.kind == common_pb2.PROGRESS_KIND_CANCELLED
    listed = await stub.ListOperations(
        pb.ListOperationsRequest(status=pb.OPERATION_STATUS_CANCELLED, page_size=1)
    )
    assert len(listed.operations) == 1 and listed.next_page_token
    rest = await stub.ListOperations(
        pb.ListOperationsRequest(
            status=pb.OPERATION_STATUS_CANCELLED, page_size=1, page_token=listed.next_page_token
        )
    )
    ids = {listed.operations[0].operation_id, rest.operations[0].operation_id}
    assert ids == {first.operation_id, second.operation_id} and not rest.next_page_token


# -- SubmitResults -----------------------------------------------------------------------------
async def test_submit_results_saves_once(
    host_backend, fake_host, tiny_bundle, tmp_path, tiny_strategy_yaml
):
    b = host_backend
    op = await host_operation(b, tiny_strategy_yaml)
    assert fake_host.fake.started == [op.operation_id]
    path = bundle_archive(tmp_path, tiny_bundle, "a.tar")
    watcher = asyncio.create_task(watch_to_end(b.stub, op.operation_id))
    first = await deliver(b, path, op.operation_id)
    assert not first.duplicate and first.model.version == 1
    again = await deliver(b, path, op.operation_id)
    assert again.duplicate and again.model == first.model and again.sha256 == first.sha256
    other = bundle_archive(tmp_path, tiny_bundle, "b.tar", created_at="2000-01-01T00:00:00+00:00")
    assert await code_of(deliver(b, other, op.operation_id)) == grpc.StatusCode.ALREADY_EXISTS
    stream = await asyncio.wait_for(watcher, scaled(5))
    assert stream[-1].status == pb.OPERATION_STATUS_COMPLETED
    done = await get(b.stub, op.operation_id)
    assert done.status == pb.OPERATION_STATUS_COMPLETED
    assert done.result.delivery.model == first.model
    models = (await b.stub.ListModels(pb.ListModelsRequest(strategy_name="tiny_rsi"))).strategies
    assert [v.version for v in models[0].versions] == [1]
    assert len(list((b.settings.models_dir / "tiny_rsi").glob("*_v*"))) == 1


async def test_save_that_crashed_before_the_commit_is_not_stored_twice(
    host_backend, tiny_bundle, tmp_path, tiny_strategy_yaml
):
    """A crash between ModelStorage.save and the database commit leaves a saved model the
    operation does not know about; the host's resend must find it, not store a second copy."""
    b = host_backend
    op = await host_operation(b, tiny_strategy_yaml)
    path = bundle_archive(tmp_path, tiny_bundle, "a.tar")
    sha = hashlib.sha256(path.read_bytes()).hexdigest()
    storage = ModelStorage(b.settings.models_dir)
    earlier = storage.save(tiny_bundle, origin={"operation_id": op.operation_id, "sha256": sha})
    response = await deliver(b, path, op.operation_id)
    assert response.model.version == earlier.version
    assert response.model.path == "tiny_rsi/" + earlier.path.name  # store-relative, no server path
    assert len(list((b.settings.models_dir / "tiny_rsi").glob("*_v*"))) == 1
    done = await get(b.stub, op.operation_id)
    assert done.status == pb.OPERATION_STATUS_COMPLETED


async def test_submit_results_refusals(host_backend, tiny_bundle, tmp_path, tiny_strategy_yaml):
    b = host_backend
    path = bundle_archive(tmp_path, tiny_bundle, "a.tar")
    with pytest.raises(grpc.aio.AioRpcError) as unknown:
        await deliver(b, path, "unknown-op")
    assert unknown.value.code() == grpc.StatusCode.NOT_FOUND, unknown.value.details()
    op = await host_operation(b, tiny_strategy_yaml)
    # corrupted: one flipped byte in a chunk -> hash mismatch
    data = path.read_bytes()
    b.fake.announced[op.operation_id] = (hashlib.sha256(data).hexdigest(), len(data))
    requests = list(
        iter_submit_requests(
            path,
            session_id=op.operation_id,
            strategy_name="tiny_rsi",
            upload_credential=b.fake.credentials[op.operation_id],
        )
    )
    data = bytearray(requests[1].chunk.data)
    data[100] ^= 0xFF
    requests[1].chunk.data = bytes(data)
    with pytest.raises(grpc.aio.AioRpcError) as info:
        await b.stub.SubmitResults(iter(requests))
    assert info.value.code() == grpc.StatusCode.DATA_LOSS
    # not a bundle at all
    junk = tmp_path / "junk.tar"
    junk.write_bytes(b"not a tar" * 100)
    with pytest.raises(grpc.aio.AioRpcError) as junk_info:
        await deliver(b, junk, op.operation_id)
    assert junk_info.value.code() == grpc.StatusCode.INVALID_ARGUMENT, junk_info.value.details()
    assert await code_of(deliver(b, path, op.operation_id, "other")) == (
        grpc.StatusCode.INVALID_ARGUMENT
    )
    assert list(b.settings.incoming_dir.iterdir()) == []
    assert (await get(b.stub, op.operation_id)).status == pb.OPERATION_STATUS_RUNNING
    # a cancelled operation takes no model
    await b.stub.CancelOperation(pb.CancelOperationRequest(operation_id=op.operation_id))
    assert await code_of(deliver(b, path, op.operation_id)) == grpc.StatusCode.FAILED_PRECONDITION
    # nor does a local one (held mid-training until it is cancelled)
    b.trainer.hold_from = 1
    local = (
        await b.stub.CreateTraining(
            pb.CreateTrainingRequest(
                strategy_yaml=tiny_strategy_yaml, execution_mode=pb.EXECUTION_MODE_LOCAL
            )
        )
    ).operation
    assert await code_of(deliver(b, path, local.operation_id)) == (
        grpc.StatusCode.FAILED_PRECONDITION
    )
    await b.stub.CancelOperation(pb.CancelOperationRequest(operation_id=local.operation_id))


async def test_cancel_on_a_host(host_backend, fake_host, tiny_strategy_yaml):
    op = await host_operation(host_backend, tiny_strategy_yaml)
    response = await host_backend.stub.CancelOperation(
        pb.CancelOperationRequest(operation_id=op.operation_id)
    )
    assert response.status == pb.OPERATION_STATUS_CANCELLED
    assert fake_host.fake.cancelled == [op.operation_id]


# -- restart -----------------------------------------------------------------------------------
def previous_run(path: Path, tiny_strategy_yaml: str) -> None:
    """What a backend that stopped left: one operation running locally, one queued."""
    store = Store(path)
    base = dict(
        strategy_name="tiny_rsi",
        strategy_yaml=tiny_strategy_yaml,
        overrides=CPU,
        requested_mode=0,
        mode=pb.EXECUTION_MODE_LOCAL,
        mode_reason="local",
        host_address="",
        require_gpu=False,
        last_event=simple_event(ProgressKind.ACCEPTED, "accepted"),
    )
    store.insert_operation(
        OperationRecord(id="ran", status=pb.OPERATION_STATUS_PENDING, created_us=now_us(), **base)
    )
    store.mark_running("ran")
    store.insert_operation(
        OperationRecord(
            id="queued", status=pb.OPERATION_STATUS_PENDING, created_us=now_us(), **base
        )
    )
    store.close()


async def test_restart_fails_running_local_and_requeues_pending(
    tmp_path, sample_data_dir, tiny_strategy_yaml
):
    await asyncio.to_thread(previous_run, tmp_path / "backend.db", tiny_strategy_yaml)
    b = await start_backend(tmp_path, sample_data_dir)
    try:
        ran = await get(b.stub, "ran")
        assert ran.status == pb.OPERATION_STATUS_FAILED
        assert ran.error.message == "backend restarted while the operation was training locally"
        stream = await asyncio.wait_for(watch_to_end(b.stub, "queued"), scaled(60))
        assert stream[-1].status == pb.OPERATION_STATUS_COMPLETED
    finally:
        await stop_backend(b)
