"""Malformed request messages answer INVALID_ARGUMENT, not ``UNKNOWN: Unexpected <class ...>``.

grpc's server turns an exception of the request deserializer (``FromString``) into
``UNKNOWN`` with the Python class name, e.g. for a ``strategy_yaml`` that is not valid
UTF-8 (protobuf refuses such strings while parsing, before any servicer code runs). This
interceptor wraps every method's deserializer: a message that cannot be decoded becomes an
``Undecodable`` value, and the method answers INVALID_ARGUMENT naming the message type
instead of running. Streams are checked message by message.
"""

from __future__ import annotations

import inspect
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass
from typing import Any

import grpc

from ktrdr.echo import short_text


@dataclass(frozen=True)
class Undecodable:
    """A request message that could not be decoded, and why."""

    method: str
    reason: str

    @property
    def message(self) -> str:
        return (
            f"request: cannot decode the {self.method} request ({self.reason}); every string "
            "field must be valid UTF-8"
        )


def _decoder(method: str, deserialize: Callable[[bytes], Any]) -> Callable[[bytes], Any]:
    def decode(data: bytes) -> Any:
        try:
            return deserialize(data)
        except Exception as exc:  # DecodeError and whatever else a parser raises
            return Undecodable(method, short_text(str(exc), 200))

    return decode


async def _refuse(request: Any, context: grpc.aio.ServicerContext) -> None:
    if isinstance(request, Undecodable):
        await context.abort(grpc.StatusCode.INVALID_ARGUMENT, request.message)


def _checked_stream(
    requests: AsyncIterator[Any], context: grpc.aio.ServicerContext
) -> AsyncIterator[Any]:
    async def checked() -> AsyncIterator[Any]:
        async for request in requests:
            await _refuse(request, context)
            yield request

    return checked()


def _wrap(behavior: Callable[..., Any], streaming_request: bool) -> Callable[..., Any] | None:
    """``behavior`` refusing undecodable requests first; None for a non-async behavior."""
    if inspect.isasyncgenfunction(behavior):

        async def generate(request: Any, context: grpc.aio.ServicerContext) -> AsyncIterator[Any]:
            if streaming_request:
                request = _checked_stream(request, context)
            else:
                await _refuse(request, context)
            async for response in behavior(request, context):
                yield response

        return generate
    if inspect.iscoroutinefunction(behavior):

        async def call(request: Any, context: grpc.aio.ServicerContext) -> Awaitable[Any]:
            if streaming_request:
                request = _checked_stream(request, context)
            else:
                await _refuse(request, context)
            return await behavior(request, context)  # type: ignore[no-any-return]

        return call
    return None


class RejectUndecodable(grpc.aio.ServerInterceptor):
    """Server interceptor: undecodable request messages get INVALID_ARGUMENT (see module)."""

    async def intercept_service(
        self,
        continuation: Callable[[grpc.HandlerCallDetails], Awaitable[grpc.RpcMethodHandler]],
        handler_call_details: grpc.HandlerCallDetails,
    ) -> grpc.RpcMethodHandler:
        handler = await continuation(handler_call_details)
        if handler is None or handler.request_deserializer is None:
            return handler
        kind = ("stream" if handler.request_streaming else "unary") + "_"
        kind += "stream" if handler.response_streaming else "unary"
        behavior = getattr(handler, kind)
        wrapped = _wrap(behavior, handler.request_streaming) if behavior else None
        if wrapped is None:
            return handler
        method = handler_call_details.method.rsplit("/", 1)[-1]
        return handler._replace(  # type: ignore[attr-defined, no-any-return]
            request_deserializer=_decoder(method, handler.request_deserializer),
            **{kind: wrapped},
        )


__all__ = ["RejectUndecodable", "Undecodable"]
