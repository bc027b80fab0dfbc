"""The OpenTelemetry side of tracing: imported only once tracing is on (``ktrdr.tracing``).

One ``TracerProvider`` per process, with the service's name, a batch processor and the OTLP
gRPC exporter (which reads the other ``OTEL_EXPORTER_OTLP_*`` variables: endpoint, headers,
certificates, timeout). Context travels as W3C trace context (``traceparent``/``tracestate``)
only: a value that does not parse is dropped by the propagator, so the work starts a new
trace and the text is never repeated anywhere.
"""

from __future__ import annotations

import functools
import logging
import os
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from typing import Any

from opentelemetry import context as otel_context
from opentelemetry import trace
from opentelemetry.sdk.resources import SERVICE_NAME, Resource
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import BatchSpanProcessor
from opentelemetry.trace import SpanKind, Status, StatusCode
from opentelemetry.trace.propagation.tracecontext import TraceContextTextMapPropagator

import ktrdr
from ktrdr.tracing.config import TraceSettings, TracingConfigError

logger = logging.getLogger(__name__)

TRACER_NAME = "ktrdr"
PROPAGATOR = TraceContextTextMapPropagator()

_provider: TracerProvider | None = None


def start(settings: TraceSettings) -> None:
    """Install this process's provider and exporter (once)."""
    global _provider
    try:
        from opentelemetry.exporter.otlp.proto.grpc.trace_exporter import OTLPSpanExporter
    except ImportError as exc:
        raise TracingConfigError(
            "tracing is configured (OTEL_TRACES_EXPORTER / OTEL_EXPORTER_OTLP_ENDPOINT) but the "
            f"OTLP exporter is not installed ({exc.name}); pip install 'ktrdr[tracing]', or "
            "set OTEL_TRACES_EXPORTER=none"
        ) from None
    propagators = os.environ.get("OTEL_PROPAGATORS", "").strip()
    if propagators and propagators != "tracecontext":
        logger.warning(
            "OTEL_PROPAGATORS=%s is not used: ktrdr carries W3C trace context (tracecontext) only",
            propagators,
        )
    resource = Resource.create({SERVICE_NAME: settings.service_name})
    provider = TracerProvider(resource=resource)
    provider.add_span_processor(BatchSpanProcessor(OTLPSpanExporter()))
    trace.set_tracer_provider(provider)
    _provider = provider


def flush(timeout_s: float = 10.0) -> None:
    if _provider is not None:
        _provider.force_flush(int(timeout_s * 1000))


def shutdown() -> None:
    if _provider is not None:
        _provider.shutdown()


@functools.cache
def tracer() -> trace.Tracer:
    """This project's tracer (made once: before a provider is installed it is a proxy that
    follows the provider installed later)."""
    return trace.get_tracer(TRACER_NAME, ktrdr.__version__)


@contextmanager
def span(
    name: str,
    attributes: Mapping[str, Any] | None = None,
    *,
    parent: Mapping[str, str] | None = None,
    kind: SpanKind = SpanKind.INTERNAL,
) -> Iterator[trace.Span]:
    """A current span (under ``parent``'s context when given, else the current one); an
    exception leaving it marks it as an error."""
    ctx = PROPAGATOR.extract(dict(parent)) if parent is not None else None
    with tracer().start_as_current_span(
        name, context=ctx, kind=kind, attributes=dict(attributes or {})
    ) as current:
        yield current


def start_span(name: str, attributes: Mapping[str, Any] | None = None) -> trace.Span:
    """A span the caller ends (not made current)."""
    return tracer().start_span(name, attributes=dict(attributes or {}))


def end_span(span_: trace.Span, error: str = "") -> None:
    if error:
        span_.set_status(Status(StatusCode.ERROR, error))
    span_.end()


@contextmanager
def use_span(span_: trace.Span) -> Iterator[None]:
    token = otel_context.attach(trace.set_span_in_context(span_))
    try:
        yield
    finally:
        otel_context.detach(token)


def carrier() -> dict[str, str]:
    """The current context as ``traceparent`` (+ ``tracestate``); empty outside a span."""
    out: dict[str, str] = {}
    PROPAGATOR.inject(out)
    return out


def extract_ids(carrier_: Mapping[str, str]) -> tuple[str, str] | None:
    """(trace id, span id) in hex from a carrier, None when it does not parse."""
    ctx = PROPAGATOR.extract(dict(carrier_))
    sc = trace.get_current_span(ctx).get_span_context()
    if not sc.is_valid:
        return None
    return format(sc.trace_id, "032x"), format(sc.span_id, "016x")


def current_ids() -> tuple[str, str]:
    """The current span's (trace id, span id) in hex, ("", "") outside one."""
    sc = trace.get_current_span().get_span_context()
    if not sc.is_valid:
        return "", ""
    return format(sc.trace_id, "032x"), format(sc.span_id, "016x")
