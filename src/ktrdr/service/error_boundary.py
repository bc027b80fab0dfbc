"""The one error boundary of a service: every exception of an RPC becomes a precise status.

``build_server`` installs ``ErrorBoundary`` on both servers, around every method of every
kind (unary and streaming requests; responses returned, yielded by an async generator or
written with ``context.write``), so that a new RPC cannot forget it. Servicer code raises and
never maps errors itself:

- ``StatusError`` (``RequestError``, ``RequestRefused``, ``TransferError``, ...) answers its
  code and message (with its details on further lines) and its ``trailing_metadata``;
- a full disk (``OSError`` ENOSPC/EDQUOT, SQLITE_FULL, also when wrapped) answers
  RESOURCE_EXHAUSTED "disk full: ...", naming no path;
- a database locked by another connection (SQLITE_BUSY/LOCKED, also when wrapped) answers
  UNAVAILABLE "database busy, retry shortly" with a ``retry-after-ms`` hint (the backend's
  writes raise ``DatabaseBusy``, a ``StatusError`` saying the same; this catches the rest);
- ``grpc.aio.AbortError`` (an abort already sent) and cancellation pass through untouched;
- anything else is a bug: logged once with its traceback, and answered INTERNAL
  "<Method> failed on the server (the <service>'s log has the details)", never with a
  Python class name or a server path.
"""

from __future__ import annotations

import asyncio
import contextlib
import inspect
import logging
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any, NoReturn

import grpc
import grpc.aio

from ktrdr.service.disk import disk_full_message, is_database_busy, is_disk_full
from ktrdr.service.errors import StatusError
from ktrdr.transfer.refusals import refusal_metadata

logger = logging.getLogger(__name__)

BUSY_RETRY_AFTER_S = 1.0


def status_message(error: StatusError) -> str:
    """The answer's message: the message alone, or with its details on further lines (one
    detail is the message's own summary and adds nothing)."""
    if len(error.details) <= 1:
        return error.message
    return "\n".join([error.message, *error.details])


class _Boundary:
    """Maps one method's exceptions to its status; ``service`` names whose log to read."""

    def __init__(self, service: str, full_method: str) -> None:
        self.service = service
        self.full_method = full_method
        self.method = full_method.rsplit("/", 1)[-1]

    async def abort(self, exc: Exception, context: grpc.aio.ServicerContext) -> NoReturn:
        if isinstance(exc, StatusError):
            await context.abort(
                exc.code, status_message(exc), trailing_metadata=exc.trailing_metadata
            )
        elif is_disk_full(exc):
            logger.error("%s: disk full: %s", self.full_method, exc)
            await context.abort(
                grpc.StatusCode.RESOURCE_EXHAUSTED,
                disk_full_message(f"{self.method} could not be completed on the server"),
            )
        elif is_database_busy(exc):
            logger.warning("%s: database busy: %s", self.full_method, exc)
            await context.abort(
                grpc.StatusCode.UNAVAILABLE,
                f"database busy, retry shortly: {self.method} could not be completed while "
                f"another process holds the database's lock; retry in {BUSY_RETRY_AFTER_S:g} s "
                "or more",
                trailing_metadata=refusal_metadata(final=False, retry_after_s=BUSY_RETRY_AFTER_S),
            )
        else:
            logger.error("%s failed", self.full_method, exc_info=exc)
            await context.abort(
                grpc.StatusCode.INTERNAL,
                f"{self.method} failed on the server (the {self.service}'s log has the details)",
            )
        raise AssertionError("unreachable: abort raises")  # pragma: no cover

    def wrap(self, behavior: Callable[..., Any]) -> Callable[..., Any] | None:
        """``behavior`` inside the boundary; None for a behavior that is not async."""
        if inspect.isasyncgenfunction(behavior):

            async def generate(
                request: Any, context: grpc.aio.ServicerContext
            ) -> AsyncIterator[Any]:
                try:
                    async with contextlib.aclosing(behavior(request, context)) as responses:
                        async for response in responses:
                            yield response
                except (grpc.aio.AbortError, asyncio.CancelledError):
                    raise
                except Exception as exc:
                    await self.abort(exc, context)

            return generate
        if inspect.iscoroutinefunction(behavior):

            async def call(request: Any, context: grpc.aio.ServicerContext) -> Any:
                try:
                    return await behavior(request, context)
                except (grpc.aio.AbortError, asyncio.CancelledError):
                    raise
                except Exception as exc:
                    await self.abort(exc, context)

            return call
        return None


class ErrorBoundary(grpc.aio.ServerInterceptor):
    """Server interceptor: one mapping from exceptions to statuses (see the module).

    ``service`` is the server's name in messages: "backend" gives "(the backend's log has
    the details)".
    """

    def __init__(self, service: str) -> None:
        self.service = service

    async def intercept_service(
        self,
        continuation: Callable[[grpc.HandlerCallDetails], Awaitable[grpc.RpcMethodHandler]],
        handler_call_details: grpc.HandlerCallDetails,
    ) -> grpc.RpcMethodHandler:
        handler = await continuation(handler_call_details)
        if handler is None:
            return handler
        kind = ("stream" if handler.request_streaming else "unary") + "_"
        kind += "stream" if handler.response_streaming else "unary"
        behavior = getattr(handler, kind)
        boundary = _Boundary(self.service, handler_call_details.method)
        wrapped = boundary.wrap(behavior) if behavior is not None else None
        if wrapped is None:
            return handler
        return handler._replace(**{kind: wrapped})  # type: ignore[attr-defined, no-any-return]


__all__ = ["ErrorBoundary", "status_message"]
