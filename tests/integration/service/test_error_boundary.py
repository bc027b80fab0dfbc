"""The one error boundary (``ErrorBoundary``) on a real grpc.aio server on loopback.

The server is built by ``build_server`` (as both services are), with raw-bytes methods of
every handler kind; a request names the fault the method raises after its first response.
"""

from __future__ import annotations

import asyncio
import errno
import logging
from collections.abc import AsyncIterator, Callable
from typing import Any

import grpc
import grpc.aio
import pytest

from ktrdr.service.errors import StatusError
from ktrdr.service.server import bind, build_server
from ktrdr.transfer.refusals import REFUSAL_KEY, refusal_metadata
from tests.support.timing import scaled

SERVICE = "test.Faulty"
SECRET = "/srv/secret/place"
BOUNDARY_LOGGER = "ktrdr.service.error_boundary"


def raise_fault(name: bytes) -> None:
    """The fault a request names; ``ok`` raises nothing."""
    if name == b"status":
        error = StatusError(grpc.StatusCode.NOT_FOUND, "no such thing", details=["one", "two"])
        error.trailing_metadata = refusal_metadata(final=True)
        raise error
    if name == b"disk":
        raise OSError(errno.ENOSPC, "No space left on device", SECRET)
    if name == b"bug":
        raise KeyError(SECRET)
    if name == b"abort":
        raise AbortRequested
    assert name == b"ok", name


class AbortRequested(Exception):
    """Marker: the method aborts by itself (caught below, never reaches the boundary)."""


async def faulting(name: bytes, context: grpc.aio.ServicerContext) -> None:
    try:
        raise_fault(name)
    except AbortRequested:
        await context.abort(grpc.StatusCode.PERMISSION_DENIED, "not yours")


class Handlers:
    """The methods, one per handler kind, and what the cancellable one saw."""

    def __init__(self) -> None:
        self.cancelled = asyncio.Event()
        self.hang_started = asyncio.Event()

    async def unary(self, request: bytes, context: grpc.aio.ServicerContext) -> bytes:
        await faulting(request, context)
        return b"done"

    async def generate(
        self, request: bytes, context: grpc.aio.ServicerContext
    ) -> AsyncIterator[bytes]:
        yield b"first"
        await faulting(request, context)
        yield b"done"

    async def write(self, request: bytes, context: grpc.aio.ServicerContext) -> None:
        await context.write(b"first")
        await faulting(request, context)
        await context.write(b"done")

    async def collect(
        self, requests: AsyncIterator[bytes], context: grpc.aio.ServicerContext
    ) -> bytes:
        received = [r async for r in requests]
        await faulting(received[0], context)
        return b"done"

    async def echo(
        self, requests: AsyncIterator[bytes], context: grpc.aio.ServicerContext
    ) -> AsyncIterator[bytes]:
        async for request in requests:
            yield b"first"
            await faulting(request, context)
            yield b"done"

    async def hang(self, request: bytes, context: grpc.aio.ServicerContext) -> AsyncIterator[bytes]:
        yield b"first"
        try:
            self.hang_started.set()
            await asyncio.Event().wait()
        except asyncio.CancelledError:
            self.cancelled.set()
            raise
        yield b"never"

    def generic(self) -> grpc.GenericRpcHandler:
        same: dict[str, Any] = {
            "request_deserializer": bytes,
            "response_serializer": bytes,
        }
        return grpc.method_handlers_generic_handler(
            SERVICE,
            {
                "Unary": grpc.unary_unary_rpc_method_handler(self.unary, **same),
                "Generate": grpc.unary_stream_rpc_method_handler(self.generate, **same),
                "Write": grpc.unary_stream_rpc_method_handler(self.write, **same),
                "Collect": grpc.stream_unary_rpc_method_handler(self.collect, **same),
                "Echo": grpc.stream_stream_rpc_method_handler(self.echo, **same),
                "Hang": grpc.unary_stream_rpc_method_handler(self.hang, **same),
            },
        )


class Server:
    def __init__(self, handlers: Handlers, channel: grpc.aio.Channel) -> None:
        self.handlers = handlers
        self.channel = channel

    async def call(self, method: str, fault: bytes) -> tuple[list[bytes], grpc.aio.AioRpcError]:
        """The responses received before the error, and the error."""
        path = f"/{SERVICE}/{method}"
        received: list[bytes] = []
        timeout = scaled(10)
        with pytest.raises(grpc.aio.AioRpcError) as info:
            if method == "Unary":
                await self.channel.unary_unary(path)(fault, timeout=timeout)
            elif method in ("Generate", "Write"):
                async for response in self.channel.unary_stream(path)(fault, timeout=timeout):
                    received.append(response)
            elif method == "Collect":
                await self.channel.stream_unary(path)(iter([fault, b"ok"]), timeout=timeout)
            else:
                async for response in self.channel.stream_stream(path)(
                    iter([fault]), timeout=timeout
                ):
                    received.append(response)
        return received, info.value


