"""Server bootstrap shared by both services: limits, health, reflection, graceful stop."""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence

import grpc
import grpc.aio
from grpc_health.v1 import health, health_pb2, health_pb2_grpc
from grpc_reflection.v1alpha import reflection

from ktrdr import tracing
from ktrdr.security.tls import ServerTLS
from ktrdr.service.decoding import RejectUndecodable
from ktrdr.service.error_boundary import ErrorBoundary
from ktrdr.transfer import grpc_options

logger = logging.getLogger(__name__)

Register = Callable[[grpc.aio.Server], None]


class Health:
    """The standard ``grpc.health.v1`` service for ``""`` and the named services."""

    def __init__(self, service_names: Sequence[str]) -> None:
        self.servicer = health.aio.HealthServicer()
        self.names = ["", *service_names]

    async def set_serving(self, serving: bool) -> None:
        status = (
            health_pb2.HealthCheckResponse.SERVING
            if serving
            else health_pb2.HealthCheckResponse.NOT_SERVING
        )
        for name in self.names:
            await self.servicer.set(name, status)


# Connections are bounded too: a TLS handshake must finish in 10 s, a connection with no call
# for 5 min is closed (idle sockets held open are an fd limit away from EMFILE), a client is
# pinged after 60 s of silence and dropped when it does not answer in 20 s, and one
# connection carries at most 100 calls at once.
SERVER_BOUNDS: tuple[tuple[str, int], ...] = (
    ("grpc.server_handshake_timeout_ms", 10_000),
    ("grpc.max_connection_idle_ms", 300_000),
    ("grpc.keepalive_time_ms", 60_000),
    ("grpc.keepalive_timeout_ms", 20_000),
    ("grpc.http2.min_ping_interval_without_data_ms", 10_000),
    ("grpc.max_concurrent_streams", 100),
)


def build_server(
    register: Register,
    full_service_names: Sequence[str],
    *,
    service: str,
    max_message_bytes: int,
    interceptors: Sequence[grpc.aio.ServerInterceptor] = (),
    observe: grpc.aio.ServerInterceptor | None = None,
) -> tuple[grpc.aio.Server, Health]:
    """A ``grpc.aio`` server with the services, health and reflection registered.

    ``observe`` (the RPC metrics, when on) is the outermost interceptor: it sees every call
    and the status it ends with. With tracing on, a server span comes next (so the servicer
    and everything it starts run under it). Undecodable requests are answered INVALID_ARGUMENT (next
    interceptor, so also for calls the other interceptors refuse). Next comes the one error
    boundary of every method (``ErrorBoundary``; ``service``, e.g. "backend", names whose log
    an INTERNAL answer points to), around the other interceptors and the servicer.
    SO_REUSEPORT is off: gRPC turns it on by default, which lets a second server bind a port
    that is already served and take half of its connections.
    """
    options = [*grpc_options(max_message_bytes), ("grpc.so_reuseport", 0), *SERVER_BOUNDS]
    traced: list[grpc.aio.ServerInterceptor] = []
    if tracing.active():  # a server span per call, under the caller's traceparent
        from ktrdr.tracing import grpc_spans

        traced.append(grpc_spans.ServerSpans(reads=tracing.records_reads()))
    server = grpc.aio.server(
        options=options,
        interceptors=[
            *([observe] if observe is not None else []),
            *traced,
            RejectUndecodable(),
            ErrorBoundary(service),
            *interceptors,
        ],
    )
    register(server)
    health_ = Health(full_service_names)
    health_pb2_grpc.add_HealthServicer_to_server(health_.servicer, server)
    reflection.enable_server_reflection(
        [*full_service_names, health.SERVICE_NAME, reflection.SERVICE_NAME], server
    )
    return server, health_


class BindError(OSError):
    """The listen address is taken or not available here."""


def bind(
    server: grpc.aio.Server, address: str, tls: ServerTLS | None = None, *, prefix: str = ""
) -> int:
    """Bind ``address`` (``host:port``, port 0 for a free one), with TLS when ``tls`` is
    enabled; returns the bound port. ``BindError`` when the port is in use or the address is
    not available (grpcio reports both the same way), or the port is not 0..65535 (grpcio
    would silently take it modulo 65536)."""
    if not address.startswith("unix:"):
        _, sep, port_text = address.rpartition(":")
        if not sep or not port_text.isdigit() or int(port_text) > 65535:
            raise BindError(f"cannot listen on {address!r}: expected HOST:PORT, port 0..65535")
    try:
        if tls is not None and tls.enabled:
            port = server.add_secure_port(address, tls.credentials(prefix))
        else:
            port = server.add_insecure_port(address)
    except RuntimeError:
        port = 0
    if port == 0:
        raise BindError(f"cannot listen on {address}: address in use or not available")
    return port
