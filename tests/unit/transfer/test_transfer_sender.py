"""The sending side: the SubmitResults messages built from a file."""

from __future__ import annotations

import hashlib
import os
from pathlib import Path

import pytest

from ktrdr.training.v1 import backend_pb2 as pb
from ktrdr.transfer import Codec, codec_to_proto, grpc_options, iter_submit_requests

KiB = 1 << 10


@pytest.fixture
def archive(tmp_path: Path) -> Path:
    path = tmp_path / "bundle.tar"
    path.write_bytes(os.urandom(250 * KiB + 17))
    return path


def test_header_chunks_trailer(archive: Path) -> None:
    messages = list(
        iter_submit_requests(
            archive,
            session_id="op-1",
            strategy_name="rsi",
            metrics={"test_accuracy": 0.5},
            bundle=pb.BundleSummary(model_type="mlp", feature_count=12, seed=7),
            codec=Codec.RAW,
            chunk_size=64 * KiB,
        )
    )
    header = messages[0].header
    assert messages[0].WhichOneof("part") == "header"
    assert header.session_id == "op-1"
    assert header.strategy_name == "rsi"
    assert dict(header.metrics) == {"test_accuracy": 0.5}
    assert header.bundle.model_type == "mlp"
    assert header.bundle.HasField("seed")
    assert header.raw_size_bytes == archive.stat().st_size
    assert header.codec == pb.CODEC_RAW
    assert header.sha256 == hashlib.sha256(archive.read_bytes()).hexdigest()
    assert header.chunk_size_bytes == 64 * KiB

    chunks = [m.chunk for m in messages[1:-1]]
    assert all(m.WhichOneof("part") == "chunk" for m in messages[1:-1])
    assert [c.index for c in chunks] == list(range(len(chunks)))
    assert all(len(c.data) == 64 * KiB for c in chunks[:-1])
    assert b"".join(c.data for c in chunks) == archive.read_bytes()

    trailer = messages[-1].trailer
    assert messages[-1].WhichOneof("part") == "trailer"
    assert trailer.chunk_count == len(chunks)
    assert trailer.encoded_size_bytes == archive.stat().st_size


def test_auto_codec_and_given_hash(tmp_path: Path) -> None:
    path = tmp_path / "repetitive.tar"
    path.write_bytes(b"0123456789" * 100_000)
    messages = list(iter_submit_requests(path, session_id="s", strategy_name="x", sha256="ab" * 32))
    assert messages[0].header.codec == codec_to_proto(Codec.ZSTD)
    assert messages[0].header.sha256 == "ab" * 32
    assert messages[-1].trailer.encoded_size_bytes < 1_000_000


def test_empty_file(tmp_path: Path) -> None:
    path = tmp_path / "empty.tar"
    path.write_bytes(b"")
    messages = list(iter_submit_requests(path, session_id="s", strategy_name="x"))
    assert [m.WhichOneof("part") for m in messages] == ["header", "trailer"]
    assert messages[-1].trailer.chunk_count == 0


def test_bad_chunk_size(archive: Path) -> None:
    with pytest.raises(ValueError):
        next(iter_submit_requests(archive, session_id="s", strategy_name="x", chunk_size=0))


def test_grpc_options_are_explicit() -> None:
    assert dict(grpc_options(8 << 20)) == {
        "grpc.max_send_message_length": 8 << 20,
        "grpc.max_receive_message_length": 8 << 20,
    }
    with pytest.raises(ValueError):
        grpc_options(0)
