"""The sending side of ``Backend.SubmitResults``: header, ~1 MiB chunks, trailer.

The bundle archive is read incrementally, twice unless its hash is given: once to hash it (the
header carries the SHA-256 of the raw bytes), once to encode and send it. It is never held in
memory whole. A host that records the hash when it spools the bundle saves the first pass.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import itertools
import logging
import os
from collections.abc import (
    AsyncIterable,
    AsyncIterator,
    Callable,
    Generator,
    Iterable,
    Iterator,
    Mapping,
)
from pathlib import Path
from typing import Any, BinaryIO, TypeVar

import grpc

from ktrdr.training.v1 import backend_pb2 as pb
from ktrdr.training.v1 import backend_pb2_grpc as pb_grpc
from ktrdr.transfer.codecs import SAMPLE_SIZE, Codec, choose_codec, make_encoder
from ktrdr.transfer.framing import encode_chunk
from ktrdr.transfer.options import DEFAULT_CHUNK_SIZE
from ktrdr.transfer.protocol import codec_from_proto, codec_to_proto

logger = logging.getLogger(__name__)

T = TypeVar("T")

_BACKEND = pb.DESCRIPTOR.services_by_name["Backend"]
# The RPC's path, for a call made on a channel without the generated stub.
SUBMIT_RESULTS_METHOD = f"/{_BACKEND.full_name}/{_BACKEND.methods_by_name['SubmitResults'].name}"


def iter_submit_requests(
    archive_path: Path | str,
    *,
    session_id: str,
    strategy_name: str,
    metrics: Mapping[str, float] | None = None,
    bundle: pb.BundleSummary | None = None,
    codec: Codec | None = None,
    chunk_size: int = DEFAULT_CHUNK_SIZE,
    sha256: str | None = None,
    upload_credential: str = "",
) -> Generator[pb.SubmitResultsRequest, None, None]:
    """Yield the messages of one SubmitResults stream for the archive at ``archive_path``.

    ``codec=None`` picks one from the first 128 KiB (``choose_codec``). ``sha256`` may pass a
    hash computed earlier (e.g. when the bundle was spooled); otherwise the file is hashed in
    a first streaming pass. Every chunk but the last carries exactly ``chunk_size`` encoded
    bytes.
    """
    return _submit_stream(
        archive_path,
        _chunk_message,
        _as_message,
        session_id=session_id,
        strategy_name=strategy_name,
        metrics=metrics,
        bundle=bundle,
        codec=codec,
        chunk_size=chunk_size,
        sha256=sha256,
        upload_credential=upload_credential,
    )


def iter_submit_frames(
    archive_path: Path | str,
    *,
    session_id: str,
    strategy_name: str,
    metrics: Mapping[str, float] | None = None,
    bundle: pb.BundleSummary | None = None,
    codec: Codec | None = None,
    chunk_size: int = DEFAULT_CHUNK_SIZE,
    sha256: str | None = None,
    upload_credential: str = "",
) -> Generator[bytes, None, None]:
    """The messages of ``iter_submit_requests``, already serialized (chunks in one copy).

    For a call made without a request serializer (``send_results`` on a channel).
    """
    return _submit_stream(
        archive_path,
        encode_chunk,
        _serialized,
        session_id=session_id,
        strategy_name=strategy_name,
        metrics=metrics,
        bundle=bundle,
        codec=codec,
        chunk_size=chunk_size,
        sha256=sha256,
        upload_credential=upload_credential,
    )


def _chunk_message(data: bytes, index: int) -> pb.SubmitResultsRequest:
    return pb.SubmitResultsRequest(chunk=pb.SubmitResultsChunk(data=data, index=index))


def _as_message(message: pb.SubmitResultsRequest) -> pb.SubmitResultsRequest:
    return message


def _serialized(message: pb.SubmitResultsRequest) -> bytes:
    return message.SerializeToString()


def _submit_stream(
    archive_path: Path | str,
    chunk: Callable[[bytes, int], T],
    whole: Callable[[pb.SubmitResultsRequest], T],
    *,
    session_id: str,
    strategy_name: str,
    metrics: Mapping[str, float] | None,
    bundle: pb.BundleSummary | None,
    codec: Codec | None,
    chunk_size: int,
    sha256: str | None,
    upload_credential: str,
) -> Generator[T, None, None]:
    """Header, chunks and trailer; ``chunk(data, index)`` and ``whole(message)`` shape them."""
    if chunk_size <= 0:
        raise ValueError(f"chunk_size must be positive, got {chunk_size}")
    path = Path(archive_path)
    with open(path, "rb") as f:
        raw_size = os.fstat(f.fileno()).st_size
        if sha256 is None:
            sha256 = hashlib.file_digest(f, "sha256").hexdigest()
            f.seek(0)
        if codec is None:
            codec = choose_codec(f.read(SAMPLE_SIZE))
            f.seek(0)
        logger.debug(
            "sending %s for session %s: %d bytes, codec %s", path, session_id, raw_size, codec
        )
        yield whole(
            pb.SubmitResultsRequest(
                header=pb.SubmitResultsHeader(
                    session_id=session_id,
                    strategy_name=strategy_name,
                    bundle=bundle,
                    metrics=dict(metrics or {}),
                    raw_size_bytes=raw_size,
                    codec=codec_to_proto(codec),
                    sha256=sha256,
                    chunk_size_bytes=chunk_size,
                    upload_credential=upload_credential,
                )
            )
        )
        index = 0
        encoded_size = 0
        for data in _encoded_chunks(f, codec, raw_size, chunk_size):
            yield chunk(data, index)
            index += 1
            encoded_size += len(data)
        yield whole(
            pb.SubmitResultsRequest(
                trailer=pb.SubmitResultsTrailer(chunk_count=index, encoded_size_bytes=encoded_size)
            )
        )


def _encoded_chunks(f: BinaryIO, codec: Codec, raw_size: int, chunk_size: int) -> Iterator[bytes]:
    """The file's encoded bytes in pieces of exactly ``chunk_size`` (the last may be shorter)."""
    if codec is Codec.RAW:  # no re-chunking needed: read straight into chunks
        while block := f.read(chunk_size):
            yield block
        return
    encoder = make_encoder(codec, size=raw_size)
    pending = bytearray()
    eof = False
    while not eof:
        block = f.read(chunk_size)
        if block:
            pending += encoder.compress(block)
        else:
            pending += encoder.flush()
            eof = True
        # Full chunks go out as soon as they exist; the final short one once input ends.
        while len(pending) >= chunk_size or (eof and pending):
            with memoryview(pending) as view:
                data = bytes(view[:chunk_size])
            del pending[:chunk_size]
            yield data


