"""Long server streams are bounded: per caller, answered at once, ended on revocation.

A real backend (gRPC on loopback) with a long local training to watch: a caller over its
share of watch streams is refused at once (another caller is not), a watch opened before
its token was revoked ends with UNAUTHENTICATED within seconds, a tiny download chunk size is
refused, and an upload stream that sends nothing past the cap is answered within seconds.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from pathlib import Path

import grpc
import pytest

from ktrdr.backend.auth.token_store import TokenStore
from ktrdr.security.channels import aio_channel
from ktrdr.security.tokens import generate_token
from ktrdr.training.v1 import backend_pb2 as pb
from ktrdr.training.v1 import backend_pb2_grpc
from tests.support.backend import Backend, start_backend, stop_backend
from tests.support.fake_training import FakeTrainer
from tests.support.timing import async_wait_until, scaled


@pytest.fixture
async def backend(tmp_path: Path, sample_data_dir: Path, monkeypatch: pytest.MonkeyPatch):
    (tmp_path / "strategies").mkdir()
    # revoked tokens: open streams are checked again every 0.1 s here (2 s in production)
    monkeypatch.setattr("ktrdr.security.stream_limits.RECHECK_S", 0.1)
    b = await start_backend(
        tmp_path,
        sample_data_dir,
        trainer=FakeTrainer(hold_from=1),  # a local run trains until it is cancelled
        local_concurrency=1,
        max_watch_streams_per_user=2,
        max_concurrent_uploads=1,
    )
    yield b
    await stop_backend(b)


def add_token(b: Backend, name: str) -> str:
    store = TokenStore(b.settings.db_path)
    try:
        token = generate_token()
        store.add(name, "trainer", token)
        return token
    finally:
        store.close()


def revoke_token(b: Backend, name: str) -> None:
    store = TokenStore(b.settings.db_path)
    try:
        store.revoke(name)
    finally:
        store.close()


async def long_operation(b: Backend, yaml_text: str) -> str:
    request = pb.CreateTrainingRequest(
        strategy_yaml=yaml_text, execution_mode=pb.EXECUTION_MODE_LOCAL
    )
    return (await b.stub.CreateTraining(request)).operation.operation_id


async def first_event(call) -> None:  # type: ignore[no-untyped-def]
    async for _ in call:
        return


async def test_watch_streams_per_caller_and_revocation(
    backend: Backend, tiny_strategy_yaml: str
) -> None:
    op_id = await long_operation(backend, tiny_strategy_yaml)
    address = f"127.0.0.1:{backend.app.port}"
    bob = await asyncio.to_thread(add_token, backend, "bob")
    watch = pb.WatchOperationRequest(operation_id=op_id)
    try:
        async with aio_channel(address, token=bob) as channel:
            stub = backend_pb2_grpc.BackendStub(channel)
            held = [stub.WatchOperation(watch, timeout=120) for _ in range(2)]
            for call in held:
                await first_event(call)
            third = stub.WatchOperation(watch, timeout=120)
            started = time.monotonic()
            with pytest.raises(grpc.aio.AioRpcError) as refused:
                await first_event(third)
            assert refused.value.code() == grpc.StatusCode.RESOURCE_EXHAUSTED
            assert "per caller" in (refused.value.details() or "")
            assert time.monotonic() - started < scaled(5)  # at once, not at the call's deadline
            # another caller is not affected
            await first_event(backend.stub.WatchOperation(watch, timeout=120))

            # revoked: the streams already open end within seconds
            await asyncio.to_thread(revoke_token, backend, "bob")
            started = time.monotonic()
            for call in held:
                with pytest.raises(grpc.aio.AioRpcError) as ended:
                    async for _ in call:
                        pass
                assert ended.value.code() == grpc.StatusCode.UNAUTHENTICATED
                assert "revoked" in (ended.value.details() or "")
            assert time.monotonic() - started < scaled(10)  # the recheck, not the deadline
    finally:
        with contextlib.suppress(grpc.aio.AioRpcError):
            await backend.stub.CancelOperation(pb.CancelOperationRequest(operation_id=op_id))


async def test_tiny_download_chunks_are_refused(backend: Backend) -> None:
    request = pb.DownloadModelRequest(
        model=pb.ModelSelector(strategy_name="tiny_rsi"), chunk_size_bytes=1
    )
    with pytest.raises(grpc.aio.AioRpcError) as refused:
        async for _ in backend.stub.DownloadModel(request, timeout=10):
            pass
    assert refused.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert "chunk_size_bytes" in (refused.value.details() or "")


async def test_a_silent_upload_past_the_cap_is_answered(
    backend: Backend, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr("ktrdr.transfer.receiver.DRAIN_DEADLINE_S", 0.5)
    token = (backend.settings.data_dir / "host.token").read_text().strip()
    address = f"127.0.0.1:{backend.app.port}"
    release = asyncio.Event()

    async def silent():  # type: ignore[no-untyped-def]
        await release.wait()
        return
        yield  # an async generator that sends nothing

    async with aio_channel(address, token=token) as channel:
        stub = backend_pb2_grpc.BackendStub(channel)
        holder = stub.SubmitResults(silent(), timeout=60)  # holds the one upload slot
        try:
            intake = backend.app.results
            assert intake is not None
            await async_wait_until(lambda: intake.active == 1, 10, "the first upload's slot")
            started = time.monotonic()
            with pytest.raises(grpc.aio.AioRpcError) as refused:
                await stub.SubmitResults(silent(), timeout=30)
            assert refused.value.code() == grpc.StatusCode.RESOURCE_EXHAUSTED
            assert time.monotonic() - started < scaled(10)  # the drain's deadline, not 30 s
        finally:
            release.set()
            holder.cancel()
