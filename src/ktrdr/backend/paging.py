"""Page tokens of the newest-first listings (ListOperations, ListSweeps): the position of a
page's last row, ``(created_us, id)``, so a next page starts right after it even while new
rows arrive at the top."""

from __future__ import annotations

import base64
import binascii

import grpc

from ktrdr.backend.errors import RequestError
from ktrdr.security.interceptor import current_identity

DEFAULT_PAGE_SIZE = 50
MAX_PAGE_SIZE = 500
MAX_TOKEN_CHARS = 256


def page_size(requested: int) -> int:
    """The page size a request asks for: 0 means the default, capped at MAX_PAGE_SIZE."""
    if requested < 0:
        raise RequestError(grpc.StatusCode.INVALID_ARGUMENT, "page_size: must be >= 0")
    return min(requested or DEFAULT_PAGE_SIZE, MAX_PAGE_SIZE)


def page_token(created_us: int, row_id: str) -> str:
    return base64.urlsafe_b64encode(f"{created_us}:{row_id}".encode()).decode()


def parse_page_token(token: str, rpc: str) -> tuple[int, str] | None:
    """``(created_us, id)`` of a token from a previous ``rpc`` response; None for none."""
    if not token:
        return None
    try:
        if len(token) > MAX_TOKEN_CHARS:
            raise ValueError("too long")
        created, row_id = base64.urlsafe_b64decode(token.encode()).decode().split(":", 1)
        position = int(created)
        if not 0 <= position < 1 << 63 or len(row_id) > 64:  # what SQLite can hold
            raise ValueError("out of range")
        return position, row_id
    except (ValueError, binascii.Error, UnicodeDecodeError):
        raise RequestError(
            grpc.StatusCode.INVALID_ARGUMENT,
            f"page_token: not a token from a previous {rpc} response (send it back unchanged, "
            "with the same filters)",
        ) from None


def owner_filter(requested: str) -> str:
    """A listing's ``owner`` field: ``"me"`` is the caller (no caller: every owner)."""
    if requested != "me":
        return requested
    identity = current_identity()
    return identity.name if identity is not None else ""
