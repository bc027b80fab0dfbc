"""Conversions between transfer types and ``ktrdr.training.v1`` messages, one per direction."""

from __future__ import annotations

from ktrdr.training.v1 import backend_pb2 as pb
from ktrdr.transfer.codecs import Codec

_TO_PROTO: dict[Codec, pb.Codec] = {
    Codec.RAW: pb.CODEC_RAW,
    Codec.ZSTD: pb.CODEC_ZSTD,
    Codec.GZIP: pb.CODEC_GZIP,
}
_FROM_PROTO = {v: k for k, v in _TO_PROTO.items()}


def codec_to_proto(codec: Codec) -> pb.Codec:
    """The wire enum value of ``codec``."""
    return _TO_PROTO[codec]


def codec_from_proto(value: int) -> Codec | None:
    """The codec of a wire enum value; ``None`` for UNSPECIFIED or unknown values."""
    return _FROM_PROTO.get(value)  # type: ignore[call-overload]
