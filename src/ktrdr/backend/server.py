"""The backend from start to stop: ``BackendApp`` and ``serve(settings)``.

Construction opens the database and wires every part to the others (operations, results
intake, sweeps, servicer, metrics, the MLflow tracker, the host registry's listeners), so a
started backend and a constructed one have the same shape. ``start`` binds, takes over the
operations of a previous run and serves. Stop (first SIGTERM/SIGINT): NOT_SERVING, running
calls get ``grace_s`` to finish, sweeps pause, local runs end, the store closes. A second
signal cuts the grace period short: running calls are cancelled at once.
"""

from __future__ import annotations

import asyncio
import logging
from typing import TYPE_CHECKING

import grpc

from ktrdr import tracing
from ktrdr.backend.auth import TokenStore, backend_policy, bootstrap_local_tokens
from ktrdr.backend.auth.token_store import ADMIN_TOKEN_FILE, HOST_TOKEN_FILE
from ktrdr.backend.database import Database
from ktrdr.backend.execution.host_rpcs import lost_listener
from ktrdr.backend.execution.mode_selector import MODES_BY_NAME, HostConnection, ModeSelector
from ktrdr.backend.execution.registry import HostRegistry, Lost
from ktrdr.backend.operations import Operations, RunnerFactory
from ktrdr.backend.registration import add_backend_servicer
from ktrdr.backend.results import ResultsIntake
from ktrdr.backend.servicer import CONFIG_DEFAULT_MODE, BackendServicer
from ktrdr.backend.settings import BackendSettings
from ktrdr.backend.store import Store
from ktrdr.backend.stream_bounds import backend_stream_guard
from ktrdr.backend.sweeps import Sweeps
from ktrdr.backend.tracking.mlflow_runs import MlflowTracker, make_tracker
from ktrdr.security.interceptor import AuthInterceptor
from ktrdr.security.local_records import announce, withdraw
from ktrdr.security.tls import check_listen_security
from ktrdr.service.server import Health, bind, build_server
from ktrdr.service.stopping import install_stop_signals, stop_server
from ktrdr.storage import ModelStorage
from ktrdr.training.v1 import backend_pb2

if TYPE_CHECKING:  # imported when metrics are on (prometheus_client)
    from ktrdr.backend.tracking.metrics import BackendMetrics
    from ktrdr.service.metrics import MetricsEndpoint

logger = logging.getLogger(__name__)

BACKEND_SERVICE = "ktrdr-backend"  # the spans' service name unless OTEL_SERVICE_NAME
SERVICE_NAME = backend_pb2.DESCRIPTOR.services_by_name["Backend"].full_name


