"""``serve(settings)``: the backend's gRPC server, from start to graceful stop."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import signal

import grpc

from ktrdr.backend.mode_selector import MODES_BY_NAME, ModeSelector
from ktrdr.backend.operations import Operations
from ktrdr.backend.results import ResultsIntake
from ktrdr.backend.servicer import CONFIG_DEFAULT_MODE, BackendServicer
from ktrdr.backend.settings import BackendSettings
from ktrdr.backend.store import Store
from ktrdr.service.server import Health, bind, build_server
from ktrdr.storage import ModelStorage
from ktrdr.training.v1 import backend_pb2, backend_pb2_grpc

logger = logging.getLogger(__name__)

SERVICE_NAME = backend_pb2.DESCRIPTOR.services_by_name["Backend"].full_name


class BackendApp:
    """The server and everything it owns; ``start``/``stop`` for tests and ``serve``."""

    def __init__(self, settings: BackendSettings) -> None:
        self.settings = settings
        self.store = Store(settings.db_path)
        # The environment sets the default at start; a runtime change lasts until restart.
        self.store.set_config(CONFIG_DEFAULT_MODE, settings.default_mode)
        self.storage = ModelStorage(settings.models_dir)
        self.selector = ModeSelector(
            settings.host_addresses,
            timeout_s=settings.health_check_timeout_s,
            max_message_bytes=settings.max_message_bytes,
        )
        self.server: grpc.aio.Server | None = None
        self._health: Health | None = None
        self.port = 0
        self.operations: Operations | None = None

    async def start(self) -> int:
        """Bind, take over operations of a previous run, start serving; returns the port."""
        settings = self.settings
        self.operations = operations = Operations(
            settings,
            self.store,
            self.storage,
            self.selector,
            results_address=settings.results_address,
            default_mode=MODES_BY_NAME[settings.default_mode],
        )
        results = ResultsIntake(
            self.store,
            self.storage,
            incoming_dir=settings.incoming_dir,
            max_bundle_bytes=settings.max_bundle_bytes,
            live=operations.live,
        )
        servicer = BackendServicer(operations, results)
        self.server, self._health = build_server(
            lambda server: backend_pb2_grpc.add_BackendServicer_to_server(servicer, server),
            [SERVICE_NAME],
            max_message_bytes=settings.max_message_bytes,
        )
        self.port = bind(self.server, settings.address)
        host = settings.address.rsplit(":", 1)[0]
        # Hosts send results to the listen address unless told otherwise (port 0 resolved).
        operations.results_address = settings.results_address or f"{host}:{self.port}"
        operations.reconcile()
        await self.server.start()
        await self._health.set_serving(True)
        logger.info(
            "backend serving on %s:%d (default mode %s, hosts %s, results to %s, data %s)",
            host,
            self.port,
            settings.default_mode,
            settings.host_addresses or "none",
            operations.results_address,
            settings.data_dir,
        )
        return self.port

    async def stop(self) -> None:
        """NOT_SERVING, stop taking RPCs (grace period), stop local runs, close the store."""
        if self.server is not None and self._health is not None:
            await self._health.set_serving(False)
            await self.server.stop(self.settings.grace_s)
        if self.operations is not None:
            await self.operations.shutdown()
        self.store.close()


async def serve(settings: BackendSettings) -> None:
    """Run the backend until SIGINT or SIGTERM, then stop gracefully."""
    app = BackendApp(settings)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        with contextlib.suppress(NotImplementedError):
            loop.add_signal_handler(sig, stop.set)
    try:
        await app.start()
        await stop.wait()
        logger.info("stopping: no new work, %.0f s grace for running calls", settings.grace_s)
    finally:
        await app.stop()
