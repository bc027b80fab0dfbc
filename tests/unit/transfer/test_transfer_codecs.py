"""Codec choice and the streaming encoders/decoders, with no gRPC involved."""

from __future__ import annotations

import gzip
import os

import numpy as np
import pytest
import zstandard

from ktrdr.transfer import Codec, CodecError, choose_codec, make_decoder, make_encoder

MiB = 1 << 20


def float_weights(n_bytes: int, seed: int = 0) -> bytes:
    rng = np.random.default_rng(seed)
    return rng.standard_normal(n_bytes // 4, dtype=np.float32).tobytes()


def encode(codec: Codec, data: bytes, piece: int = 300_000) -> bytes:
    encoder = make_encoder(codec, size=len(data))
    out = [encoder.compress(data[i : i + piece]) for i in range(0, len(data), piece)]
    out.append(encoder.flush())
    return b"".join(out)


def decode(codec: Codec, encoded: bytes, piece: int = 200_000, block: int = MiB) -> list[bytes]:
    pieces: list[bytes] = []
    decoder = make_decoder(codec, pieces.append, block_size=block)
    for i in range(0, len(encoded), piece):
        decoder.feed(encoded[i : i + piece])
    decoder.finish()
    return pieces


def test_random_bytes_choose_raw() -> None:
    assert choose_codec(os.urandom(MiB), link_bytes_per_s=1e3) is Codec.RAW


def test_repetitive_bytes_choose_zstd_where_it_pays() -> None:
    text = b"metadata, weights and more metadata " * 30_000
    assert choose_codec(text, link_bytes_per_s=1e6) is Codec.ZSTD  # ~1 s raw, ms compressed
    assert choose_codec(text, link_bytes_per_s=1e15) is Codec.RAW  # nothing can pay there


def test_float32_weights_go_raw_since_compressing_costs_more_than_it_saves() -> None:
    # ~8 % smaller: at 1 Gbit/s that saves ~0.7 ms of a MiB, compressing it costs more
    assert choose_codec(float_weights(MiB)) is Codec.RAW
    assert choose_codec(float_weights(MiB), link_bytes_per_s=1e6) is Codec.ZSTD  # 1 MB/s


def test_empty_sample_chooses_raw() -> None:
    assert choose_codec(b"") is Codec.RAW


def test_threshold_is_respected() -> None:
    sample = float_weights(MiB)  # ~7.5 % smaller with zstd
    assert choose_codec(sample, min_saving=0.05, link_bytes_per_s=1e6) is Codec.ZSTD
    assert choose_codec(sample, min_saving=0.20, link_bytes_per_s=1e6) is Codec.RAW


@pytest.mark.parametrize("codec", list(Codec))
def test_round_trip(codec: Codec) -> None:
    data = float_weights(MiB // 2) + b"\0" * MiB + os.urandom(1000)  # more than one block
    assert b"".join(decode(codec, encode(codec, data))) == data


def test_encoded_formats_are_standard() -> None:
    data = b"x" * 100_000 + os.urandom(1000)
    assert gzip.decompress(encode(Codec.GZIP, data)) == data
    assert zstandard.ZstdDecompressor().decompress(encode(Codec.ZSTD, data)) == data


@pytest.mark.parametrize("codec", list(Codec))
def test_decoded_pieces_are_bounded_even_for_a_bomb(codec: Codec) -> None:
    zeros = bytes(16 * MiB)  # 16 decoder blocks: enough to show they stay one block each
    encoded = encode(codec, zeros, piece=8 * MiB)
    if codec is not Codec.RAW:
        assert len(encoded) < MiB  # a real bomb: tiny on the wire
    pieces = decode(codec, encoded, piece=len(encoded) or 1, block=MiB)
    assert max(len(p) for p in pieces) <= MiB
    assert sum(len(p) for p in pieces) == len(zeros)


@pytest.mark.parametrize("codec", [Codec.ZSTD, Codec.GZIP])
def test_sink_can_stop_a_bomb_early(codec: Codec) -> None:
    encoded = encode(codec, bytes(32 * MiB), piece=16 * MiB)  # stopped after 4 of 32 MiB
    seen = 0

    class Stop(Exception):
        pass

    def sink(data: bytes) -> None:
        nonlocal seen
        seen += len(data)
        if seen > 4 * MiB:
            raise Stop

    decoder = make_decoder(codec, sink, block_size=MiB)
    with pytest.raises(Stop):
        decoder.feed(encoded)
    assert seen <= 5 * MiB


def test_corrupt_gzip_raises_codec_error() -> None:
    encoded = bytearray(encode(Codec.GZIP, os.urandom(100_000)))
    encoded[5000] ^= 0xFF
    with pytest.raises(CodecError):
        decode(Codec.GZIP, bytes(encoded))


def test_truncated_gzip_raises_codec_error() -> None:
    encoded = encode(Codec.GZIP, os.urandom(100_000))
    with pytest.raises(CodecError, match="truncated"):
        decode(Codec.GZIP, encoded[:-10])


def test_corrupt_zstd_raises_codec_error() -> None:
    encoded = bytearray(encode(Codec.ZSTD, b"abc" * 100_000))
    encoded[0] ^= 0xFF  # break the frame's magic number
    with pytest.raises(CodecError):
        decode(Codec.ZSTD, bytes(encoded))


def test_zstd_decoder_refuses_huge_windows() -> None:
    # the frame declares a 128 MiB window; level 1 writes it as fast as level 19 would not
    params = zstandard.ZstdCompressionParameters.from_level(1, window_log=27)
    data = os.urandom(MiB) * 2
    compressor = zstandard.ZstdCompressor(compression_params=params).compressobj()  # size unknown
    encoded = compressor.compress(data) + compressor.flush()
    with pytest.raises(CodecError):
        decode(Codec.ZSTD, encoded)
