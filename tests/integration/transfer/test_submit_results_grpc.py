"""SubmitResults through a real grpc.aio server on a loopback port.

A tiny Backend servicer implements only SubmitResults with ``receive_results``; the client
side uses ``send_results`` and, for malformed streams, hand-edited message lists.
"""

from __future__ import annotations

import asyncio
import hashlib
import os
from collections.abc import AsyncIterator, Iterable
from dataclasses import dataclass
from pathlib import Path

import grpc
import numpy as np
import pytest

from ktrdr.errors import BundleError
from ktrdr.training.v1 import backend_pb2 as pb
from ktrdr.training.v1 import backend_pb2_grpc as pb_grpc
from ktrdr.training.v1 import common_pb2
from ktrdr.transfer import (
    Codec,
    ReceivedResults,
    TransferError,
    grpc_options,
    iter_submit_requests,
    receive_results,
    send_results,
)
from tests.support.timing import async_wait_until, scaled

pytestmark = pytest.mark.integration

KiB = 1 << 10
MiB = 1 << 20
MAX_RAW = 8 * MiB


class SubmitOnlyBackend(pb_grpc.BackendServicer):
    """Receives bundles into ``incoming`` and keeps them; everything else is UNIMPLEMENTED."""

    def __init__(self, incoming: Path) -> None:
        self.incoming = incoming
        self.received: list[ReceivedResults] = []

    @staticmethod
    def validate(path: Path) -> None:
        if path.read_bytes()[:4] == b"BAD!":
            raise BundleError("not a tar archive")

    async def SubmitResults(
        self, request_iterator: AsyncIterator[pb.SubmitResultsRequest], context
    ) -> pb.SubmitResultsResponse:
        try:
            received = await receive_results(
                request_iterator,
                tmp_dir=self.incoming,
                max_raw_bytes=MAX_RAW,
                validate=self.validate,
            )
        except TransferError as error:
            await context.abort(error.code, error.message)
        self.received.append(received)
        return pb.SubmitResultsResponse(
            model=common_pb2.ModelReference(strategy_name=received.header.strategy_name, version=1),
            sha256=received.sha256,
            raw_size_bytes=received.raw_size,
        )


@dataclass
class Harness:
    backend: SubmitOnlyBackend
    stub: pb_grpc.BackendStub
    incoming: Path
    channel: grpc.aio.Channel


@pytest.fixture
async def harness(tmp_path: Path) -> AsyncIterator[Harness]:
    incoming = tmp_path / "incoming"
    incoming.mkdir()
    backend = SubmitOnlyBackend(incoming)
    server = grpc.aio.server(options=grpc_options())
    pb_grpc.add_BackendServicer_to_server(backend, server)
    port = server.add_insecure_port("127.0.0.1:0")
    await server.start()
    channel = grpc.aio.insecure_channel(f"127.0.0.1:{port}", options=grpc_options())
    try:
        yield Harness(backend, pb_grpc.BackendStub(channel), incoming, channel)
    finally:
        await channel.close()
        await server.stop(grace=None)


