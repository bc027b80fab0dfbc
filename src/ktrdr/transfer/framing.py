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
