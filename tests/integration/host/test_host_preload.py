"""A host's warm workers: the forkserver imports the training stack when the host starts
(``worker_preload`` auto), so the first session does not wait for torch's imports."""

from __future__ import annotations

import asyncio

from ktrdr_host.server import start_host
from ktrdr_host.settings import HostSettings
from tests.support.timing import scaled


async def test_a_host_preloads_its_warm_workers_at_start(host_settings: HostSettings) -> None:
    host = await start_host(host_settings.model_copy(update={"worker_preload": "auto"}))
    try:
        pool = host.registry.workers
        assert pool.forkserver_pid is not None, "no forkserver started with the host"
        assert await asyncio.to_thread(pool.wait_ready, scaled(120))
    finally:
        await host.shutdown()


async def test_first_run_preload_starts_nothing(host_settings: HostSettings) -> None:
    host = await start_host(host_settings.model_copy(update={"worker_preload": "first-run"}))
    try:
        assert host.registry.workers.forkserver_pid is None
    finally:
        await host.shutdown()