def write_bundle(path: Path, size: int) -> Path:
    """float32-like weights with a little structure in front, like a real bundle."""
    weights = np.random.default_rng(1).standard_normal(size // 4, dtype=np.float32).tobytes()
    path.write_bytes((b"metadata " * 512 + weights)[:size])
    return path


async def submit(harness: Harness, messages: Iterable[pb.SubmitResultsRequest]) -> grpc.StatusCode:
    with pytest.raises(grpc.aio.AioRpcError) as info:
        await harness.stub.SubmitResults(iter(list(messages)), timeout=scaled(10))
    assert os.listdir(harness.incoming) == []
    return info.value.code()


def messages_for(path: Path, codec: Codec = Codec.RAW, chunk_size: int = 256 * KiB) -> list:
    return list(
        iter_submit_requests(
            path, session_id="op-1", strategy_name="rsi", codec=codec, chunk_size=chunk_size
        )
    )


@pytest.mark.parametrize("via", ["stub", "channel"])  # messages / frames serialized by hand
@pytest.mark.parametrize("codec", [None, Codec.RAW, Codec.ZSTD, Codec.GZIP])
async def test_round_trip(codec: Codec | None, via: str, harness: Harness, tmp_path: Path) -> None:
    bundle = write_bundle(tmp_path / "bundle.tar", 3 * MiB + 123)
    response = await send_results(
        harness.stub if via == "stub" else harness.channel,
        bundle,
        session_id="op-1",
        strategy_name="rsi",
        metrics={"test_accuracy": 0.61},
        bundle=pb.BundleSummary(model_type="mlp", feature_count=9),
        codec=codec,
        timeout_s=scaled(60),
    )
    digest = hashlib.sha256(bundle.read_bytes()).hexdigest()
    assert response.sha256 == digest
    assert response.raw_size_bytes == bundle.stat().st_size
    [received] = harness.backend.received
    assert received.path.read_bytes() == bundle.read_bytes()
    assert received.codec is (codec or Codec.RAW)  # auto: float weights go raw (zstd saves ~8 %)
    assert dict(received.header.metrics) == {"test_accuracy": pytest.approx(0.61)}
    assert received.header.bundle.feature_count == 9


async def test_corrupted_chunk_is_data_loss(harness: Harness, tmp_path: Path) -> None:
    messages = messages_for(write_bundle(tmp_path / "b.tar", MiB))
    data = bytearray(messages[2].chunk.data)
    data[7] ^= 0x01
    messages[2].chunk.data = bytes(data)
    assert await submit(harness, messages) == grpc.StatusCode.DATA_LOSS


async def test_truncated_stream_is_data_loss(harness: Harness, tmp_path: Path) -> None:
    messages = messages_for(write_bundle(tmp_path / "b.tar", MiB))
    assert await submit(harness, messages[:-2]) == grpc.StatusCode.DATA_LOSS


async def test_header_missing_is_invalid_argument(harness: Harness, tmp_path: Path) -> None:
    messages = messages_for(write_bundle(tmp_path / "b.tar", MiB))
    assert await submit(harness, messages[1:]) == grpc.StatusCode.INVALID_ARGUMENT


async def test_oversized_is_resource_exhausted(harness: Harness, tmp_path: Path) -> None:
    messages = messages_for(write_bundle(tmp_path / "b.tar", MAX_RAW + 1))
    assert await submit(harness, messages) == grpc.StatusCode.RESOURCE_EXHAUSTED


async def test_zstd_bomb_is_resource_exhausted(harness: Harness, tmp_path: Path) -> None:
    zeros = tmp_path / "zeros.tar"
    with open(zeros, "wb") as f:
        for _ in range(128):
            f.write(bytes(MiB))
    messages = messages_for(zeros, Codec.ZSTD, chunk_size=MiB)
    messages[0].header.raw_size_bytes = MAX_RAW  # lies: 128 MiB arrive
    assert sum(len(m.chunk.data) for m in messages[1:-1]) < 64 * KiB
    assert await submit(harness, messages) == grpc.StatusCode.RESOURCE_EXHAUSTED


async def test_invalid_bundle_is_invalid_argument(harness: Harness, tmp_path: Path) -> None:
    bad = tmp_path / "bad.tar"
    bad.write_bytes(b"BAD!" + os.urandom(10_000))
    assert await submit(harness, messages_for(bad)) == grpc.StatusCode.INVALID_ARGUMENT


async def test_client_cancel_removes_the_temp_file(harness: Harness, tmp_path: Path) -> None:
    messages = messages_for(write_bundle(tmp_path / "b.tar", MiB))

    async def stalling() -> AsyncIterator[pb.SubmitResultsRequest]:
        for message in messages[:3]:
            yield message
        await asyncio.Event().wait()
        yield messages[3]

    call = harness.stub.SubmitResults(stalling(), timeout=scaled(10))
    await async_wait_until(lambda: os.listdir(harness.incoming), 10, "a file in incoming/")
    assert len(os.listdir(harness.incoming)) == 1
    call.cancel()
    with pytest.raises(asyncio.CancelledError):
        await call
    # the server notices the cancellation asynchronously
    await async_wait_until(lambda: not os.listdir(harness.incoming), 10, "incoming/ emptied")


async def test_deadline_is_enforced(harness: Harness, tmp_path: Path) -> None:
    bundle = write_bundle(tmp_path / "b.tar", 4 * MiB)
    with pytest.raises(grpc.aio.AioRpcError) as info:
        await send_results(
            harness.stub, bundle, session_id="op-1", strategy_name="rsi", timeout_s=0.0001
        )
    # gRPC reports a deadline that passes while it is writing a message as INTERNAL from its
    # write batch (a race of its own, seen under load); both end the call, neither stores.
    code, debug = info.value.code(), info.value.debug_error_string() or ""
    assert code == grpc.StatusCode.DEADLINE_EXCEEDED or (
        code == grpc.StatusCode.INTERNAL and "execute_batch" in debug
    ), info.value
    # the server notices the end of the call asynchronously
    await async_wait_until(lambda: not os.listdir(harness.incoming), 10, "incoming/ emptied")
