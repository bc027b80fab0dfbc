"""When tracing is on: the rule over the standard ``OTEL_*`` variables (standard library only).

Tracing is on when the SDK is not disabled (``OTEL_SDK_DISABLED`` is not ``true``) and either
``OTEL_TRACES_EXPORTER=otlp`` or an OTLP endpoint (``OTEL_EXPORTER_OTLP_TRACES_ENDPOINT`` or
``OTEL_EXPORTER_OTLP_ENDPOINT``) is set; ``OTEL_TRACES_EXPORTER=none`` (or unset with no
endpoint) keeps it off. The OpenTelemetry SDK's own default (``otlp`` to localhost:4317
whenever it is imported) is not followed: a service that nobody configured exports nothing
and imports nothing. Only the OTLP gRPC exporter is supported; any other exporter or protocol
is refused with a message, never ignored.

``KTRDR_TRACE_READS=true`` also records a server span for a traced caller's reads (``Get*``
and ``List*`` calls); by default a read is not recorded (see ``ktrdr.tracing.grpc_spans``).
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass

# The variables a worker process needs to export like its service (a Ray worker does not
# inherit the host's environment, so they travel in the request).
EXPORT_VARIABLE_PREFIX = "OTEL_"
SUPPORTED_PROTOCOL = "grpc"
READS_VARIABLE = "KTRDR_TRACE_READS"


class TracingConfigError(ValueError):
    """The ``OTEL_*`` variables ask for tracing this installation cannot do."""


@dataclass(frozen=True)
class TraceSettings:
    """Tracing as the environment configures it (only built when tracing is on)."""

    service_name: str  # OTEL_SERVICE_NAME, else the process's default (ktrdr-backend, ...)
    endpoint: str  # for the start-up line; the exporter reads the variables itself
    reads: bool = False  # KTRDR_TRACE_READS: a server span for a traced caller's reads too


def _flag(value: str | None) -> bool:
    return (value or "").strip().lower() == "true"


def _reads(env: Mapping[str, str]) -> bool:
    value = env.get(READS_VARIABLE, "").strip().lower()
    if value not in ("", "true", "false"):
        raise TracingConfigError(
            f"{READS_VARIABLE}={env.get(READS_VARIABLE)!r}: say true (record a server span "
            "for a traced caller's Get/List calls too) or false (the default)"
        )
    return value == "true"


def from_env(default_service: str, env: Mapping[str, str] | None = None) -> TraceSettings | None:
    """The settings when tracing is on, None when off; ``TracingConfigError`` for a setup
    that asks for an exporter or protocol this project does not export with."""
    env = os.environ if env is None else env
    if _flag(env.get("OTEL_SDK_DISABLED")):
        return None
    endpoint = (
        env.get("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT")
        or env.get("OTEL_EXPORTER_OTLP_ENDPOINT")
        or ""
    ).strip()
    exporters = [
        name.strip().lower()
        for name in env.get("OTEL_TRACES_EXPORTER", "").split(",")
        if name.strip()
    ]
    if exporters == ["none"] or (not exporters and not endpoint):
        return None
    unsupported = [name for name in exporters if name != "otlp"]
    if unsupported:
        raise TracingConfigError(
            f"OTEL_TRACES_EXPORTER={env.get('OTEL_TRACES_EXPORTER')!r}: only 'otlp' (or 'none') "
            "is supported; set OTEL_TRACES_EXPORTER=otlp and OTEL_EXPORTER_OTLP_ENDPOINT"
        )
    protocol = (
        env.get("OTEL_EXPORTER_OTLP_TRACES_PROTOCOL")
        or env.get("OTEL_EXPORTER_OTLP_PROTOCOL")
        or SUPPORTED_PROTOCOL
    ).strip()
    if protocol != SUPPORTED_PROTOCOL:
        raise TracingConfigError(
            f"OTLP protocol {protocol!r}: only 'grpc' is supported (port 4317 of a collector "
            "or Jaeger); unset OTEL_EXPORTER_OTLP_PROTOCOL / OTEL_EXPORTER_OTLP_TRACES_PROTOCOL"
        )
    service = env.get("OTEL_SERVICE_NAME", "").strip() or default_service
    return TraceSettings(
        service_name=service, endpoint=endpoint or "http://localhost:4317", reads=_reads(env)
    )


def export_variables(env: Mapping[str, str] | None = None) -> dict[str, str]:
    """The ``OTEL_*`` variables of this process (for a worker that does not inherit them)."""
    env = os.environ if env is None else env
    return {k: v for k, v in env.items() if k.startswith(EXPORT_VARIABLE_PREFIX)}


__all__ = ["TraceSettings", "TracingConfigError", "export_variables", "from_env"]
