"""Prometheus metrics both services share: the gRPC server's calls and the /metrics endpoint.

Each service keeps its metrics in a ``CollectorRegistry`` of its own (never the process-wide
default), so a backend and a host in one process (tests, benchmarks) export apart. Nothing
here exists unless ``METRICS_ADDRESS`` is set: no registry, no interceptor, no HTTP server.

Labels name only bounded things: gRPC service, method (registered methods only; a call to an
unknown method counts under ``grpc_method="unknown"``) and status code name; never an
operation id, a token, a path or a strategy name.
"""

from __future__ import annotations

import asyncio
import bisect
import contextlib
import inspect
import logging
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from typing import Any

import grpc
import grpc.aio
from prometheus_client import (
    CollectorRegistry,
    Gauge,
    PlatformCollector,
    ProcessCollector,
    disable_created_metrics,
    start_http_server,
)
from prometheus_client.core import CounterMetricFamily, HistogramMetricFamily, Metric
from prometheus_client.registry import Collector
from prometheus_client.utils import floatToGoString

from ktrdr import __version__
from ktrdr.security.tls import SecurityConfigError, is_loopback_address

logger = logging.getLogger(__name__)

# RPC latency buckets, seconds: unary calls take milliseconds, streams up to hours.
RPC_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 60, 600)
_CODE_NAMES = {code.value[0]: code.name for code in grpc.StatusCode}
# The handler's field holding the behavior, by (request streaming, response streaming).
_KINDS = {
    (False, False): "unary_unary",
    (False, True): "unary_stream",
    (True, False): "stream_unary",
    (True, True): "stream_stream",
}


def new_registry(service: str) -> CollectorRegistry:
    """A service's registry with the process metrics and ``ktrdr_build_info``."""
    # No ``*_created`` series beside every counter and histogram (a timestamp per label set
    # that doubles a scrape and that Prometheus does not need); process-wide, for exposition.
    disable_created_metrics()
    registry = CollectorRegistry(auto_describe=True)
    ProcessCollector(registry=registry)
    PlatformCollector(registry=registry)
    info = Gauge(
        "ktrdr_build_info",
        "Always 1: the version and service of this process.",
        ["version", "service"],
        registry=registry,
    )
    info.labels(__version__, service).set(1)
    return registry


def _code_name(code: Any) -> str:
    if isinstance(code, grpc.StatusCode):
        return code.name
    if isinstance(code, int):
        return _CODE_NAMES.get(code, "UNKNOWN")
    return "OK" if code is None else "UNKNOWN"


class GrpcServerMetrics(grpc.aio.ServerInterceptor):
    """The outermost interceptor: counts every call by method and status code, and times it.

    It sees the status other interceptors and the error boundary answered (an abort's code).
    The counts are plain integers kept on the server's event loop (no lock per call: every
    call ends on that one thread) and turned into Prometheus families at each scrape.
    """

    def __init__(self, registry: CollectorRegistry) -> None:
        self._methods: dict[str, _MethodCalls] = {}
        registry.register(_RpcCollector(self._methods))

    async def intercept_service(
        self,
        continuation: Callable[[grpc.HandlerCallDetails], Awaitable[grpc.RpcMethodHandler]],
        handler_call_details: grpc.HandlerCallDetails,
    ) -> grpc.RpcMethodHandler:
        handler = await continuation(handler_call_details)
        full_method = handler_call_details.method
        if handler is None:  # unknown method: grpc answers UNIMPLEMENTED (name not a label)
            full_method = "unknown/unknown"
        calls = self._methods.get(full_method)
        if calls is None:  # once per registered method
            service, _, method = full_method.lstrip("/").rpartition("/")
            calls = self._methods[full_method] = _MethodCalls(service, method)
        if handler is None:
            calls.done(time.perf_counter(), "UNIMPLEMENTED")
            return handler
        kind = _KINDS[handler.request_streaming, handler.response_streaming]
        behavior = getattr(handler, kind)
        wrapped = _wrap(behavior, calls.done) if behavior is not None else None
        if wrapped is None:
            return handler
        return handler._replace(**{kind: wrapped})  # type: ignore[attr-defined, no-any-return]


class _MethodCalls:
    """One method's calls: counts by code, and the histogram's buckets, sum and count."""

    def __init__(self, service: str, method: str) -> None:
        self.service, self.method = service, method
        self.codes: dict[str, int] = {}
        self.buckets = [0] * (len(RPC_BUCKETS) + 1)  # the last: above the largest bound
        self.seconds = 0.0

    def done(self, started: float, code: str) -> None:
        elapsed = time.perf_counter() - started
        self.buckets[bisect.bisect_left(RPC_BUCKETS, elapsed)] += 1
        self.seconds += elapsed
        self.codes[code] = self.codes.get(code, 0) + 1