_DONE = object()


async def _in_thread(iterator: Iterator[T]) -> AsyncIterator[T]:
    """Iterate a blocking iterator in a worker thread, one item ahead of the consumer.

    Reading, hashing and compressing stay off the event loop, and the next chunk is prepared
    while gRPC sends the current one. On cancellation the item in progress is waited for
    before the iterator is closed, so the file is closed cleanly.
    """
    loop = asyncio.get_running_loop()
    future: asyncio.Future[object] | None = None
    try:
        future = loop.run_in_executor(None, next, iterator, _DONE)
        while True:
            item = await asyncio.shield(future)
            if item is _DONE:
                future = None
                return
            future = loop.run_in_executor(None, next, iterator, _DONE)
            yield item  # type: ignore[misc]
    finally:
        if future is not None and not future.done():
            with contextlib.suppress(BaseException):
                await asyncio.wait([future])
        if future is not None and future.done() and not future.cancelled():
            future.exception()  # retrieved: the error that matters is already propagating
        close = getattr(iterator, "close", None)
        if close is not None:
            with contextlib.suppress(ValueError):  # still running after a second cancel
                close()


async def send_results(
    target: pb_grpc.BackendStub | grpc.aio.Channel,
    archive_path: Path | str,
    *,
    session_id: str,
    strategy_name: str,
    timeout_s: float,
    metrics: Mapping[str, float] | None = None,
    bundle: pb.BundleSummary | None = None,
    codec: Codec | None = None,
    chunk_size: int = DEFAULT_CHUNK_SIZE,
    sha256: str | None = None,
    upload_credential: str = "",
) -> pb.SubmitResultsResponse:
    """Send one bundle with ``SubmitResults`` on a ``grpc.aio`` channel, or a stub of one.

    On a channel the messages are serialized here (``iter_submit_frames``: each chunk's data
    is copied once instead of three times), which is what the host does; a stub sends the
    same messages as protobuf objects. The call's deadline is ``timeout_s`` seconds for the
    whole stream. Raises ``grpc.aio.AioRpcError`` when the backend refuses the bundle or the
    deadline passes; the caller (the host's ResultSender) decides whether to retry.
    """
    stream = iter_submit_frames if isinstance(target, grpc.aio.Channel) else iter_submit_requests
    requests: Generator[Any, None, None] = stream(
        archive_path,
        session_id=session_id,
        strategy_name=strategy_name,
        metrics=metrics,
        bundle=bundle,
        codec=codec,
        chunk_size=chunk_size,
        sha256=sha256,
        upload_credential=upload_credential,
    )
    try:
        # The header needs the hash of the whole file: compute it off the event loop.
        header = await asyncio.to_thread(next, requests)
        if isinstance(header, bytes):
            header_codec = pb.SubmitResultsRequest.FromString(header).header.codec
        else:
            header_codec = header.header.codec
        source: Iterable[Any] | AsyncIterable[Any]
        if codec_from_proto(header_codec) is Codec.RAW:
            # Reading a raw chunk costs less than serializing it, and thread hand-offs cost
            # more than they save (measured): gRPC reads the file on the event loop.
            source = itertools.chain([header], requests)
        else:
            source = _prepend(header, _in_thread(requests))
        if isinstance(target, grpc.aio.Channel):
            call = target.stream_unary(
                SUBMIT_RESULTS_METHOD,
                response_deserializer=pb.SubmitResultsResponse.FromString,
            )
        else:
            call = target.SubmitResults
        response: pb.SubmitResultsResponse = await call(source, timeout=timeout_s)
    finally:
        with contextlib.suppress(ValueError):  # a worker thread may still be reading
            requests.close()
    return response


async def _prepend(first: T, rest: AsyncIterator[T]) -> AsyncIterator[T]:
    yield first
    async for item in rest:
        yield item
