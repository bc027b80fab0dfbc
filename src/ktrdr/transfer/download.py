"""``Backend.DownloadModel`` framing: a header, chunks, a trailer, as ``SubmitResults``.

The sending side encodes the archive's bytes from a byte ``offset`` on (one codec stream),
so a client resumes an interrupted download by asking for the bytes it lacks. The receiving
side appends the decoded bytes to a partial file, bounding them by the announced size, then
checks the trailer, the size and the SHA-256 of the whole file. Both sides stream; neither
holds an archive in memory.
"""

from __future__ import annotations

import hashlib
import os
from collections.abc import Iterable, Iterator
from pathlib import Path

from ktrdr.training.v1 import backend_pb2 as pb
from ktrdr.training.v1 import common_pb2
from ktrdr.transfer.codecs import (
    SAMPLE_SIZE,
    Codec,
    CodecError,
    choose_codec,
    make_decoder,
    make_encoder,
)
from ktrdr.transfer.errors import TransferError
from ktrdr.transfer.hashing import is_sha256_hex
from ktrdr.transfer.options import DEFAULT_CHUNK_SIZE
from ktrdr.transfer.protocol import codec_from_proto, codec_to_proto

MAX_DOWNLOAD_CHUNK = 4 << 20


def iter_download_responses(
    archive_path: Path | str,
    *,
    model: common_pb2.ModelReference,
    sha256: str,
    offset: int = 0,
    codec: Codec | None = None,
    chunk_size: int = DEFAULT_CHUNK_SIZE,
) -> Iterator[pb.DownloadModelResponse]:
    """The messages of one DownloadModel stream for the archive's bytes from ``offset`` on."""
    if chunk_size <= 0:
        raise ValueError(f"chunk_size must be positive, got {chunk_size}")
    with open(archive_path, "rb") as f:
        raw_size = os.fstat(f.fileno()).st_size
        if not 0 <= offset <= raw_size:
            raise ValueError(f"offset {offset} outside 0..{raw_size}")
        f.seek(offset)
        if codec is None:
            codec = choose_codec(f.read(SAMPLE_SIZE))
            f.seek(offset)
        yield pb.DownloadModelResponse(
            header=pb.DownloadModelHeader(
                model=model,
                raw_size_bytes=raw_size,
                sha256=sha256,
                codec=codec_to_proto(codec),
                chunk_size_bytes=chunk_size,
                offset=offset,
            )
        )
        index = 0
        encoded = 0
        encoder = make_encoder(codec, size=raw_size - offset)
        pending = bytearray()
        eof = False
        while not eof:
            block = f.read(chunk_size)
            if block:
                pending += encoder.compress(block)
            else:
                pending += encoder.flush()
                eof = True
            while len(pending) >= chunk_size or (eof and pending):
                data = bytes(pending[:chunk_size])
                del pending[:chunk_size]
                yield pb.DownloadModelResponse(chunk=pb.SubmitResultsChunk(data=data, index=index))
                index += 1
                encoded += len(data)
        yield pb.DownloadModelResponse(
            trailer=pb.SubmitResultsTrailer(chunk_count=index, encoded_size_bytes=encoded)
        )


def receive_download(
    responses: Iterable[pb.DownloadModelResponse],
    part_path: Path | str,
    *,
    max_raw_bytes: int,
    expected_sha256: str = "",
) -> pb.DownloadModelHeader:
    """Append one DownloadModel stream to ``part_path`` and verify the whole file.

    The file must hold exactly the header's ``offset`` bytes before (what an earlier,
    interrupted download left). Raises ``TransferError`` (DATA_LOSS for a corrupt, short or
    mismatching stream, INVALID_ARGUMENT for a malformed one, RESOURCE_EXHAUSTED past the
    limits); the bytes received before a failure stay in the file for a resume only when
    the stream broke off, never after a hash or decoding failure (the file is removed).
    """
    import grpc  # the status codes only

    iterator = iter(responses)
    first = next(iterator, None)
    if first is None or first.WhichOneof("part") != "header":
        raise TransferError(grpc.StatusCode.INVALID_ARGUMENT, "download: no header first")
    header = first.header
    codec = codec_from_proto(header.codec)
    if codec is None or not is_sha256_hex(header.sha256) or header.raw_size_bytes < 0:
        raise TransferError(grpc.StatusCode.INVALID_ARGUMENT, "download: malformed header")
    if expected_sha256 and header.sha256 != expected_sha256:
        raise TransferError(
            grpc.StatusCode.DATA_LOSS,
            f"download: the server sends sha256 {header.sha256}, {expected_sha256} was expected",
        )
    if header.raw_size_bytes > max_raw_bytes:
        raise TransferError(
            grpc.StatusCode.RESOURCE_EXHAUSTED,
            f"download: {header.raw_size_bytes} bytes exceed the limit of {max_raw_bytes}",
        )
    path = Path(part_path)
    have = path.stat().st_size if path.exists() else 0
    if have != header.offset:
        raise TransferError(
            grpc.StatusCode.INVALID_ARGUMENT,
            f"download: the stream starts at byte {header.offset}, the file holds {have}",
        )
    limit = header.raw_size_bytes
    size = have

    with open(path, "ab") as out:

        def sink(data: bytes | memoryview) -> None:
            nonlocal size
            size += len(data)
            if size > limit:
                raise TransferError(
                    grpc.StatusCode.DATA_LOSS,
                    f"download: more than the announced {limit} bytes arrived",
                )
            out.write(data)

        decoder = make_decoder(codec, sink)
        expected = 0
        encoded = 0
        try:
            for message in iterator:
                part = message.WhichOneof("part")
                if part == "chunk":
                    if message.chunk.index != expected:
                        raise TransferError(
                            grpc.StatusCode.DATA_LOSS,
                            f"download: chunk {message.chunk.index} arrived where {expected} "
                            "was expected",
                        )
                    expected += 1
                    encoded += len(message.chunk.data)
                    decoder.feed(message.chunk.data)
                elif part == "trailer":
                    decoder.finish()
                    if (message.trailer.chunk_count, message.trailer.encoded_size_bytes) != (
                        expected,
                        encoded,
                    ):
                        raise TransferError(
                            grpc.StatusCode.DATA_LOSS, "download: the trailer does not match"
                        )
                    break
                else:
                    raise TransferError(
                        grpc.StatusCode.INVALID_ARGUMENT, f"download: unexpected {part}"
                    )
            else:
                # broken off: keep what arrived (whole chunks, decoded) for a resume
                raise TransferError(
                    grpc.StatusCode.DATA_LOSS,
                    f"download: the stream ended after {size} of {limit} bytes",
                )
        except CodecError as exc:
            out.close()
            path.unlink(missing_ok=True)
            raise TransferError(grpc.StatusCode.DATA_LOSS, f"download: {exc}") from exc
        except TransferError as exc:
            if "stream ended" not in exc.message:
                out.close()
                path.unlink(missing_ok=True)
            raise
    if size != limit:
        path.unlink(missing_ok=True)
        raise TransferError(
            grpc.StatusCode.DATA_LOSS, f"download: {size} bytes arrived, {limit} announced"
        )
    with open(path, "rb") as f:
        digest = hashlib.file_digest(f, "sha256").hexdigest()
    if digest != header.sha256:
        path.unlink(missing_ok=True)
        raise TransferError(
            grpc.StatusCode.DATA_LOSS,
            f"download: the file hashes to {digest}, the server announced {header.sha256}",
        )
    return header


__all__ = ["MAX_DOWNLOAD_CHUNK", "iter_download_responses", "receive_download"]
