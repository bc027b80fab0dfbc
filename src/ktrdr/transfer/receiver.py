"""The receiving side of ``Backend.SubmitResults``.

``receive_results`` streams the decoded bundle to a temporary file (never holding it in
memory), bounds its decompressed size while decoding, checks the chunk sequence, the trailer,
the size and the SHA-256, then lets the caller validate the bundle. Any failure removes the
temporary file and raises ``TransferError`` with the gRPC status to send.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import logging
import tempfile
from collections.abc import AsyncIterable, AsyncIterator, Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TypeVar

import grpc

from ktrdr.errors import BundleError
from ktrdr.training.v1 import backend_pb2 as pb
from ktrdr.transfer.codecs import Codec, CodecError, make_decoder
from ktrdr.transfer.errors import TransferError
from ktrdr.transfer.framing import SubmitRequest
from ktrdr.transfer.hashing import is_sha256_hex
from ktrdr.transfer.pipeline import ChunkPipeline
from ktrdr.transfer.protocol import codec_from_proto
from ktrdr.transfer.writer import FileWriter

logger = logging.getLogger(__name__)

T = TypeVar("T")

TEMP_PREFIX = ".submit-"
TEMP_SUFFIX = ".part"


@dataclass(frozen=True)
class ReceivedResults:
    """A received, verified and validated bundle. The caller moves or deletes ``path``."""

    path: Path
    header: pb.SubmitResultsHeader
    sha256: str
    raw_size: int
    codec: Codec
    encoded_size: int


class _Overflow(Exception):
    """Raised by the sink when decoded output passes the limit in force."""


class _BoundedFileSink:
    """Hashes and counts decoded bytes, up to a limit, and hands them to the file's writer."""

    def __init__(self, writer: FileWriter, limit: int) -> None:
        self._writer = writer
        self._limit = limit
        self.size = 0
        self.hash = hashlib.sha256()

    def __call__(self, data: bytes | memoryview) -> None:
        self.size += len(data)
        if self.size > self._limit:
            raise _Overflow
        self.hash.update(data)
        self._writer.write(data)


async def _run_blocking(func: Callable[..., T], *args: object) -> T:
    """Run ``func`` in a worker thread; if cancelled, wait for it before propagating.

    The worker writes to the temporary file, so it must be done before the file is removed.
    """
    future = asyncio.get_running_loop().run_in_executor(None, func, *args)
    try:
        return await asyncio.shield(future)
    except asyncio.CancelledError:
        with contextlib.suppress(BaseException):
            await asyncio.wait([future])
        raise


def _check_header(
    message: SubmitRequest | None, max_raw_bytes: int
) -> tuple[pb.SubmitResultsHeader, Codec]:
    if message is None:
        raise TransferError(
            grpc.StatusCode.INVALID_ARGUMENT, "empty SubmitResults stream: expected a header"
        )
    part = message.WhichOneof("part")
    if part != "header" or not isinstance(message, pb.SubmitResultsRequest):
        raise TransferError(
            grpc.StatusCode.INVALID_ARGUMENT,
            f"the first SubmitResults message must be a header, got {part or 'an empty message'}",
        )
    header = message.header
    problems = []
    if not header.session_id:
        problems.append("header.session_id: required")
    if not header.strategy_name:
        problems.append("header.strategy_name: required")
    codec = codec_from_proto(header.codec)
    if codec is None:
        problems.append(f"header.codec: must be RAW, ZSTD or GZIP, got {header.codec}")
    if header.raw_size_bytes < 0:
        problems.append(f"header.raw_size_bytes: must be >= 0, got {header.raw_size_bytes}")
    if not is_sha256_hex(header.sha256):
        problems.append("header.sha256: must be 64 lowercase hex characters")
    if problems:
        raise TransferError(grpc.StatusCode.INVALID_ARGUMENT, "; ".join(problems))
    if header.raw_size_bytes > max_raw_bytes:
        raise TransferError(
            grpc.StatusCode.RESOURCE_EXHAUSTED,
            f"bundle of {header.raw_size_bytes} bytes exceeds the maximum of {max_raw_bytes} bytes",
        )
    assert codec is not None
    return header, codec


