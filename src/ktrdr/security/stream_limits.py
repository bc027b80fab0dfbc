"""Bounds on long server streams (watches, downloads): how many, how slow, and whose.

``StreamGuard`` wraps the server-streaming methods it is given, grouped (e.g. "watch",
"download"), each group with a global cap and a per-caller cap; a stream over either is
refused at once with RESOURCE_EXHAUSTED. Each message must be taken by the client within
``send_timeout_s`` (a client that stops reading is ended with DEADLINE_EXCEEDED and frees its
slot), and with a ``resolve`` function the caller's token is checked again every
``recheck_s``: a stream opened before its token was revoked ends with UNAUTHENTICATED within
seconds. Put it after the token interceptor (the caller's identity is then known).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections import Counter
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping
from dataclasses import dataclass
from typing import Any

import grpc
import grpc.aio

from ktrdr.security.interceptor import Identity, bearer_token, current_identity

logger = logging.getLogger(__name__)

RECHECK_S = 2.0  # a stream's token is checked again this often (``recheck_s`` by default)


@dataclass(frozen=True)
class StreamCap:
    """At most ``total`` streams of a group at once, ``per_caller`` of one caller."""

    total: int
    per_caller: int


class StreamGuard(grpc.aio.ServerInterceptor):
    def __init__(
        self,
        groups: Mapping[str, str],  # full method name -> group
        caps: Mapping[str, StreamCap],
        *,
        send_timeout_s: float = 30.0,
        resolve: Callable[[str], Identity | None] | None = None,
        recheck_s: float | None = None,
    ) -> None:
        self.groups = dict(groups)
        self.caps = dict(caps)
        self.send_timeout_s = send_timeout_s
        self.resolve = resolve
        self.recheck_s = RECHECK_S if recheck_s is None else recheck_s
        self.open: Counter[tuple[str, str]] = Counter()  # (group, caller) -> streams
        self.total: Counter[str] = Counter()

    async def intercept_service(
        self,
        continuation: Callable[[grpc.HandlerCallDetails], Awaitable[grpc.RpcMethodHandler]],
        handler_call_details: grpc.HandlerCallDetails,
    ) -> grpc.RpcMethodHandler:
        handler = await continuation(handler_call_details)
        group = self.groups.get(handler_call_details.method)
        if handler is None or group is None or handler.unary_stream is None:
            return handler
        inner = handler.unary_stream
        name = handler_call_details.method.rsplit("/", 1)[-1]

        async def guarded(request: Any, context: grpc.aio.ServicerContext) -> None:
            await self._serve(group, name, inner, request, context)

        return grpc.unary_stream_rpc_method_handler(
            guarded,
            request_deserializer=handler.request_deserializer,
            response_serializer=handler.response_serializer,
        )

    def _refusal(self, group: str, caller: str) -> str | None:
        cap = self.caps[group]
        if self.total[group] >= cap.total:
            return f"{self.total[group]} {group} streams are open (limit {cap.total}); retry later"
        if self.open[(group, caller)] >= cap.per_caller:
            return (
                f"{caller or 'this caller'} has {self.open[(group, caller)]} {group} streams "
                f"open (limit {cap.per_caller} per caller); close one first"
            )
        return None

    async def _serve(
        self,
        group: str,
        name: str,
        inner: Callable[..., AsyncIterator[Any]],
        request: Any,
        context: grpc.aio.ServicerContext,
    ) -> None:
        identity = current_identity()
        caller = identity.name if identity is not None else ""
        refusal = self._refusal(group, caller)
        if refusal is not None:
            logger.info("%s refused: %s", name, refusal)
            await context.abort(grpc.StatusCode.RESOURCE_EXHAUSTED, refusal)
        key = (group, caller)
        self.open[key] += 1
        self.total[group] += 1
        revoked = asyncio.Event()
        me = asyncio.current_task()
        token = bearer_token(context.invocation_metadata())
        checker = None
        if self.resolve is not None and token and me is not None:
            checker = asyncio.create_task(self._recheck(token, revoked, me))
        try:
            async for message in inner(request, context):
                try:
                    await asyncio.wait_for(context.write(message), self.send_timeout_s)
                except TimeoutError:
                    await context.abort(
                        grpc.StatusCode.DEADLINE_EXCEEDED,
                        f"{name}: the client took no message for {self.send_timeout_s:g} s; "
                        "the stream was ended",
                    )
        except asyncio.CancelledError:
            if not revoked.is_set():
                raise
            if me is not None:
                me.uncancel()
            await context.abort(grpc.StatusCode.UNAUTHENTICATED, f"{name}: the token was revoked")
        finally:
            if checker is not None:
                checker.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await checker
            self.open[key] -= 1
            if self.open[key] <= 0:
                del self.open[key]
            self.total[group] -= 1

    async def _recheck(self, token: str, revoked: asyncio.Event, task: asyncio.Task[Any]) -> None:
        assert self.resolve is not None
        while True:
            await asyncio.sleep(self.recheck_s)
            try:
                known = await asyncio.to_thread(self.resolve, token)
            except Exception:  # a locked database: check again later
                continue
            if known is None:
                revoked.set()
                task.cancel()
                return


__all__ = ["StreamCap", "StreamGuard"]
