"""Chunk messages serialized by hand are the generated code's messages, byte for byte parsed."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from ktrdr.training.v1 import backend_pb2 as pb
from ktrdr.transfer import Codec, iter_submit_frames, iter_submit_requests
from ktrdr.transfer.framing import encode_chunk, varint

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