async def _next(iterator: AsyncIterator[SubmitRequest]) -> SubmitRequest | None:
    try:
        return await anext(iterator)
    except StopAsyncIteration:
        return None


async def receive_results(
    request_iterator: AsyncIterable[SubmitRequest],
    *,
    tmp_dir: Path | str,
    max_raw_bytes: int,
    validate: Callable[[Path], None] | None = None,
) -> ReceivedResults:
    """Receive one SubmitResults stream into a verified temporary file in ``tmp_dir``.

    ``validate(path)`` runs (in a worker thread) once the bytes are verified; a
    ``BundleError`` from it becomes INVALID_ARGUMENT. Status codes of ``TransferError``:
    INVALID_ARGUMENT (no header first, bad header, message after the trailer, invalid
    bundle), RESOURCE_EXHAUSTED (bigger than ``max_raw_bytes``, or than the header's raw
    size, while decompressing), DATA_LOSS (chunk out of sequence, no trailer, trailer or size
    mismatch, corrupt encoding, hash mismatch), UNAVAILABLE (the temporary file could not be
    written, e.g. a full disk). On any failure or cancellation the temporary file is removed.

    A refusal is raised only after the rest of the client's stream has been read (bounded by
    twice ``max_raw_bytes``): a gRPC Python client that is still writing when the server ends
    a client-streaming call may see INTERNAL instead of the status the server sent.
    """
    iterator = aiter(request_iterator)
    try:
        return await _receive(iterator, tmp_dir, max_raw_bytes, validate)
    except TransferError:
        await drain(iterator, 2 * max_raw_bytes)
        raise


# A refused stream is read for at most this long before the refusal is answered.
DRAIN_DEADLINE_S = 5.0


async def drain(
    iterator: AsyncIterator[SubmitRequest], budget_bytes: int, deadline_s: float | None = None
) -> None:
    """Read and discard what is left of a refused stream, at most ``budget_bytes`` and for
    at most ``deadline_s`` (a client that sends nothing is answered then, not never)."""
    with contextlib.suppress(Exception):
        async with asyncio.timeout(DRAIN_DEADLINE_S if deadline_s is None else deadline_s):
            async for message in iterator:
                budget_bytes -= message.ByteSize()
                if budget_bytes < 0:
                    return


