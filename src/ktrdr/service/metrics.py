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
import contextlib
import inspect
import logging
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

import grpc
import grpc.aio
from prometheus_client import (
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    PlatformCollector,
    ProcessCollector,
    start_http_server,
)

from ktrdr import __version__
from ktrdr.security.tls import SecurityConfigError, is_loopback_address

logger = logging.getLogger(__name__)

# RPC latency buckets, seconds: unary calls take milliseconds, streams up to hours.
RPC_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 60, 600)
_CODE_NAMES = {code.value[0]: code.name for code in grpc.StatusCode}


def new_registry(service: str) -> CollectorRegistry:
    """A service's registry with the process metrics and ``ktrdr_build_info``."""
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

    It sees the status other interceptors and the error boundary answered (an abort's code)."""

    def __init__(self, registry: CollectorRegistry) -> None:
        self.handled = Counter(
            "ktrdr_grpc_server_handled_total",
            "RPCs completed on the server, by method and status code.",
            ["grpc_service", "grpc_method", "grpc_code"],
            registry=registry,
        )
        self.seconds = Histogram(
            "ktrdr_grpc_server_handling_seconds",
            "Time from a call's start to its status, by method (streams: their whole life).",
            ["grpc_service", "grpc_method"],
            buckets=RPC_BUCKETS,
            registry=registry,
        )

    async def intercept_service(
        self,
        continuation: Callable[[grpc.HandlerCallDetails], Awaitable[grpc.RpcMethodHandler]],
        handler_call_details: grpc.HandlerCallDetails,
    ) -> grpc.RpcMethodHandler:
        handler = await continuation(handler_call_details)
        if handler is None:  # unknown method: grpc answers UNIMPLEMENTED (name not a label)
            self.handled.labels("unknown", "unknown", "UNIMPLEMENTED").inc()
            return handler
        kind = ("stream" if handler.request_streaming else "unary") + "_"
        kind += "stream" if handler.response_streaming else "unary"
        behavior = getattr(handler, kind)
        service, _, method = handler_call_details.method.lstrip("/").rpartition("/")
        wrapped = self._wrap(behavior, service, method) if behavior is not None else None
        if wrapped is None:
            return handler
        return handler._replace(**{kind: wrapped})  # type: ignore[attr-defined, no-any-return]

    def _wrap(
        self, behavior: Callable[..., Any], service: str, method: str
    ) -> Callable[..., Any] | None:
        timer = self.seconds.labels(service, method)
        handled = self.handled

        def done(started: float, code: str) -> None:
            timer.observe(time.perf_counter() - started)
            handled.labels(service, method, code).inc()

        if inspect.isasyncgenfunction(behavior):

            async def generate(
                request: Any, context: grpc.aio.ServicerContext
            ) -> AsyncIterator[Any]:
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
        if inspect.iscoroutinefunction(behavior):

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