class _RpcCollector(Collector):
    """The calls as ``ktrdr_grpc_server_handled_total`` and ``..._handling_seconds``, read
    from prometheus_client's HTTP thread (copies taken first)."""

    def __init__(self, methods: dict[str, _MethodCalls]) -> None:
        self.methods = methods

    def collect(self) -> Iterator[Metric]:
        handled = CounterMetricFamily(
            "ktrdr_grpc_server_handled",
            "RPCs completed on the server, by method and status code.",
            labels=["grpc_service", "grpc_method", "grpc_code"],
        )
        seconds = HistogramMetricFamily(
            "ktrdr_grpc_server_handling_seconds",
            "Time from a call's start to its status, by method (streams: their whole life).",
            labels=["grpc_service", "grpc_method"],
        )
        for calls in list(self.methods.values()):
            labels = [calls.service, calls.method]
            for code, count in list(calls.codes.items()):
                handled.add_metric([*labels, code], count)
            counts, total = list(calls.buckets), calls.seconds
            cumulative, running = [], 0
            for bound, count in zip([*RPC_BUCKETS, float("inf")], counts, strict=True):
                running += count
                cumulative.append((floatToGoString(bound), running))
            seconds.add_metric(labels, cumulative, total)
        yield handled
        yield seconds


def _wrap(behavior: Callable[..., Any], done: Callable[[float, str], None]) -> Any:
    """``behavior`` timed, with its status code counted (None: not an async behavior)."""
    # The code flags directly: ``inspect``'s checks unwrap partials and methods, and this
    # runs on every call (the behaviors here are plain functions the other interceptors made).
    code = getattr(behavior, "__code__", None)
    flags = code.co_flags if code is not None else 0
    if flags & inspect.CO_ASYNC_GENERATOR or (
        code is None and inspect.isasyncgenfunction(behavior)
    ):

        async def generate(request: Any, context: grpc.aio.ServicerContext) -> AsyncIterator[Any]:
            started, code = time.perf_counter(), "UNKNOWN"
            try:
                async with contextlib.aclosing(behavior(request, context)) as responses:
                    async for response in responses:
                        yield response
                code = _code_name(context.code())
            except grpc.aio.AbortError:
                code = _code_name(context.code())
                raise
            except (asyncio.CancelledError, GeneratorExit):
                code = "CANCELLED"
                raise
            finally:
                done(started, code)

        return generate
    if flags & inspect.CO_COROUTINE or (code is None and inspect.iscoroutinefunction(behavior)):

        async def call(request: Any, context: grpc.aio.ServicerContext) -> Any:
            started, code = time.perf_counter(), "UNKNOWN"
            try:
                response = await behavior(request, context)
                code = _code_name(context.code())
                return response
            except grpc.aio.AbortError:
                code = _code_name(context.code())
                raise
            except asyncio.CancelledError:
                code = "CANCELLED"
                raise
            finally:
                done(started, code)

        return call
    return None


class MetricsEndpoint:
    """The HTTP server of ``/metrics`` (prometheus_client's, in a daemon thread)."""

    def __init__(self, registry: CollectorRegistry, service: str) -> None:
        self.registry = registry
        self.service = service
        self.port = 0
        self._server: Any = None
        self._thread: Any = None

    def start(self, address: str, *, allow_remote: bool, prefix: str) -> int:
        """Serve on ``address`` (HOST:PORT); returns the port. A non-loopback address needs
        ``allow_remote`` (the endpoint has no TLS and no authentication)."""
        host, _, port_text = address.rpartition(":")
        host = host.strip("[]")
        if not is_loopback_address(address):
            if not allow_remote:
                raise SecurityConfigError(
                    f"{self.service}: refusing to serve metrics on non-loopback address "
                    f"{address}: the endpoint has no TLS and no authentication; set "
                    f"{prefix}METRICS_ALLOW_REMOTE=true (--metrics-allow-remote) to accept "
                    "that, or use 127.0.0.1"
                )
            logger.warning(
                "metrics on %s are readable without authentication by anyone who reaches it",
                address,
            )
        try:
            self._server, self._thread = start_http_server(
                int(port_text), addr=host, registry=self.registry
            )
        except OSError as exc:
            raise OSError(
                f"{self.service}: cannot serve metrics on {address}: {exc.strerror or exc}"
            ) from None
        self.port = int(self._server.server_port)
        shown = f"[{host}]" if ":" in host else host
        logger.info("metrics on http://%s:%d/metrics", shown, self.port)
        return self.port

    def stop(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._server = None
        if self._thread is not None:
            self._thread.join(timeout=5)
            self._thread = None


__all__ = ["RPC_BUCKETS", "GrpcServerMetrics", "MetricsEndpoint", "new_registry"]
