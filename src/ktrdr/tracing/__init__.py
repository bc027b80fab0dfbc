"""OpenTelemetry traces: one trace per operation, from the client through the backend and the
host into the worker process and back with the model's delivery.

Off by default and free when off: this module imports only the standard library; nothing of
OpenTelemetry is imported, and ``span``/``carrier`` are a constant and an empty dict, until
``start`` finds tracing configured by the standard ``OTEL_*`` variables (the rule:
``ktrdr.tracing.config``). Then ``ktrdr.tracing.otel`` installs the provider and exporter,
the servers and channels (``ktrdr.service.server``, ``ktrdr.security.channels``) add their
interceptors, and JSON log lines get ``trace_id``/``span_id``.

May import the standard library and ``ktrdr.log_format``; OpenTelemetry and gRPC only through
``ktrdr.tracing.otel``, and only after ``start``.
"""

from __future__ import annotations

import contextlib
import logging
import os
from collections.abc import Iterator, Mapping
from typing import Any, TypedDict

from ktrdr import log_format
from ktrdr.tracing.config import TraceSettings, TracingConfigError, export_variables, from_env

logger = logging.getLogger(__name__)

_active = False
_reads = False
_NOOP: contextlib.nullcontext[None] = contextlib.nullcontext()


def active() -> bool:
    """Whether this process exports spans."""
    return _active


def records_reads() -> bool:
    """Whether a traced caller's reads get server spans (``KTRDR_TRACE_READS``)."""
    return _reads


def start(default_service: str, *, announce: bool = True) -> bool:
    """Turn tracing on when the ``OTEL_*`` variables say so (once per process; later calls
    return whether it is on). ``TracingConfigError`` for an exporter or protocol this project
    cannot use, or a missing exporter package."""
    global _active, _reads
    if _active:
        return True
    settings = from_env(default_service)
    if settings is None:
        return False
    from ktrdr.tracing import otel

    otel.start(settings)
    log_format.set_trace_ids(otel.current_ids)
    _active, _reads = True, settings.reads
    if announce:
        logger.info(
            "tracing on: spans of %s go to %s (OTLP gRPC)%s",
            settings.service_name,
            settings.endpoint,
            "; reads recorded (KTRDR_TRACE_READS)" if settings.reads else "",
        )
    return True


def flush(timeout_s: float = 10.0) -> None:
    """Export the spans ended so far (a worker before it reports, a service when it stops)."""
    if _active:
        from ktrdr.tracing import otel

        otel.flush(timeout_s)


def shutdown() -> None:
    """Flush and stop exporting (a process about to exit)."""
    global _active
    if _active:
        from ktrdr.tracing import otel

        otel.shutdown()
        log_format.set_trace_ids(None)
        _active = False


def span(
    name: str, attributes: Mapping[str, Any] | None = None
) -> contextlib.AbstractContextManager[Any]:
    """A span around a block, under the current one; nothing at all when tracing is off."""
    if not _active:
        return _NOOP
    from ktrdr.tracing import otel

    return otel.span(name, attributes)


def carrier() -> dict[str, str]:
    """The current trace context as W3C headers for a process or call that continues it;
    empty when tracing is off or no span is current."""
    if not _active:
        return {}
    from ktrdr.tracing import otel

    return otel.carrier()


class WorkerTrace(TypedDict, total=False):
    """The ``WorkerRequest`` fields of a trace (see ``for_worker``)."""

    trace_context: dict[str, str]
    trace_env: dict[str, str]


def for_worker() -> WorkerTrace:
    """``WorkerRequest`` fields that let a worker process continue the current trace:
    ``trace_context`` and ``trace_env`` (none when tracing is off)."""
    if not _active:
        return {}
    return {"trace_context": carrier(), "trace_env": export_variables()}


@contextlib.contextmanager
def continued(
    name: str,
    parent: Mapping[str, str],
    env: Mapping[str, str],
    *,
    default_service: str,
    attributes: Mapping[str, Any] | None = None,
    flush: bool = True,
) -> Iterator[Any]:
    """In a worker: a span ``name`` under the service's context ``parent`` (a carrier), with
    tracing started from the service's ``OTEL_*`` variables ``env`` where this process lacks
    them; flushed when the block ends (``flush=False``: the caller flushes, e.g. after it
    has sent its answer). Nothing when ``parent`` is empty."""
    if not parent:
        yield None
        return
    for key, value in env.items():  # a Ray worker does not inherit the host's environment
        os.environ.setdefault(key, value)
    if not start(default_service, announce=False):
        yield None
        return
    from ktrdr.tracing import otel

    try:
        with otel.span(name, attributes, parent=parent) as current:
            yield current
    finally:
        if flush:
            otel.flush()


__all__ = [
    "TraceSettings",
    "TracingConfigError",
    "WorkerTrace",
    "active",
    "carrier",
    "continued",
    "export_variables",
    "flush",
    "for_worker",
    "from_env",
    "records_reads",
    "shutdown",
    "span",
    "start",
]