class BackendApp:
    """The server and everything it owns; ``start``/``stop`` for tests and ``serve``."""

    def __init__(
        self, settings: BackendSettings, *, runner_factory: RunnerFactory | None = None
    ) -> None:
        """``runner_factory`` replaces the worker processes of local runs (tests)."""
        # Traces when the OTEL_* variables configure them (before any server or channel).
        tracing.start(BACKEND_SERVICE)
        # Every path once, from the working directory at start (logged).
        self.settings = settings = settings.absolute()
        self.runner_factory = runner_factory
        # The one owner of backend.db: every store below shares it (its writer thread).
        self.database = Database(settings.db_path)
        self.store = Store(self.database)
        self.storage = ModelStorage(settings.models_dir)
        self.tokens = TokenStore(self.database)
        self.registry = HostRegistry(
            settings.host_addresses,
            heartbeat_interval_s=settings.host_heartbeat_interval_s,
            heartbeat_timeout_s=settings.host_heartbeat_timeout_s,
            removal_after_s=settings.host_removal_after_s,
            max_hosts=settings.max_registered_hosts,
            allowed_addresses=settings.allowed_host_addresses,
            enabled=settings.host_registration,
        )
        self._registry_watch: asyncio.Task[None] | None = None
        self.selector = ModeSelector(
            settings.host_addresses,
            timeout_s=settings.health_check_timeout_s,
            connection=HostConnection(
                settings.max_message_bytes,
                tls=settings.host_client_tls(),
                token_for=settings.host_token_source,
            ),
            registry=self.registry,
        )
        self.server: grpc.aio.Server | None = None
        self._health: Health | None = None
        self.port = 0
        self.operations = operations = Operations(
            settings,
            self.store,
            self.storage,
            self.selector,
            results_address=settings.results_address,  # the bound address when unset
            default_mode=MODES_BY_NAME[settings.default_mode],
            runner_factory=runner_factory,
        )
        self.results = results = ResultsIntake(
            self.store,
            self.storage,
            incoming_dir=settings.incoming_dir,
            max_bundle_bytes=settings.max_bundle_bytes,
            live=operations.live,
            announced=operations.announced_bundle,
            max_concurrent=settings.max_concurrent_uploads,
            idle_timeout_s=settings.upload_idle_timeout_s,
            deadline_s=settings.upload_deadline_s,
        )
        self.sweeps = sweeps = Sweeps(operations)
        self.servicer = BackendServicer(operations, results, sweeps)
        self.registry.on_available.append(lambda _host: operations.hosts.queue.wake())
        self.registry.on_lost.append(lost_listener(self._host_lost))
        # Prometheus metrics and their endpoint: None unless METRICS_ADDRESS is set.
        self.metrics: BackendMetrics | None = None
        self.metrics_endpoint: MetricsEndpoint | None = None
        # MLflow: None unless a tracking URI is set; its thread starts with the backend.
        self.tracker: MlflowTracker | None = None
        try:  # both import an optional package; the database's writer thread must not stay
            if settings.metrics_address:
                self._wire_metrics()
            if settings.mlflow_tracking_uri:
                self._wire_tracker()
        except BaseException:
            self.database.close()
            raise
        self._announced = ""

    def _wire_metrics(self) -> None:
        from ktrdr.backend.tracking.metrics import BackendMetrics
        from ktrdr.service.metrics import MetricsEndpoint

        self.metrics = metrics = BackendMetrics()
        self.operations.events = self.results.events = self.servicer.events = metrics
        metrics.watch(self.operations, self.sweeps)
        self.metrics_endpoint = MetricsEndpoint(metrics.registry, "backend")

    def _wire_tracker(self) -> None:
        self.tracker = tracker = make_tracker(self.settings, self.store)
        tracker.trial_of = self.sweeps.store.trial_of_operation
        tracker.parents.store = self.sweeps.store
        self.sweeps.listeners.append(tracker.sweep_changed)
        self.operations.finished_listeners.append(tracker.operation_finished)

    async def start(self) -> int:
        """Bind, take over operations of a previous run, start serving; returns the port."""
        settings = self.settings
        check_listen_security(
            settings.address,
            tls=settings.server_tls().enabled,
            insecure=settings.insecure,
            auth=settings.auth_enabled,
            insecure_no_auth=settings.insecure_no_auth,
            service="backend",
        )
        interceptors = []
        if settings.auth_enabled:
            interceptors.append(
                AuthInterceptor(
                    self.tokens.resolve,
                    backend_policy(),
                    service="backend",
                    hint="pass --token or set KTRDR_TOKEN (TrainingClient(token=...); grpcurl "
                    "-H 'authorization: Bearer TOKEN'); an admin creates tokens with "
                    "'ktrdr backend tokens create NAME --role ROLE'",
                )
            )
        else:
            logger.warning(
                "authentication is OFF (--insecure-no-auth): anyone who reaches "
                "%s may train, cancel and deliver models",
                settings.address,
            )
        # The environment sets the default at start; a runtime change lasts until restart.
        await self.store.set_config.aio(CONFIG_DEFAULT_MODE, settings.default_mode)
        # A database from before the listing tables: filled once, off the event loop.
        await asyncio.to_thread(self.store.prepare_listings)
        interceptors.append(
            backend_stream_guard(settings, self.tokens.resolve if settings.auth_enabled else None)
        )
        operations, servicer = self.operations, self.servicer
        self.server, self._health = build_server(
            lambda server: add_backend_servicer(servicer, server),
            [SERVICE_NAME],
            service="backend",
            max_message_bytes=settings.max_message_bytes,
            interceptors=interceptors,
            observe=self.metrics.grpc if self.metrics is not None else None,
        )
        self.port = bind(
            self.server, settings.address, settings.server_tls(), prefix="KTRDR_BACKEND_"
        )
        if self.metrics_endpoint is not None:
            self.metrics_endpoint.start(
                settings.metrics_address,
                allow_remote=settings.metrics_allow_remote,
                prefix="KTRDR_BACKEND_",
            )
        if settings.auth_enabled:  # after the bind: a start that cannot serve creates nothing
            written = await asyncio.to_thread(
                bootstrap_local_tokens, self.tokens, settings.data_dir
            )
            for path in written:
                logger.info("first start: token written to %s (mode 0600)", path)
        settings.log_paths("backend")
        host = settings.address.rsplit(":", 1)[0]
        if settings.auth_enabled:  # clients and hosts on this machine find these tokens
            self._announced = f"{host}:{self.port}"
            announce(
                self._announced,
                "backend",
                {
                    "admin": settings.data_dir / ADMIN_TOKEN_FILE,
                    "host": settings.data_dir / HOST_TOKEN_FILE,
                },
            )
        # Hosts send results to the listen address unless told otherwise (port 0 resolved).
        operations.results_address = settings.results_address or f"{host}:{self.port}"
        if self.tracker is not None:
            self.tracker.start()
        await operations.reconcile()
        await self.sweeps.resume()
        await self.server.start()
        self._registry_watch = asyncio.create_task(self.registry.watch(), name="host-registry")
        await self._health.set_serving(True)
        if self.runner_factory is None:
            await self._preload_workers(operations)
        logger.info(
            "backend serving on %s:%d (%s, %s; default mode %s, hosts %s%s, results to %s, "
            "data %s)",
            host,
            self.port,
            "TLS" if settings.server_tls().enabled else "plaintext",
            "token auth" if settings.auth_enabled else "NO auth",
            settings.default_mode,
            settings.host_addresses or "none",
            " + registered" if settings.host_registration else "",
            operations.results_address,
            settings.data_dir,
        )
        return self.port

    async def _preload_workers(self, operations: Operations) -> None:
        """Local runs' warm workers: imported now where this backend trains locally by default
        (``worker_preload``), else with the first local run."""
        settings = self.settings
        trains = settings.default_mode == "local" or (
            settings.default_mode == "auto" and not settings.host_addresses
        )
        if settings.preload_at_start(trains):
            started = await asyncio.to_thread(operations.workers.preload)
            logger.info("warm workers for local runs: %s", started)
        else:
            logger.info(
                "warm workers for local runs start with the first one (default mode %s; "
                "KTRDR_BACKEND_WORKER_PRELOAD=at-start imports them now)",
                settings.default_mode,
            )

    async def _host_lost(self, lost: Lost) -> None:
        """A registered host was removed or restarted: its operations end with the cause."""
        if self.operations is not None:
            ended = await self.operations.hosts.host_lost(lost.addresses, lost.kept, lost.cause)
            if ended:
                logger.warning("%d operation(s) failed: %s", ended, lost.cause)

    async def stop(self, force: asyncio.Event | None = None) -> None:
        """NOT_SERVING, stop taking RPCs (grace period, cut short when ``force`` is set),
        stop local runs, close the store."""
        if self.server is not None and self._health is not None:
            await self._health.set_serving(False)
            await stop_server(self.server, self.settings.grace_s, force)
        if self._registry_watch is not None:
            self._registry_watch.cancel()
            await asyncio.gather(self._registry_watch, return_exceptions=True)
        await self.sweeps.shutdown()  # first: a sweep must not see its trials stopped
        await self.operations.shutdown()
        if self.tracker is not None:  # before the store it reads from
            timeout_s = 1.0 if force is not None and force.is_set() else 30.0
            await asyncio.to_thread(self.tracker.close, timeout_s)
        await asyncio.to_thread(self.database.close)  # after the writes queued before
        if self._announced:
            withdraw(self._announced)
        if self.metrics_endpoint is not None:  # last: a scrape sees the stop's transitions
            await asyncio.to_thread(self.metrics_endpoint.stop)
        await asyncio.to_thread(tracing.flush)


async def serve(settings: BackendSettings) -> None:
    """Run the backend until SIGINT or SIGTERM, then stop gracefully (a second one: at once)."""
    stop, force = asyncio.Event(), asyncio.Event()
    install_stop_signals(
        stop,
        force,
        draining=f"stopping: no new work, {settings.grace_s:.0f} s grace for running calls "
        "(a second signal stops now)",
        forcing="cancelling running calls now",
    )
    app = BackendApp(settings)
    try:
        await app.start()
        await stop.wait()
    finally:
        await app.stop(force)
        tracing.shutdown()
