"""SubmitResults as an attacker would use it: forged, replayed, oversized, stalled, flooded.

A real backend with a fake host (``tests.support.backend``): the fake records the upload credential
the backend gives it in StartTraining and announces the bundle a test chooses as finished.
"""

from __future__ import annotations

import asyncio
import hashlib
from pathlib import Path

import grpc
import pytest
import zstandard

from ktrdr.storage import ModelBundle
from ktrdr.training.v1 import backend_pb2 as pb
from ktrdr.transfer import iter_submit_requests, send_results
from tests.support.backend import Backend
from tests.support.timing import async_wait_until, scaled
from tests.support.uploads import announce, bundle_archive, host_operation, host_stub, status_of

# the ``host_backend`` fixture's settings (conftest.py)
HOST_BACKEND_SETTINGS = {"max_concurrent_uploads": 2, "upload_idle_timeout_s": 1.0}


async def test_forged_upload_is_refused_and_the_real_one_lands(
    host_backend: Backend, tiny_bundle: ModelBundle, tmp_path: Path, tiny_strategy_yaml: str
) -> None:
    b = host_backend
    op_id = (await host_operation(b, tiny_strategy_yaml)).operation_id
    real = bundle_archive(tmp_path, tiny_bundle, "real.tar")
    forged = bundle_archive(tmp_path, tiny_bundle, "forged.tar", metrics={"test": {"accuracy": 1}})
    announce(b, op_id, real)
    credential = b.fake.credentials[op_id]  # type: ignore[union-attr]
    channel, stub = host_stub(b)
    async with channel:
        # a valid host token but no credential, a guessed one, or the real credential with
        # a bundle the host did not announce: all refused before anything is stored
        for path, given in ((forged, ""), (forged, "guess"), (forged, credential)):
            code = await status_of(
                send_results(
                    stub,
                    path,
                    session_id=op_id,
                    strategy_name="tiny_rsi",
                    timeout_s=scaled(60),
                    upload_credential=given,
                )
            )
            assert code == grpc.StatusCode.PERMISSION_DENIED, (path.name, given, code)
        assert list(b.settings.incoming_dir.iterdir()) == []
        running = await b.stub.GetOperation(pb.GetOperationRequest(operation_id=op_id))
        assert running.operation.status == pb.OPERATION_STATUS_RUNNING
        done = await send_results(
            stub,
            real,
            session_id=op_id,
            strategy_name="tiny_rsi",
            timeout_s=scaled(60),
            upload_credential=credential,
        )
        assert not done.duplicate and done.model.version == 1
        # replayed: the host's own resend is answered as a duplicate; a replay without the
        # credential is refused
        again = await send_results(
            stub,
            real,
            session_id=op_id,
            strategy_name="tiny_rsi",
            timeout_s=scaled(60),
            upload_credential=credential,
        )
        assert again.duplicate and again.model == done.model
        code = await status_of(
            send_results(
                stub, real, session_id=op_id, strategy_name="tiny_rsi", timeout_s=scaled(60)
            )
        )
        assert code == grpc.StatusCode.PERMISSION_DENIED
    op = (await b.stub.GetOperation(pb.GetOperationRequest(operation_id=op_id))).operation
    assert op.status == pb.OPERATION_STATUS_COMPLETED
    assert op.result.bundle_sha256 == hashlib.sha256(real.read_bytes()).hexdigest()


async def test_decompression_bomb_is_refused_before_writing(
    host_backend: Backend, tiny_bundle: ModelBundle, tmp_path: Path, tiny_strategy_yaml: str
) -> None:
    """A 32 KiB zstd frame announcing 1 GiB: refused from the header, nothing written."""
    b = host_backend
    op_id = (await host_operation(b, tiny_strategy_yaml)).operation_id
    real = bundle_archive(tmp_path, tiny_bundle, "real.tar")
    announce(b, op_id, real)
    bomb = zstandard.ZstdCompressor().compress(bytes(1 << 30 >> 5))  # 32 MiB of zeros
    header = pb.SubmitResultsHeader(
        session_id=op_id,
        strategy_name="tiny_rsi",
        raw_size_bytes=1 << 30,
        codec=pb.CODEC_ZSTD,
        sha256="0" * 64,
        upload_credential=b.fake.credentials[op_id],  # type: ignore[union-attr]
    )
    messages = [
        pb.SubmitResultsRequest(header=header),
        pb.SubmitResultsRequest(chunk=pb.SubmitResultsChunk(data=bomb, index=0)),
        pb.SubmitResultsRequest(trailer=pb.SubmitResultsTrailer(chunk_count=1)),
    ]
    channel, stub = host_stub(b)
    async with channel:
        with pytest.raises(grpc.aio.AioRpcError) as refused:
            await stub.SubmitResults(iter(messages), timeout=scaled(10))
    assert refused.value.code() == grpc.StatusCode.PERMISSION_DENIED
    assert "announced a bundle of" in (refused.value.details() or "")
    assert list(b.settings.incoming_dir.iterdir()) == []


async def test_stalled_uploads_are_capped_and_timed_out(
    host_backend: Backend, tiny_bundle: ModelBundle, tmp_path: Path, tiny_strategy_yaml: str
) -> None:
    b = host_backend
    op_id = (await host_operation(b, tiny_strategy_yaml)).operation_id
    real = bundle_archive(tmp_path, tiny_bundle, "real.tar")
    announce(b, op_id, real)
    credential = b.fake.credentials[op_id]  # type: ignore[union-attr]
    header = next(
        iter_submit_requests(
            real, session_id=op_id, strategy_name="tiny_rsi", upload_credential=credential
        )
    )
    release = asyncio.Event()

    async def header_then_nothing():  # type: ignore[no-untyped-def]
        yield header
        await release.wait()

    channel, stub = host_stub(b)
    async with channel:
        stalled = [
            asyncio.create_task(
                status_of(stub.SubmitResults(header_then_nothing(), timeout=scaled(30)))
            )
            for _ in range(2)
        ]
        await async_wait_until(
            lambda: b.app.results is not None and b.app.results.active >= 2,
            10,
            "both stalled streams being received",
        )
        third = await status_of(stub.SubmitResults(iter([header]), timeout=scaled(10)))
        assert third == grpc.StatusCode.RESOURCE_EXHAUSTED
        # the idle timeout (1 s here) ends the stalled streams, their temp files removed
        assert await asyncio.gather(*stalled) == [grpc.StatusCode.DEADLINE_EXCEEDED] * 2
        release.set()
        assert list(b.settings.incoming_dir.iterdir()) == []
        # and a real delivery still lands
        done = await send_results(
            stub,
            real,
            session_id=op_id,
            strategy_name="tiny_rsi",
            timeout_s=scaled(60),
            upload_credential=credential,
        )
        assert done.model.version == 1
