"""gRPC spans: a server span per call under the caller's ``traceparent``, a client span per
call that sends its own. Imported only while tracing is on.

Written for this project's channels and servers rather than taken from
``opentelemetry-instrumentation-grpc``: its interceptors replace the call objects of
streaming calls (a stream could no longer be cancelled or asked for its code) and do not
compose with the services' interceptors that turn handlers into async generators. Here the
call objects and behaviors pass through unchanged; a span ends when its call completes.
Health checks and host heartbeats are not traced (each would be a trace of its own, every
few seconds, saying nothing about an operation).

What a server records: calls that start or finish an operation's work (``ROOTS``), always;
any other call a traced caller makes (cancel, delete, download, a watch...), under the
caller's span. A traced caller's reads (``Get*``/``List*``: a notebook polling, a listing)
are not recorded unless ``KTRDR_TRACE_READS=true``: the caller's own client span already
shows each one and its duration, and a recorded server span (the SDK's span and its export)
costs a 0.7 ms read 7-23 % (``benchmarks/bench_tracing.py``).
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import inspect
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

import grpc
import grpc.aio
from opentelemetry import trace
from opentelemetry.trace import SpanKind

from ktrdr.security.channels import SyncDetails
from ktrdr.tracing.otel import PROPAGATOR, end_span, tracer

UNTRACED = ("/grpc.health.v1.Health/", "/ktrdr.training.v1.Backend/HostHeartbeat")
CONTEXT_KEYS = ("traceparent", "tracestate")
# Calls that start or finish an operation's work: a trace of their own even when the caller
# sends no context. Any other call gets a server span only under a caller's traceparent.
ROOTS = frozenset(
    {
        "/ktrdr.training.v1.Backend/CreateTraining",
        "/ktrdr.training.v1.Backend/CreateSweep",
        "/ktrdr.training.v1.Backend/SubmitResults",
        "/ktrdr.training.v1.TrainingHost/StartTraining",
    }
)
READ_PREFIXES = ("Get", "List")
_KINDS = {
    (False, False): "unary_unary",
    (False, True): "unary_stream",
    (True, False): "stream_unary",
    (True, True): "stream_stream",
}


def _method(details: Any) -> str:
    method = getattr(details, "method", "") or ""
    return method.decode("ascii", "replace") if isinstance(method, bytes) else str(method)


def _is_read(method: str) -> bool:
    return method.rpartition("/")[2].startswith(READ_PREFIXES)


@functools.lru_cache(maxsize=256)  # one entry per served method
def _attributes(method: str) -> dict[str, str]:
    service, _, name = method.lstrip("/").partition("/")
    return {"rpc.system": "grpc", "rpc.service": service, "rpc.method": name}


def _incoming(metadata: Any) -> dict[str, str]:
    """Only the W3C headers, and only as text; anything else in the metadata is ignored."""
    return {
        key: value
        for key, value in (metadata or ())
        if key in CONTEXT_KEYS and isinstance(value, str)
    }


# -- server ------------------------------------------------------------------------------
class ServerSpans(grpc.aio.ServerInterceptor):
    """A SERVER span per call that starts work (``ROOTS``) or carries a trace context (a
    read only with ``reads``), current while the servicer runs (so what it starts, tasks
    included, is under it). A ``traceparent`` that does not parse starts a new trace."""

    def __init__(self, *, reads: bool = False) -> None:
        self.reads = reads

    async def intercept_service(
        self,
        continuation: Callable[[grpc.HandlerCallDetails], Awaitable[grpc.RpcMethodHandler]],
        handler_call_details: grpc.HandlerCallDetails,
    ) -> grpc.RpcMethodHandler:
        handler = await continuation(handler_call_details)
        method = _method(handler_call_details)
        if handler is None or method.startswith(UNTRACED):
            return handler
        if not self.reads and _is_read(method):  # the caller's client span shows a read
            return handler
        parent = _incoming(handler_call_details.invocation_metadata)
        if not parent and method not in ROOTS:  # an untraced caller's call: no trace of its own
            return handler
        kind = _KINDS[handler.request_streaming, handler.response_streaming]
        behavior = getattr(handler, kind)
        if behavior is None:
            return handler
        wrapped = _wrap(behavior, method, parent)
        return handler._replace(**{kind: wrapped})  # type: ignore[attr-defined, no-any-return]


def _finish(span: trace.Span, context: grpc.aio.ServicerContext) -> None:
    code = context.code()
    value = code.value[0] if isinstance(code, grpc.StatusCode) else (code or 0)
    span.set_attribute("rpc.grpc.status_code", int(value))
    if value:
        end_span(span, f"{code}: {context.details() or ''}")
    else:
        span.end()


def _wrap(behavior: Callable[..., Any], method: str, parent: dict[str, str]) -> Any:
    def start() -> trace.Span:
        ctx = PROPAGATOR.extract(parent) if parent else None
        return tracer().start_span(
            method, context=ctx, kind=SpanKind.SERVER, attributes=_attributes(method)
        )

    if inspect.isasyncgenfunction(behavior):

        async def generate(request: Any, context: grpc.aio.ServicerContext) -> AsyncIterator[Any]:
            span = start()
            try:
                with trace.use_span(span, end_on_exit=False, record_exception=False):
                    async with contextlib.aclosing(behavior(request, context)) as responses:
                        async for response in responses:
                            yield response
            except (asyncio.CancelledError, GeneratorExit):
                end_span(span, "cancelled")
                raise
            except BaseException as exc:
                end_span(span, f"{type(exc).__name__}: {exc}")
                raise
            _finish(span, context)

        return generate

    async def call(request: Any, context: grpc.aio.ServicerContext) -> Any:
        span = start()
        try:
            with trace.use_span(span, end_on_exit=False, record_exception=False):
                response = await behavior(request, context)
        except grpc.aio.AbortError:
            _finish(span, context)
            raise
        except BaseException as exc:
            end_span(span, f"{type(exc).__name__}: {exc}")
            raise
        _finish(span, context)
        return response

    return call


# -- clients -----------------------------------------------------------------------------
def _client_span(method: str, metadata: Any) -> tuple[trace.Span, list[tuple[str, Any]]]:
    """The call's CLIENT span and its metadata with the span's ``traceparent``."""
    span = tracer().start_span(method, kind=SpanKind.CLIENT, attributes=_attributes(method))
    headers: dict[str, str] = {}
    PROPAGATOR.inject(headers, context=trace.set_span_in_context(span))
    kept = [(k, v) for k, v in (metadata or ()) if k not in CONTEXT_KEYS]
    return span, [*kept, *headers.items()]


def _end_with(span: trace.Span, code: Any, details: str) -> None:
    """End a client span; CANCELLED is not an error here: only this side cancels its calls
    (a watch stops reading once the operation ended)."""
    span.set_attribute("rpc.grpc.status_code", code.value[0] if code is not None else 2)
    ok = code in (grpc.StatusCode.OK, grpc.StatusCode.CANCELLED)
    end_span(span, "" if ok else f"{code}: {details}")


class SyncClientSpans(
    grpc.UnaryUnaryClientInterceptor,
    grpc.UnaryStreamClientInterceptor,
    grpc.StreamUnaryClientInterceptor,
    grpc.StreamStreamClientInterceptor,
):
    """Blocking channels: the call object is returned as it is; the span ends with it."""

    def _call(self, continuation: Any, details: grpc.ClientCallDetails, request: Any) -> Any:
        method = _method(details)
        if method.startswith(UNTRACED):
            return continuation(details, request)
        span, metadata = _client_span(method, details.metadata)
        try:
            call = continuation(SyncDetails(details, metadata), request)
        except BaseException as exc:
            end_span(span, f"{type(exc).__name__}: {exc}")
            raise
        call.add_done_callback(lambda done: _end_with(span, done.code(), done.details()))
        return call

    def intercept_unary_unary(self, continuation, client_call_details, request):  # type: ignore[no-untyped-def]
        return self._call(continuation, client_call_details, request)

    def intercept_unary_stream(self, continuation, client_call_details, request):  # type: ignore[no-untyped-def]
        return self._call(continuation, client_call_details, request)

    def intercept_stream_unary(self, continuation, client_call_details, request_iterator):  # type: ignore[no-untyped-def]
        return self._call(continuation, client_call_details, request_iterator)

    def intercept_stream_stream(self, continuation, client_call_details, request_iterator):  # type: ignore[no-untyped-def]
        return self._call(continuation, client_call_details, request_iterator)


class _AioSpans:
    """asyncio channels (one subclass per call shape: grpc.aio files an interceptor under
    the first shape it matches only)."""

    async def _call(
        self, continuation: Any, details: grpc.aio.ClientCallDetails, request: Any
    ) -> Any:
        method = _method(details)
        if method.startswith(UNTRACED):
            return await continuation(details, request)
        span, metadata = _client_span(method, details.metadata)
        new = grpc.aio.ClientCallDetails(
            details.method,
            details.timeout,
            grpc.aio.Metadata(*metadata),
            details.credentials,
            details.wait_for_ready,
        )
        try:
            call = await continuation(new, request)
        except BaseException as exc:
            end_span(span, f"{type(exc).__name__}: {exc}")
            raise

        def done(finished: Any) -> None:
            if finished.cancelled():
                end_span(span, "cancelled")
                return
            task = asyncio.ensure_future(_ended(span, finished))
            _pending.add(task)
            task.add_done_callback(_pending.discard)

        call.add_done_callback(done)
        return call


_pending: set[asyncio.Future[None]] = set()


async def _ended(span: trace.Span, call: Any) -> None:
    _end_with(span, await call.code(), await call.details())


class _AioUnaryUnary(_AioSpans, grpc.aio.UnaryUnaryClientInterceptor):
    async def intercept_unary_unary(self, continuation, client_call_details, request):  # type: ignore[no-untyped-def]
        return await self._call(continuation, client_call_details, request)


class _AioUnaryStream(_AioSpans, grpc.aio.UnaryStreamClientInterceptor):
    async def intercept_unary_stream(self, continuation, client_call_details, request):  # type: ignore[no-untyped-def]
        return await self._call(continuation, client_call_details, request)


class _AioStreamUnary(_AioSpans, grpc.aio.StreamUnaryClientInterceptor):
    async def intercept_stream_unary(self, continuation, client_call_details, request_iterator):  # type: ignore[no-untyped-def]
        return await self._call(continuation, client_call_details, request_iterator)


class _AioStreamStream(_AioSpans, grpc.aio.StreamStreamClientInterceptor):
    async def intercept_stream_stream(self, continuation, client_call_details, request_iterator):  # type: ignore[no-untyped-def]
        return await self._call(continuation, client_call_details, request_iterator)


def aio_client_interceptors() -> list[grpc.aio.ClientInterceptor]:
    return [cls() for cls in (_AioUnaryUnary, _AioUnaryStream, _AioStreamUnary, _AioStreamStream)]


def traced_channel(channel: grpc.Channel) -> grpc.Channel:
    """A blocking ``channel`` with a client span per call."""
    return grpc.intercept_channel(channel, SyncClientSpans())
