"""Codecs for model bundles on the wire: choosing one, streaming encoders and decoders.

zstd when compressing a sample, timed, shows that it pays for itself: the time to compress
and decompress the sample plus the time to send what is left must beat sending the sample raw
at ``LINK_BYTES_PER_S``; raw otherwise. gzip is accepted and can be chosen explicitly.
Measured here on float32 weights: zstd level 1 gives ~1.08x at ~700 MB/s on a quiet machine
(level 3 the same ratio at ~470 MB/s, gzip ~1.08x at ~27 MB/s), so weights go raw: the 8 %
saved is worth less than the compressing even on a 1 Gbit/s link, and far less on loopback
(~0.9 GB/s for gRPC Python). Byte-shuffling float32 before zstd gives ~1.19x, still short of
paying at those rates once the shuffle and unshuffle are counted (``bench_transfer``).

Decoders never hold more than ``block_size`` bytes of output at a time: they hand the decoded
bytes to a sink piece by piece, and the sink may raise to stop a stream that grows too large
(so a zip bomb is stopped while it is being decompressed, not after).
"""

from __future__ import annotations

import enum
import time
import zlib
from collections.abc import Callable
from typing import IO, Protocol, cast

import zstandard

# Bytes of a bundle's start that ``choose_codec`` compresses to decide: enough to see the
# ratio, little enough that the choice costs ~1 % of sending a 10 MB bundle.
SAMPLE_SIZE = 128 << 10
# zstd is considered only when the sample shrinks by at least this share...
MIN_SAVING = 0.05
# ... and when compressing, sending the rest and decompressing beats sending raw bytes at this
# rate (1 Gbit/s: a network link; loopback moves ~0.9 GB/s, where compression pays even less).
LINK_BYTES_PER_S = 125e6
# Level 1 compresses float weights as well as level 3, half again as fast.
ZSTD_LEVEL = 1
GZIP_LEVEL = 6
# Largest zstd window a decoder accepts (levels up to 19 stay below it). Bounds the
# receiver's memory whatever the frame header claims.
ZSTD_MAX_WINDOW = 1 << 23
# Largest piece of decoded output handed to the sink at once.
DECODE_BLOCK_SIZE = 1 << 20

# gzip container (not raw deflate, not zlib): RFC 1952 header and trailer.
_GZIP_WBITS = 31

# Decoded bytes are valid only during the call (a view into a larger chunk for raw data):
# a sink that keeps them must copy them.
Sink = Callable[[bytes | memoryview], None]


class Codec(enum.StrEnum):
    """How a bundle's bytes are encoded on the wire."""

    RAW = "raw"
    ZSTD = "zstd"
    GZIP = "gzip"


class CodecError(ValueError):
    """Encoded data is corrupt or incomplete."""


class Encoder(Protocol):
    """A streaming compressor: feed bytes with ``compress``, end with ``flush`` once."""

    def compress(self, data: bytes) -> bytes: ...

    def flush(self) -> bytes: ...


class Decoder(Protocol):
    """A streaming decompressor writing decoded bytes to a sink in bounded pieces."""

    def feed(self, data: bytes | memoryview) -> None: ...

    def finish(self) -> None: ...


def choose_codec(
    sample: bytes,
    *,
    min_saving: float = MIN_SAVING,
    link_bytes_per_s: float = LINK_BYTES_PER_S,
) -> Codec:
    """ZSTD when ``sample`` compresses at least ``min_saving`` smaller and compressing it,
    sending the rest at ``link_bytes_per_s`` and decompressing it (both timed here, in CPU
    time of this thread, which other processes on a busy machine do not inflate) takes less
    time than sending it raw; else RAW."""
    if not sample:
        return Codec.RAW
    start = time.thread_time()
    compressed = zstandard.ZstdCompressor(level=ZSTD_LEVEL).compress(sample)
    encode_s = time.thread_time() - start
    raw_s = len(sample) / link_bytes_per_s
    zstd_s = encode_s + len(compressed) / link_bytes_per_s
    if len(compressed) > (1.0 - min_saving) * len(sample) or zstd_s >= raw_s:
        return Codec.RAW  # (without timing the decompression: it cannot pay already)
    start = time.thread_time()
    zstandard.ZstdDecompressor().decompress(compressed)
    decode_s = time.thread_time() - start
    return Codec.ZSTD if zstd_s + decode_s < raw_s else Codec.RAW