async def _receive(
    iterator: AsyncIterator[SubmitRequest],
    tmp_dir: Path | str,
    max_raw_bytes: int,
    validate: Callable[[Path], None] | None,
) -> ReceivedResults:
    header, codec = _check_header(await _next(iterator), max_raw_bytes)
    raw_size = header.raw_size_bytes
    limit = min(raw_size, max_raw_bytes)

    fd, name = tempfile.mkstemp(prefix=TEMP_PREFIX, suffix=TEMP_SUFFIX, dir=tmp_dir)
    path = Path(name)
    ok = False
    try:
        # Unbuffered: chunks are large, and a buffered writer would copy each one once more.
        with open(fd, "wb", buffering=0) as file:
            writer = FileWriter(file)
            sink = _BoundedFileSink(writer, limit)
            try:
                pipeline = ChunkPipeline(make_decoder(codec, sink), writer=writer)
            except BaseException:  # e.g. no thread could be started: the writer's must end
                writer.stop()
                raise
            try:
                encoded_size = await _receive_chunks(iterator, pipeline, header.session_id)
                await pipeline.finish()
            finally:
                await pipeline.close()
        if sink.size != raw_size:
            raise TransferError(
                grpc.StatusCode.DATA_LOSS,
                f"received {sink.size} bytes after decoding, the header announced {raw_size}",
            )
        digest = sink.hash.hexdigest()
        if digest != header.sha256:
            raise TransferError(
                grpc.StatusCode.DATA_LOSS,
                f"SHA-256 mismatch: received bytes hash to {digest}, "
                f"the header announced {header.sha256}",
            )
        if validate is not None:
            try:
                await _run_blocking(validate, path)
            except BundleError as exc:
                raise TransferError(
                    grpc.StatusCode.INVALID_ARGUMENT, f"not a valid model bundle: {exc}"
                ) from exc
        ok = True
    except _Overflow:
        if sink.size > max_raw_bytes:
            message = f"decompressed bundle exceeds the maximum of {max_raw_bytes} bytes"
        else:
            message = f"decompressed bundle exceeds the announced raw size of {raw_size} bytes"
        raise TransferError(grpc.StatusCode.RESOURCE_EXHAUSTED, message) from None
    except CodecError as exc:
        raise TransferError(grpc.StatusCode.DATA_LOSS, f"{codec} stream: {exc}") from exc
    except OSError as exc:  # writing the temporary file failed (disk full, ...)
        logger.error(
            "SubmitResults for session %s: writing %s failed: %s", header.session_id, path, exc
        )
        raise TransferError(
            grpc.StatusCode.UNAVAILABLE,
            f"the backend could not store the upload ({exc.strerror or type(exc).__name__}); "
            "retry later",
        ) from None
    finally:
        if not ok:
            path.unlink(missing_ok=True)
    logger.info(
        "received bundle for session %s: %d bytes (%d on the wire, %s), sha256 %s",
        header.session_id,
        raw_size,
        encoded_size,
        codec,
        digest,
    )
    return ReceivedResults(
        path=path,
        header=header,
        sha256=digest,
        raw_size=raw_size,
        codec=codec,
        encoded_size=encoded_size,
    )


async def _receive_chunks(
    iterator: AsyncIterator[SubmitRequest], pipeline: ChunkPipeline, session_id: str
) -> int:
    """Hand chunks to the pipeline until the trailer and the end of the stream; return the
    encoded size.

    The pipeline's worker decodes, hashes and writes while the next chunks are received; its
    queue is bounded, so memory stays bounded; its first error is raised by the next ``put``.
    """
    expected = 0
    encoded_size = 0
    while True:
        message = await _next(iterator)
        if message is None:
            raise TransferError(
                grpc.StatusCode.DATA_LOSS,
                f"stream for session {session_id} ended after {expected} chunks without a "
                "trailer: the transfer is incomplete",
            )
        part = message.WhichOneof("part")
        if part == "chunk":
            chunk = message.chunk
            if chunk.index != expected:
                raise TransferError(
                    grpc.StatusCode.DATA_LOSS,
                    f"chunk {chunk.index} arrived where chunk {expected} was expected",
                )
            expected += 1
            data = chunk.data
            encoded_size += len(data)
            await pipeline.put(data)
        elif part == "trailer":
            assert isinstance(message, pb.SubmitResultsRequest)  # only chunks are frames
            trailer = message.trailer
            if trailer.chunk_count != expected:
                raise TransferError(
                    grpc.StatusCode.DATA_LOSS,
                    f"trailer says {trailer.chunk_count} chunks, {expected} arrived",
                )
            if trailer.encoded_size_bytes != encoded_size:
                raise TransferError(
                    grpc.StatusCode.DATA_LOSS,
                    f"trailer says {trailer.encoded_size_bytes} encoded bytes, "
                    f"{encoded_size} arrived",
                )
            if await _next(iterator) is not None:
                raise TransferError(
                    grpc.StatusCode.INVALID_ARGUMENT, "a message followed the trailer"
                )
            return encoded_size
        else:
            raise TransferError(
                grpc.StatusCode.INVALID_ARGUMENT,
                f"unexpected {part or 'empty message'} after the header "
                f"(chunk {expected} or the trailer expected)",
            )
