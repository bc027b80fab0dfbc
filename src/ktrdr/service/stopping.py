"""Stopping a service the same way in both: the first signal drains, a second one forces.

``install_stop_signals`` sets ``stop`` at the first SIGTERM/SIGINT and ``force`` at the second,
with a log line for each; ``stop_server`` stops a gRPC server within its grace period, or at
once when ``force`` is set meanwhile (running calls are cancelled).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import signal

import grpc

logger = logging.getLogger(__name__)


def install_stop_signals(
    stop: asyncio.Event, force: asyncio.Event, *, draining: str, forcing: str
) -> None:
    """SIGTERM/SIGINT: the first sets ``stop`` (logs ``draining``), the next ``force``
    (logs ``forcing``). A no-op where the loop cannot take signals (not the main thread)."""
    loop = asyncio.get_running_loop()

    def on_signal(signum: int) -> None:
        if stop.is_set():
            logger.warning("second %s: %s", signal.strsignal(signum), forcing)
            force.set()
        else:
            logger.info("%s received: %s", signal.strsignal(signum), draining)
            stop.set()

    for signum in (signal.SIGTERM, signal.SIGINT):
        with contextlib.suppress(NotImplementedError, RuntimeError):
            loop.add_signal_handler(signum, on_signal, signum)


async def stop_server(
    server: grpc.aio.Server, grace_s: float, force: asyncio.Event | None = None
) -> None:
    """``server.stop(grace_s)``, cut short by ``force``: gRPC then cancels running calls."""
    stopping = asyncio.ensure_future(server.stop(grace_s))
    if force is None:
        await stopping
        return
    forced = asyncio.ensure_future(force.wait())
    try:
        await asyncio.wait({stopping, forced}, return_when=asyncio.FIRST_COMPLETED)
        if not stopping.done():
            await server.stop(None)  # a smaller grace takes effect at once
        await stopping
    finally:
        forced.cancel()
        await asyncio.gather(forced, return_exceptions=True)


__all__ = ["install_stop_signals", "stop_server"]
