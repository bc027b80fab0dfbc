"""``receive_results`` fed directly from async iterators (no server needed)."""

from __future__ import annotations

import asyncio
import errno
import hashlib
import io
import os
import tracemalloc
from collections.abc import AsyncIterator, Iterable
from pathlib import Path

import grpc
import pytest

from ktrdr.errors import BundleError
from ktrdr.training.v1 import backend_pb2 as pb
from ktrdr.transfer import Codec, TransferError, iter_submit_requests, receive_results, receiver
from tests.support.timing import scaled

KiB = 1 << 10
MiB = 1 << 20


async def stream(
    messages: Iterable[pb.SubmitResultsRequest],
) -> AsyncIterator[pb.SubmitResultsRequest]:
    for message in messages:
        yield message


def requests(path: Path, codec: Codec = Codec.RAW, chunk_size: int = 64 * KiB) -> list:
    return list(
        iter_submit_requests(
            path, session_id="op-1", strategy_name="rsi", codec=codec, chunk_size=chunk_size
        )
    )


@pytest.fixture
def archive(tmp_path: Path) -> Path:
    path = tmp_path / "bundle.tar"
    path.write_bytes(os.urandom(300 * KiB) + b"\0" * 300 * KiB)
    return path


@pytest.fixture
def incoming(tmp_path: Path) -> Path:
    path = tmp_path / "incoming"
    path.mkdir()
    return path


async def receive(messages: Iterable[pb.SubmitResultsRequest], incoming: Path, **kwargs):
    kwargs.setdefault("max_raw_bytes", 16 * MiB)
    return await receive_results(stream(messages), tmp_dir=incoming, **kwargs)


async def expect(
    code: grpc.StatusCode, messages, incoming: Path, match: str | None = None, **kwargs
):
    with pytest.raises(TransferError, match=match) as info:
        await receive(messages, incoming, **kwargs)
    assert info.value.code == code, info.value
    assert os.listdir(incoming) == []
    return info.value


@pytest.mark.parametrize("codec", list(Codec))
async def test_round_trip(codec: Codec, archive: Path, incoming: Path) -> None:
    validated: list[Path] = []
    result = await receive(requests(archive, codec), incoming, validate=validated.append)
    assert result.path.read_bytes() == archive.read_bytes()
    assert result.path.parent == incoming
    assert validated == [result.path]
    assert result.sha256 == hashlib.sha256(archive.read_bytes()).hexdigest()
    assert result.raw_size == archive.stat().st_size
    assert result.codec is codec
    assert result.header.session_id == "op-1"


async def test_header_missing(archive: Path, incoming: Path) -> None:
    await expect(grpc.StatusCode.INVALID_ARGUMENT, requests(archive)[1:], incoming, "header")


async def test_empty_stream(incoming: Path) -> None:
    await expect(grpc.StatusCode.INVALID_ARGUMENT, [], incoming, "header")


async def test_bad_header_lists_every_problem(archive: Path, incoming: Path) -> None:
    messages = requests(archive)
    messages[0].header.session_id = ""
    messages[0].header.codec = pb.CODEC_UNSPECIFIED
    messages[0].header.sha256 = "nothex"
    error = await expect(grpc.StatusCode.INVALID_ARGUMENT, messages, incoming)
    for field in ("session_id", "codec", "sha256"):
        assert f"header.{field}" in error.message


async def test_corrupted_chunk_is_data_loss(archive: Path, incoming: Path) -> None:
    messages = requests(archive)
    data = bytearray(messages[2].chunk.data)
    data[100] ^= 0xFF
    messages[2].chunk.data = bytes(data)
    await expect(grpc.StatusCode.DATA_LOSS, messages, incoming, "SHA-256")


