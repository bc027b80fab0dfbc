"""Chunk messages serialized by hand are the generated code's messages, byte for byte parsed."""

from __future__ import annotations

import os
import random
from pathlib import Path

import pytest
from google.protobuf.message import DecodeError

from ktrdr.training.v1 import backend_pb2 as pb
from ktrdr.transfer import Codec, iter_submit_frames, iter_submit_requests
from ktrdr.transfer.framing import ChunkFrame, decode_request, encode_chunk, varint

KiB = 1 << 10


@pytest.mark.parametrize("index", [0, 1, 127, 128, 300, 2**31, 2**62])
@pytest.mark.parametrize("size", [0, 1, 127, 128, 16 * KiB + 3, 1 << 20])
def test_encoded_chunk_parses_as_the_message(index: int, size: int) -> None:
    data = os.urandom(size)
    frame = encode_chunk(data, index)
    parsed = pb.SubmitResultsRequest.FromString(frame)
    assert parsed.WhichOneof("part") == "chunk"
    assert parsed.chunk.index == index
    assert parsed.chunk.data == data
    # As long as the generated serializer's output, which leaves out default values (a zero
    # index, empty data: two bytes each here).
    expected = pb.SubmitResultsRequest(chunk=pb.SubmitResultsChunk(data=data, index=index))
    defaults = (index == 0) + (size == 0)
    assert len(frame) == len(expected.SerializeToString()) + 2 * defaults


def test_varint() -> None:
    assert varint(0) == b"\x00"
    assert varint(1) == b"\x01"
    assert varint(300) == b"\xac\x02"
    with pytest.raises(ValueError):
        varint(-1)


@pytest.mark.parametrize("codec", list(Codec))
def test_frames_are_the_serialized_requests(codec: Codec, tmp_path: Path) -> None:
    path = tmp_path / "bundle.tar"
    path.write_bytes(os.urandom(200 * KiB) + b"\0" * 100 * KiB)
    kwargs = dict(session_id="op-1", strategy_name="rsi", codec=codec, chunk_size=64 * KiB)
    messages = list(iter_submit_requests(path, **kwargs))  # type: ignore[arg-type]
    frames = list(iter_submit_frames(path, **kwargs))  # type: ignore[arg-type]
    assert [pb.SubmitResultsRequest.FromString(f) for f in frames] == messages


def test_chunks_decode_as_views_and_the_rest_as_messages() -> None:
    data = os.urandom(5000)
    for frame in (
        encode_chunk(data, 7),
        pb.SubmitResultsRequest(
            chunk=pb.SubmitResultsChunk(data=data, index=7)
        ).SerializeToString(),
    ):
        decoded = decode_request(frame)
        assert isinstance(decoded, ChunkFrame)
        assert decoded.WhichOneof("part") == "chunk"
        assert (decoded.chunk.index, bytes(decoded.chunk.data)) == (7, data)
        assert decoded.ByteSize() == len(frame)
    header = pb.SubmitResultsRequest(header=pb.SubmitResultsHeader(session_id="op-1"))
    trailer = pb.SubmitResultsRequest(trailer=pb.SubmitResultsTrailer(chunk_count=3))
    for message in (header, trailer, pb.SubmitResultsRequest()):
        assert decode_request(message.SerializeToString()) == message


def test_unusual_chunks_go_to_the_generated_parser() -> None:
    inner = b"\x10\x01\x0a\x03abc\x78\x05"  # index 1, data "abc", unknown field 15 = 5
    unknown_field = b"\x12" + bytes([len(inner)]) + inner
    huge_index = b"\x12\x0b\x10" + b"\xff" * 9 + b"\x01"  # 2**64 - 1: int64 -1
    for frame in (unknown_field, huge_index):
        decoded = decode_request(frame)
        assert isinstance(decoded, pb.SubmitResultsRequest)
        assert decoded == pb.SubmitResultsRequest.FromString(frame)


def test_malformed_bytes_raise_like_the_generated_parser() -> None:
    frame = encode_chunk(b"x" * 100, 3)
    with pytest.raises(DecodeError):
        decode_request(frame[:-1])  # truncated


def test_decoding_agrees_with_the_generated_parser_on_damaged_frames() -> None:
    rng = random.Random(7)
    frame = encode_chunk(bytes(range(40)), 300)
    for _ in range(2000):
        damaged = bytearray(frame)
        for _ in range(rng.randint(1, 3)):
            damaged[rng.randrange(len(damaged))] = rng.randrange(256)
        damaged = damaged[: rng.randint(0, len(damaged))] if rng.random() < 0.3 else damaged
        try:
            expected = pb.SubmitResultsRequest.FromString(bytes(damaged))
        except DecodeError:
            with pytest.raises(DecodeError):
                decode_request(bytes(damaged))
            continue
        decoded = decode_request(bytes(damaged))
        assert decoded.WhichOneof("part") == expected.WhichOneof("part")
        if expected.WhichOneof("part") == "chunk":
            assert decoded.chunk.index == expected.chunk.index
            assert bytes(decoded.chunk.data) == expected.chunk.data