@pytest.fixture
async def server() -> AsyncIterator[Server]:
    handlers = Handlers()
    grpc_server, _ = build_server(
        lambda s: s.add_generic_rpc_handlers((handlers.generic(),)),
        [],
        service="tester",
        max_message_bytes=1 << 20,
    )
    port = bind(grpc_server, "127.0.0.1:0")
    await grpc_server.start()
    channel = grpc.aio.insecure_channel(f"127.0.0.1:{port}")
    try:
        yield Server(handlers, channel)
    finally:
        await channel.close()
        await grpc_server.stop(None)


KINDS = ["Unary", "Generate", "Write", "Collect", "Echo"]
STREAMED = {"Generate", "Write", "Echo"}


def first_responses(method: str) -> list[bytes]:
    return [b"first"] if method in STREAMED else []


def boundary_errors(caplog: pytest.LogCaptureFixture) -> list[logging.LogRecord]:
    return [r for r in caplog.records if r.name == BOUNDARY_LOGGER and r.levelno >= logging.ERROR]


@pytest.mark.parametrize("method", KINDS)
async def test_status_error_answers_its_code_message_details_and_trailer(
    server: Server, method: str, caplog: pytest.LogCaptureFixture
) -> None:
    received, error = await server.call(method, b"status")
    assert received == first_responses(method)
    assert error.code() == grpc.StatusCode.NOT_FOUND
    assert error.details() == "no such thing\none\ntwo"
    assert (REFUSAL_KEY, "final") in tuple(error.trailing_metadata() or ())
    assert boundary_errors(caplog) == []  # a refusal is an answer, not a server fault


@pytest.mark.parametrize("method", KINDS)
async def test_a_full_disk_is_resource_exhausted_without_a_path(
    server: Server, method: str, caplog: pytest.LogCaptureFixture
) -> None:
    received, error = await server.call(method, b"disk")
    assert received == first_responses(method)
    assert error.code() == grpc.StatusCode.RESOURCE_EXHAUSTED
    details = error.details() or ""
    assert details.startswith("disk full: ")
    assert method in details
    assert SECRET not in details and "OSError" not in details


@pytest.mark.parametrize("method", KINDS)
async def test_a_bug_is_internal_with_no_class_name_and_logged_once(
    server: Server, method: str, caplog: pytest.LogCaptureFixture
) -> None:
    with caplog.at_level(logging.ERROR, logger=BOUNDARY_LOGGER):
        received, error = await server.call(method, b"bug")
    assert received == first_responses(method)
    assert error.code() == grpc.StatusCode.INTERNAL
    assert error.details() == f"{method} failed on the server (the tester's log has the details)"
    logged = boundary_errors(caplog)
    assert len(logged) == 1
    assert logged[0].exc_info is not None and logged[0].exc_info[0] is KeyError
    assert method in logged[0].getMessage()


@pytest.mark.parametrize("method", KINDS)
async def test_an_abort_of_the_method_passes_through(
    server: Server, method: str, caplog: pytest.LogCaptureFixture
) -> None:
    received, error = await server.call(method, b"abort")
    assert received == first_responses(method)
    assert (error.code(), error.details()) == (grpc.StatusCode.PERMISSION_DENIED, "not yours")
    assert boundary_errors(caplog) == []


async def test_a_cancelled_call_reaches_the_method_as_cancellation(
    server: Server, caplog: pytest.LogCaptureFixture
) -> None:
    call: Any = server.channel.unary_stream(f"/{SERVICE}/Hang")(b"ok", timeout=scaled(10))
    assert await call.read() == b"first"
    await asyncio.wait_for(server.handlers.hang_started.wait(), scaled(5))
    call.cancel()
    await asyncio.wait_for(server.handlers.cancelled.wait(), scaled(5))
    assert boundary_errors(caplog) == []


async def test_a_plain_answer_is_untouched(server: Server) -> None:
    answer: Callable[..., Any] = server.channel.unary_unary(f"/{SERVICE}/Unary")
    assert await answer(b"ok", timeout=scaled(5)) == b"done"