def make_encoder(codec: Codec, *, size: int = -1) -> Encoder:
    """A fresh encoder; ``size`` (the raw size, if known) lets zstd record it in the frame."""
    if codec is Codec.RAW:
        return _RawEncoder()
    if codec is Codec.ZSTD:
        return zstandard.ZstdCompressor(level=ZSTD_LEVEL).compressobj(size=size)
    if codec is Codec.GZIP:
        return zlib.compressobj(GZIP_LEVEL, zlib.DEFLATED, _GZIP_WBITS)
    raise ValueError(f"unknown codec {codec!r}")


def make_decoder(codec: Codec, sink: Sink, *, block_size: int = DECODE_BLOCK_SIZE) -> Decoder:
    """A fresh decoder that passes decoded bytes to ``sink``, at most ``block_size`` at once.

    ``feed``/``finish`` raise ``CodecError`` on corrupt or incomplete data; exceptions raised
    by ``sink`` propagate unchanged.
    """
    if codec is Codec.RAW:
        return _RawDecoder(sink, block_size)
    if codec is Codec.ZSTD:
        return _ZstdDecoder(sink, block_size)
    if codec is Codec.GZIP:
        return _GzipDecoder(sink, block_size)
    raise ValueError(f"unknown codec {codec!r}")


class _RawEncoder:
    def compress(self, data: bytes) -> bytes:
        return data

    def flush(self) -> bytes:
        return b""


class _RawDecoder:
    def __init__(self, sink: Sink, block_size: int) -> None:
        self._sink = sink
        self._block = block_size

    def feed(self, data: bytes | memoryview) -> None:
        if len(data) <= self._block:
            if data:
                self._sink(data)
            return
        with memoryview(data) as view:  # slices share the chunk's buffer: no copy
            for start in range(0, len(view), self._block):
                self._sink(view[start : start + self._block])

    def finish(self) -> None:
        pass


class _SinkWriter:
    """The file-like object zstd's stream writer writes its output to."""

    def __init__(self, sink: Sink) -> None:
        self._sink = sink

    def write(self, data: bytes) -> int:
        self._sink(bytes(data))
        return len(data)

    def flush(self) -> None:
        pass


class _ZstdDecoder:
    def __init__(self, sink: Sink, block_size: int) -> None:
        dctx = zstandard.ZstdDecompressor(max_window_size=ZSTD_MAX_WINDOW)
        # write_size bounds each piece handed to the sink; output is produced as it goes.
        writer = cast(IO[bytes], _SinkWriter(sink))
        self._writer = dctx.stream_writer(writer, write_size=block_size, closefd=False)

    def feed(self, data: bytes | memoryview) -> None:
        try:
            self._writer.write(data)
        except zstandard.ZstdError as exc:
            raise CodecError(f"corrupt zstd data: {exc}") from exc

    def finish(self) -> None:
        # A truncated frame is caught by the caller's size and hash checks.
        pass


class _GzipDecoder:
    def __init__(self, sink: Sink, block_size: int) -> None:
        self._sink = sink
        self._block = block_size
        self._d = zlib.decompressobj(_GZIP_WBITS)

    def feed(self, data: bytes | memoryview) -> None:
        if self._d.eof:
            if data:
                raise CodecError("data after the end of the gzip stream")
            return
        try:
            while True:
                out = self._d.decompress(data, self._block)
                if out:
                    self._sink(out)
                data = self._d.unconsumed_tail
                # A full block may leave output pending inside zlib: ask again until a short
                # block shows that everything fed so far has been decoded.
                if self._d.eof or (not data and len(out) < self._block):
                    break
        except zlib.error as exc:
            raise CodecError(f"corrupt gzip data: {exc}") from exc
        if self._d.eof and self._d.unused_data:
            raise CodecError("data after the end of the gzip stream")

    def finish(self) -> None:
        if not self._d.eof:
            raise CodecError("the gzip stream is truncated")