async def test_corrupted_zstd_chunk_is_data_loss(archive: Path, incoming: Path) -> None:
    messages = requests(archive, Codec.ZSTD)
    data = bytearray(messages[1].chunk.data)
    data[len(data) // 2] ^= 0xFF
    messages[1].chunk.data = bytes(data)
    await expect(grpc.StatusCode.DATA_LOSS, messages, incoming)


async def test_missing_trailer_is_data_loss(archive: Path, incoming: Path) -> None:
    await expect(grpc.StatusCode.DATA_LOSS, requests(archive)[:-1], incoming, "trailer")


async def test_missing_chunk_is_data_loss(archive: Path, incoming: Path) -> None:
    messages = requests(archive)
    del messages[3]
    await expect(
        grpc.StatusCode.DATA_LOSS, messages, incoming, "chunk 3 arrived where chunk 2 was expected"
    )


async def test_trailer_count_mismatch_is_data_loss(archive: Path, incoming: Path) -> None:
    messages = requests(archive)
    messages[-1].trailer.chunk_count += 1
    await expect(grpc.StatusCode.DATA_LOSS, messages, incoming, "trailer says")


async def test_size_mismatch_is_data_loss(archive: Path, incoming: Path) -> None:
    messages = requests(archive)
    messages[0].header.raw_size_bytes += 1
    await expect(grpc.StatusCode.DATA_LOSS, messages, incoming, "announced")


async def test_message_after_trailer(archive: Path, incoming: Path) -> None:
    messages = requests(archive)
    messages.append(messages[1])
    await expect(grpc.StatusCode.INVALID_ARGUMENT, messages, incoming, "followed the trailer")


async def test_second_header(archive: Path, incoming: Path) -> None:
    messages = requests(archive)
    messages.insert(2, messages[0])
    await expect(grpc.StatusCode.INVALID_ARGUMENT, messages, incoming, "header")


async def test_announced_size_over_limit(archive: Path, incoming: Path) -> None:
    await expect(
        grpc.StatusCode.RESOURCE_EXHAUSTED,
        requests(archive),
        incoming,
        "maximum",
        max_raw_bytes=KiB,
    )


def bomb_requests(tmp_path: Path, codec: Codec, raw: int, claimed: int) -> list:
    """A bundle of ``raw`` zeros whose header claims ``claimed`` bytes (and that hash)."""
    path = tmp_path / "zeros.tar"
    with open(path, "wb") as f:
        for _ in range(raw // MiB):
            f.write(bytes(MiB))
    messages = requests(path, codec, chunk_size=MiB)
    messages[0].header.raw_size_bytes = claimed
    path.unlink()
    return messages


@pytest.mark.parametrize("codec", [Codec.ZSTD, Codec.GZIP])
async def test_bomb_past_the_maximum(codec: Codec, tmp_path: Path, incoming: Path) -> None:
    messages = bomb_requests(tmp_path, codec, raw=16 * MiB, claimed=4 * MiB)
    assert sum(len(m.chunk.data) for m in messages[1:-1]) < MiB  # tiny on the wire
    await expect(
        grpc.StatusCode.RESOURCE_EXHAUSTED,
        messages,
        incoming,
        "maximum of 4194304",
        max_raw_bytes=4 * MiB,
    )


async def test_bomb_past_the_announced_size(tmp_path: Path, incoming: Path) -> None:
    messages = bomb_requests(tmp_path, Codec.ZSTD, raw=8 * MiB, claimed=1000)
    await expect(grpc.StatusCode.RESOURCE_EXHAUSTED, messages, incoming, "announced raw size")


async def test_invalid_bundle(archive: Path, incoming: Path) -> None:
    def reject(path: Path) -> None:
        assert path.exists()
        raise BundleError("metadata.json is missing")

    await expect(
        grpc.StatusCode.INVALID_ARGUMENT,
        requests(archive),
        incoming,
        "metadata.json is missing",
        validate=reject,
    )


async def test_other_validation_errors_propagate_and_clean_up(
    archive: Path, incoming: Path
) -> None:
    def broken(path: Path) -> None:
        raise RuntimeError("boom")

    with pytest.raises(RuntimeError):
        await receive(requests(archive), incoming, validate=broken)
    assert os.listdir(incoming) == []


async def test_cancellation_removes_the_temp_file(archive: Path, incoming: Path) -> None:
    messages = requests(archive)
    stalled = asyncio.Event()

    async def stalling() -> AsyncIterator[pb.SubmitResultsRequest]:
        for message in messages[:4]:
            yield message
        stalled.set()
        await asyncio.Event().wait()  # the sender goes quiet; the RPC gets cancelled
        yield messages[4]

    task = asyncio.create_task(
        receive_results(stalling(), tmp_dir=incoming, max_raw_bytes=16 * MiB)
    )
    await asyncio.wait_for(stalled.wait(), scaled(5))
    assert len(os.listdir(incoming)) == 1
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    assert os.listdir(incoming) == []


async def test_memory_stays_bounded_while_receiving(tmp_path: Path, incoming: Path) -> None:
    """48 MiB through the receiver: what Python holds at once stays a few chunks."""
    size, chunk = 48 * MiB, MiB
    block = os.urandom(chunk)
    digest = hashlib.sha256()
    for _ in range(size // chunk):
        digest.update(block)
    header = pb.SubmitResultsRequest(
        header=pb.SubmitResultsHeader(
            session_id="op-1",
            strategy_name="rsi",
            raw_size_bytes=size,
            codec=pb.CODEC_RAW,
            sha256=digest.hexdigest(),
            chunk_size_bytes=chunk,
        )
    )

    async def lazy() -> AsyncIterator[pb.SubmitResultsRequest]:
        yield header
        for index in range(size // chunk):
            yield pb.SubmitResultsRequest(chunk=pb.SubmitResultsChunk(data=block, index=index))
        yield pb.SubmitResultsRequest(
            trailer=pb.SubmitResultsTrailer(chunk_count=size // chunk, encoded_size_bytes=size)
        )

    tracemalloc.start()
    try:
        result = await receive_results(lazy(), tmp_dir=incoming, max_raw_bytes=size)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert result.raw_size == size
    assert peak < 12 * MiB, f"peak {peak / MiB:.1f} MiB of Python objects"


async def test_a_failed_write_is_unavailable_and_leaves_nothing(
    archive: Path, incoming: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Disk full while writing: a status the host retries, no path in it, no file left."""

    class FullDisk(io.FileIO):
        def write(self, data: object) -> int:
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))

    def open_full_disk(fd: int, mode: str, buffering: int = -1) -> FullDisk:
        return FullDisk(fd, mode)

    monkeypatch.setattr(receiver, "open", open_full_disk, raising=False)
    error = await expect(grpc.StatusCode.UNAVAILABLE, requests(archive), incoming, "space")
    assert str(incoming) not in error.message
