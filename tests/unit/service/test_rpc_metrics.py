"""The RPC metrics interceptor without a server: codes by name, histogram buckets, no labels
for unknown methods (the interceptor's own contract; tests/integration/service/test_metrics.py
runs it in real servers)."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from typing import Any

import grpc
import grpc.aio
import pytest
from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.parser import text_string_to_metric_families

from ktrdr.service.metrics import RPC_BUCKETS, GrpcServerMetrics


class Context:
    """What the wrapper reads of a servicer context: the code an abort set."""

    def __init__(self) -> None:
        self._code: grpc.StatusCode | None = None

    def code(self) -> grpc.StatusCode | None:
        return self._code

    async def abort(self, code: grpc.StatusCode, message: str) -> None:
        self._code = code
        raise grpc.aio.AbortError(message)


class Details:
    def __init__(self, method: str) -> None:
        self.method = method
        self.invocation_metadata = ()


async def answer(request: Any, context: Context) -> str:
    if request == "missing":
        await context.abort(grpc.StatusCode.NOT_FOUND, "no such thing")
    if request == "hang":
        await asyncio.Event().wait()
    return "ok"


async def stream(request: Any, context: Context) -> AsyncIterator[str]:
    yield "one"
    yield "two"


HANDLERS = {
    "/pkg.Svc/Get": grpc.unary_unary_rpc_method_handler(answer),
    "/pkg.Svc/Watch": grpc.unary_stream_rpc_method_handler(stream),
}


async def call(metrics: GrpcServerMetrics, method: str, request: Any) -> Any:
    async def continuation(details: Any) -> Any:
        return HANDLERS.get(details.method)

    handler = await metrics.intercept_service(continuation, Details(method))  # type: ignore[arg-type]
    if handler is None:
        return None
    if handler.response_streaming:
        return [item async for item in handler.unary_stream(request, Context())]
    return await handler.unary_unary(request, Context())


def scraped(registry: CollectorRegistry) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    text = generate_latest(registry).decode()
    return {
        (s.name, tuple(sorted(s.labels.items()))): s.value
        for family in text_string_to_metric_families(text)
        for s in family.samples
    }


async def test_calls_counted_by_method_and_code_name():
    registry = CollectorRegistry()
    metrics = GrpcServerMetrics(registry)
    assert await call(metrics, "/pkg.Svc/Get", "x") == "ok"
    assert await call(metrics, "/pkg.Svc/Get", "y") == "ok"
    with pytest.raises(grpc.aio.AbortError):
        await call(metrics, "/pkg.Svc/Get", "missing")
    hanging = asyncio.ensure_future(call(metrics, "/pkg.Svc/Get", "hang"))
    await asyncio.sleep(0)
    hanging.cancel()
    with pytest.raises(asyncio.CancelledError):
        await hanging
    assert await call(metrics, "/pkg.Svc/Watch", "x") == ["one", "two"]
    assert await call(metrics, "/pkg.Svc/Nope", "x") is None
    assert await call(metrics, "/pkg.Svc/AlsoNope", "x") is None

    samples = scraped(registry)

    def handled(method: str, code: str, service: str = "pkg.Svc") -> float:
        labels = {"grpc_service": service, "grpc_method": method, "grpc_code": code}
        return samples.get(("ktrdr_grpc_server_handled_total", tuple(sorted(labels.items()))), 0)

    assert handled("Get", "OK") == 2
    assert handled("Get", "NOT_FOUND") == 1
    assert handled("Get", "CANCELLED") == 1
    assert handled("Watch", "OK") == 1
    # a method the server does not have: counted, its name never a label
    assert handled("unknown", "UNIMPLEMENTED", service="unknown") == 2
    assert not any("Nope" in str(key) for key in samples)

    get = (("grpc_method", "Get"), ("grpc_service", "pkg.Svc"))
    assert samples[("ktrdr_grpc_server_handling_seconds_count", get)] == 4
    inf = tuple(sorted((*get, ("le", "+Inf"))))
    assert samples[("ktrdr_grpc_server_handling_seconds_bucket", inf)] == 4
    smallest = tuple(sorted((*get, ("le", str(RPC_BUCKETS[0])))))
    assert samples[("ktrdr_grpc_server_handling_seconds_bucket", smallest)] >= 2  # cumulative
