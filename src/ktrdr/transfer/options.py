"""Explicit gRPC message-size options, used by every server and channel in the project."""

from __future__ import annotations

# Chunks of a SubmitResults stream: about 1 MiB of encoded bytes each. Measured here, gRPC
# Python moves ~0.9 GB/s at 1 MiB messages and ~0.38 GB/s at 64 KiB.
DEFAULT_CHUNK_SIZE = 1 << 20

# Message-size limit on every server and channel: room for a 1 MiB chunk plus framing, and
# for large listings, while a single message still cannot exhaust memory.
DEFAULT_MAX_MESSAGE_BYTES = 8 << 20


def grpc_options(
    max_message_bytes: int = DEFAULT_MAX_MESSAGE_BYTES,
) -> list[tuple[str, int]]:
    """Channel/server options that set both message-size limits explicitly.

    Pass to ``grpc.aio.server(options=...)`` and ``grpc.aio.insecure_channel(addr,
    options=...)`` (or their sync counterparts).
    """
    if max_message_bytes <= 0:
        raise ValueError(f"max_message_bytes must be positive, got {max_message_bytes}")
    return [
        ("grpc.max_send_message_length", max_message_bytes),
        ("grpc.max_receive_message_length", max_message_bytes),
    ]
