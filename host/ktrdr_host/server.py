"""Starting and stopping the host: ``serve(settings)`` runs it until SIGTERM or SIGINT.

Start: resolve the default device (a missing one stops the start), open the spool, rebuild a
session for every spooled model and resend it, build the gRPC server (TrainingHost, health,
reflection, explicit message-size limits), bind, and report SERVING.

Stop (first SIGTERM/SIGINT): NOT_SERVING, refuse new sessions with UNAVAILABLE, let running
sessions finish within ``shutdown_grace_s`` and cancel the rest, stop delivering (undelivered
models stay in the spool for the next start), then stop the server. A second signal skips
the rest of the grace period.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING

import grpc

from ktrdr import tracing
from ktrdr.security.local_records import announce, withdraw
from ktrdr.security.tls import SecurityConfigError, check_listen_security, split_host
from ktrdr.service.server import Health, bind, build_server
from ktrdr.service.stopping import install_stop_signals
from ktrdr.training.device import DeviceInfo, resolve_device
from ktrdr.training.v1 import host_pb2_grpc
from ktrdr_host.access import host_auth
from ktrdr_host.delivery import ResultSender
from ktrdr_host.ray.cluster import RayMode
from ktrdr_host.registration import BackendRegistration
from ktrdr_host.servicer import SERVICE_NAME, TrainingHostServicer
from ktrdr_host.sessions import ExecutorFactory, SessionRegistry
from ktrdr_host.settings import HostSettings
from ktrdr_host.spool import Spool

if TYPE_CHECKING:  # imported when metrics are on (prometheus_client)
    from ktrdr.service.metrics import MetricsEndpoint
    from ktrdr_host.metrics import HostMetrics

logger = logging.getLogger(__name__)

HOST_SERVICE = "ktrdr-host"  # the spans' service name unless OTEL_SERVICE_NAME
SERVER_STOP_GRACE_S = 2.0  # lets finished streams flush their last events


@dataclass
class RunningHost:
    """A started host: its server, health, sessions and sender, and the bound port."""

    settings: HostSettings
    server: grpc.aio.Server
    health: Health
    registry: SessionRegistry
    sender: ResultSender
    device: DeviceInfo
    port: int
    token: str | None = None  # what a caller (the backend) must present
    ray: RayMode | None = None  # set when sessions train on a Ray cluster
    scanner: asyncio.Task[None] | None = None  # picks up models put back into the spool
    registration: BackendRegistration | None = None  # with KTRDR_HOST_BACKEND_ADDRESS
    metrics: MetricsEndpoint | None = None  # the /metrics endpoint, when configured

    @property
    def address(self) -> str:
        host = self.settings.address.rsplit(":", 1)[0]
        return f"{host}:{self.port}"

    async def shutdown(self, force: asyncio.Event | None = None) -> None:
        """Drain and stop (see the module docstring); safe to call once."""
        logger.info("shutting down: NOT_SERVING, no new sessions")
        await self.health.set_serving(False)
        self.registry.accepting = False
        if self.registration is not None:  # no new work from the backend
            await self.registration.stop()
        if self.scanner is not None:
            self.scanner.cancel()
            await asyncio.gather(self.scanner, return_exceptions=True)
        try:
            await self.registry.drain(self.settings.shutdown_grace_s, force)
            await self.sender.stop()
        finally:
            await asyncio.to_thread(self.registry.workers.close)
            if self.ray is not None:
                await self.ray.stop()
            await self.server.stop(grace=SERVER_STOP_GRACE_S)
            withdraw(self.address)
            if self.metrics is not None:  # last: a scrape sees the stop's transitions
                await asyncio.to_thread(self.metrics.stop)
            await asyncio.to_thread(tracing.flush)
        logger.info("host stopped")


async def start_host(
    settings: HostSettings, *, executor_factory: ExecutorFactory | None = None
) -> RunningHost:
    """Start serving on ``settings.address`` and resend the spool; returns the running host."""
    tracing.start(HOST_SERVICE)  # when the OTEL_* variables say so; before servers, channels
    settings = settings.absolute()  # every path once, from the working dir (logged)
    check_listen_security(
        settings.address,
        tls=settings.server_tls().enabled,
        insecure=settings.insecure,
        auth=not settings.insecure_no_auth,
        insecure_no_auth=settings.insecure_no_auth,
        service="host",
    )
    auth = host_auth(settings)
    _check_advertise(settings)
    device = resolve_device(settings.device)  # DeviceError: the configured device is missing
    spool = await asyncio.to_thread(Spool, settings.spool_dir)
    sender = ResultSender(spool, settings)
    ray = await RayMode.start(settings) if settings.ray_address else None
    registry = SessionRegistry(
        settings, spool, sender, executor_factory, ray.cluster if ray is not None else None
    )
    servicer = TrainingHostServicer(registry, device)
    metrics = _metrics(settings, registry, sender)
    server, health = build_server(
        lambda s: host_pb2_grpc.add_TrainingHostServicer_to_server(servicer, s),
        [SERVICE_NAME],
        service="host",
        max_message_bytes=settings.max_message_bytes,
        interceptors=[auth.interceptor] if auth.interceptor is not None else [],
        observe=metrics.grpc if metrics is not None else None,
    )
    port = bind(server, settings.address, settings.server_tls(), prefix="KTRDR_HOST_")
    endpoint = None
    if metrics is not None:
        from ktrdr.service.metrics import MetricsEndpoint

        endpoint = MetricsEndpoint(metrics.registry, "host")
        endpoint.start(
            settings.metrics_address,
            allow_remote=settings.metrics_allow_remote,
            prefix="KTRDR_HOST_",
        )
    settings.log_paths("host")
    await server.start()
    resent = registry.restore(await asyncio.to_thread(spool.entries))
    if resent:
        logger.info("resending %d spooled model(s) from %s", resent, spool.directory)
    await health.set_serving(True)
    if ray is None and executor_factory is None:  # sessions train in this host's workers
        await _preload_workers(registry, settings)
    host = RunningHost(settings, server, health, registry, sender, device, port, auth.token, ray)
    host.metrics = endpoint
    if auth.token is not None and not settings.auth_token.get_secret_value():
        # the token lives in its file: a backend on this machine finds it by this port
        announce(host.address, "host", {"auth": settings.token_file})
    host.scanner = asyncio.create_task(_scan_spool(registry, spool, settings), name="spool-scan")
    if ray is not None:
        ray.watch(health, lambda: registry.accepting)
    if settings.backend_address:
        host.registration = _registration(settings, registry, servicer, host.address)
        host.registration.start()
    logger.info(
        "training host listening on %s (%s, %s; device %s, %s, spool %s)",
        host.address,
        "TLS" if settings.server_tls().enabled else "plaintext",
        auth.summary,
        device,
        f"up to {settings.max_sessions} session(s)" if ray is None else ray.summary,
        spool.directory,
    )
    return host


def _registration(
    settings: HostSettings,
    registry: SessionRegistry,
    servicer: TrainingHostServicer,
    listen: str,
) -> BackendRegistration:
    """Registration with ``settings.backend_address``, advertising where the backend dials."""
    advertise = settings.advertise_address or listen
    return BackendRegistration(settings, registry, servicer.capabilities, advertise)


def _check_advertise(settings: HostSettings) -> None:
    """A host that registers must advertise an address the backend can dial."""
    unspecified = split_host(settings.address) in ("0.0.0.0", "::", "")
    if settings.backend_address and not settings.advertise_address and unspecified:
        raise SecurityConfigError(
            f"host: listening on {settings.address}, the backend cannot dial that "
            "address; pass --advertise-address HOST:PORT (KTRDR_HOST_ADVERTISE_ADDRESS)"
        )


async def _preload_workers(registry: SessionRegistry, settings: HostSettings) -> None:
    """The sessions' warm workers: imported now (``worker_preload`` auto or at-start), else
    with the first session."""
    if settings.preload_at_start(trains_by_default=True):
        started = await asyncio.to_thread(registry.workers.preload)
        logger.info("warm workers for sessions: %s", started)
    else:
        logger.info("warm workers for sessions start with the first one (worker_preload)")


def _metrics(
    settings: HostSettings, registry: SessionRegistry, sender: ResultSender
) -> HostMetrics | None:
    """The host's metrics, fed by the sessions and deliveries (None when not configured)."""
    if not settings.metrics_address:
        return None
    from ktrdr_host.metrics import HostMetrics

    metrics = HostMetrics()
    registry.events = sender.events = metrics
    metrics.watch(registry, settings.max_sessions)
    return metrics


async def _scan_spool(registry: SessionRegistry, spool: Spool, settings: HostSettings) -> None:
    """Every ``spool_scan_interval_s``: deliver models put back into the spool meanwhile."""
    while True:
        await asyncio.sleep(settings.spool_scan_interval_s)
        if not registry.accepting:
            return
        try:
            entries = await asyncio.to_thread(spool.entries, cleanup=False)
        except OSError as exc:
            logger.error("cannot scan the spool %s: %s", spool.directory, exc)
            continue
        registry.adopt(entries)


async def serve(
    settings: HostSettings, *, on_ready: Callable[[RunningHost], None] | None = None
) -> None:
    """Run the host until SIGTERM or SIGINT, then drain and stop."""
    stop, force = asyncio.Event(), asyncio.Event()
    install_stop_signals(
        stop, force, draining="draining", forcing="cancelling running sessions now"
    )
    host = await start_host(settings)
    try:
        if on_ready is not None:
            on_ready(host)
        await stop.wait()
    finally:
        await host.shutdown(force)
        tracing.shutdown()


__all__ = ["RunningHost", "serve", "start_host"]
