"""SubmitResults chunk messages encoded by hand, in one copy of their data.

``SubmitResultsRequest(chunk=SubmitResultsChunk(data=..., index=...)).SerializeToString()``
copies the data twice (into the message, then into the serialized bytes); a chunk is almost
all data, so ``encode_chunk`` writes the few bytes of protobuf framing itself and joins them
with the data once. The result is the same message on the wire (any protobuf parser reads
it; the test suite checks it against the generated code), field by field:

    SubmitResultsRequest.chunk (field 2, length-delimited) {
        SubmitResultsChunk.index (field 2, varint)
        SubmitResultsChunk.data (field 1, length-delimited)
    }
"""

from __future__ import annotations

from ktrdr.training.v1 import backend_pb2 as pb

# Tags: (field number << 3) | wire type; 0 = varint, 2 = length-delimited.
_REQUEST_CHUNK_TAG = b"\x12"  # SubmitResultsRequest.chunk = 2
_CHUNK_INDEX_TAG = b"\x10"  # SubmitResultsChunk.index = 2
_CHUNK_DATA_TAG = b"\x0a"  # SubmitResultsChunk.data = 1


def _check_field_numbers() -> None:
    """The hand-written tags must match the generated descriptors (checked at import)."""
    request = pb.SubmitResultsRequest.DESCRIPTOR.fields_by_name
    chunk = pb.SubmitResultsChunk.DESCRIPTOR.fields_by_name
    assert (request["chunk"].number, chunk["index"].number, chunk["data"].number) == (2, 2, 1)


_check_field_numbers()


def varint(value: int) -> bytes:
    """Protobuf base-128 varint of a non-negative integer."""
    if value < 0:
        raise ValueError(f"varint of a negative number: {value}")
    out = bytearray()
    while value > 0x7F:
        out.append((value & 0x7F) | 0x80)
        value >>= 7
    out.append(value)
    return bytes(out)


def encode_chunk(data: bytes, index: int) -> bytes:
    """The serialized ``SubmitResultsRequest`` carrying chunk ``index`` with ``data``."""
    inner = _CHUNK_INDEX_TAG + varint(index) + _CHUNK_DATA_TAG + varint(len(data))
    return b"".join((_REQUEST_CHUNK_TAG, varint(len(inner) + len(data)), inner, data))


class ChunkFrame:
    """A chunk message read without copying its data: ``data`` is a view into the received
    bytes. Answers the parts of ``SubmitResultsRequest`` the receiving code uses."""

    __slots__ = ("_size", "data", "index")

    def __init__(self, index: int, data: memoryview, size: int) -> None:
        self.index = index
        self.data = data
        self._size = size

    def WhichOneof(self, oneof_group: str) -> str:  # named like the protobuf method
        if oneof_group != "part":
            raise ValueError(f"SubmitResultsRequest has no oneof {oneof_group!r}")
        return "chunk"

    @property
    def chunk(self) -> ChunkFrame:
        return self

    def ByteSize(self) -> int:  # named like the protobuf method
        return self._size


SubmitRequest = pb.SubmitResultsRequest | ChunkFrame


def _read_varint(data: bytes, pos: int, end: int) -> tuple[int, int]:
    """The varint at ``pos`` and the position after it; ValueError past ``end`` or 10 bytes."""
    value = shift = 0
    while pos < end and shift < 64:
        byte = data[pos]
        pos += 1
        value |= (byte & 0x7F) << shift
        if byte < 0x80:
            return value, pos
        shift += 7
    raise ValueError("truncated or overlong varint")


def decode_request(data: bytes) -> SubmitRequest:
    """Deserializer for SubmitResults: chunks as ``ChunkFrame`` views, anything else (header,
    trailer, or a chunk framed in any other way than ``encode_chunk`` frames it, such as one
    with unknown fields) parsed by the generated code, which also reports malformed input."""
    try:
        frame = _chunk_frame(data)
    except ValueError:
        frame = None
    return frame if frame is not None else pb.SubmitResultsRequest.FromString(data)


def _chunk_frame(data: bytes) -> ChunkFrame | None:
    size = len(data)
    if size < 2 or data[0] != _REQUEST_CHUNK_TAG[0]:
        return None
    length, pos = _read_varint(data, 1, size)
    if pos + length != size:  # anything after the chunk field: let protobuf merge it
        return None
    index = 0
    view: memoryview | None = None
    while pos < size:
        tag = data[pos]
        if tag == _CHUNK_INDEX_TAG[0]:
            index, pos = _read_varint(data, pos + 1, size)
            if index >= 1 << 63:  # int64: protobuf reads it as negative
                return None
        elif tag == _CHUNK_DATA_TAG[0]:
            length, start = _read_varint(data, pos + 1, size)
            pos = start + length
            if pos > size:
                return None
            view = memoryview(data)[start:pos]
        else:
            return None
    return ChunkFrame(index, view if view is not None else memoryview(b""), size)
