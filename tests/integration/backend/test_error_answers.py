"""The backend's answers through its error boundary, on a real backend on loopback: a bug
in a unary or a streaming RPC is INTERNAL naming the backend's log, a full disk is
RESOURCE_EXHAUSTED "disk full", and a SubmitResults refusal keeps its trailing hint."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import grpc
import pytest

from ktrdr.storage import ModelBundle
from ktrdr.training.v1 import backend_pb2 as pb
from ktrdr.transfer import send_results
from ktrdr.transfer.refusals import FINAL, REFUSAL_KEY
from tests.support.backend import Backend
from tests.support.timing import scaled
from tests.support.uploads import bundle_archive, host_stub

SECRET = "/srv/backend/secret-place"


async def rpc_error(call) -> grpc.aio.AioRpcError:  # type: ignore[no-untyped-def]
    with pytest.raises(grpc.aio.AioRpcError) as info:
        if hasattr(call, "__aiter__"):
            async for _ in call:
                pass
        else:
            await call
    return info.value


async def test_a_bug_answers_internal_in_unary_and_streaming_rpcs(
    backend: Backend, monkeypatch: pytest.MonkeyPatch
) -> None:
    def broken(operation_id: str) -> object:
        raise RuntimeError(f"bug while reading {SECRET}")

    monkeypatch.setattr(backend.app.operations, "get", broken)
    get = await rpc_error(
        backend.stub.GetOperation(pb.GetOperationRequest(operation_id="x"), timeout=scaled(5))
    )
    watch = await rpc_error(
        backend.stub.WatchOperation(pb.WatchOperationRequest(operation_id="x"), timeout=scaled(5))
    )
    for method, error in (("GetOperation", get), ("WatchOperation", watch)):
        assert error.code() == grpc.StatusCode.INTERNAL, method
        assert error.details() == (
            f"{method} failed on the server (the backend's log has the details)"
        )


async def test_a_full_disk_answers_resource_exhausted_without_a_path(
    backend: Backend, monkeypatch: pytest.MonkeyPatch
) -> None:
    def full(operation_id: str) -> object:
        raise sqlite3.OperationalError("database or disk is full")

    monkeypatch.setattr(backend.app.operations, "get", full)
    error = await rpc_error(
        backend.stub.GetOperation(pb.GetOperationRequest(operation_id="x"), timeout=scaled(5))
    )
    assert error.code() == grpc.StatusCode.RESOURCE_EXHAUSTED
    assert (error.details() or "").startswith("disk full: GetOperation could not be completed")


async def test_a_final_submit_refusal_keeps_its_trailing_hint(
    backend: Backend, tiny_bundle: ModelBundle, tmp_path: Path
) -> None:
    archive = bundle_archive(tmp_path, tiny_bundle, "model.tar")
    channel, stub = host_stub(backend)
    async with channel:
        error = await rpc_error(
            send_results(
                stub,
                archive,
                session_id="no-such-operation",
                strategy_name="tiny_rsi",
                timeout_s=scaled(60),
            )
        )
    assert error.code() == grpc.StatusCode.NOT_FOUND
    assert (REFUSAL_KEY, FINAL) in tuple(error.trailing_metadata() or ())
