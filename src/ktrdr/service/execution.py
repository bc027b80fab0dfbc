"""One training run off the event loop, bridged to asyncio and to a progress fan-out.

Used by the host (a session) and by the backend (a local operation), so both run training
the same way: a ``TrainingRunner`` (a ``ProcessExecutor`` that trains in a worker process,
or the library's ``TrainingExecutor`` itself) driven from a thread, its events converted to
wire events with sequence numbers, heartbeats during quiet phases, and cancellation.
The owner publishes the ACCEPTED and terminal events itself, since only it knows the outcome
(the host adds the delivery state, the backend the saved model).
"""

from __future__ import annotations

import asyncio
import logging
import threading
import time
from collections.abc import Callable
from typing import TYPE_CHECKING

from ktrdr.service.convert import (
    IDLE_HEARTBEAT,
    event_to_proto,
    is_droppable,
    is_terminal,
    simple_event,
)
from ktrdr.service.fanout import EventFanout
from ktrdr.training.cancellation import CancellationToken
from ktrdr.training.progress import ProgressEvent, ProgressKind
from ktrdr.training.v1 import common_pb2
from ktrdr.worker.entry import TrainingRunner

if TYPE_CHECKING:
    from ktrdr.config.strategy import StrategyConfig
    from ktrdr.training.executor import TrainingResult

logger = logging.getLogger(__name__)

HEARTBEAT_INTERVAL_S = 5.0


def new_fanout(buffer_limit: int = 256) -> EventFanout[common_pb2.ProgressEvent]:
    """A fan-out of wire progress events on the running loop (bounded per watcher)."""
    return EventFanout(
        asyncio.get_running_loop(),
        droppable=is_droppable,
        terminal=is_terminal,
        buffer_limit=buffer_limit,
    )


class ExecutorRun:
    """Runs ``executor.run(config)`` off the event loop and streams its progress."""

    def __init__(
        self,
        executor: TrainingRunner,
        config: StrategyConfig,
        *,
        fanout: EventFanout[common_pb2.ProgressEvent],
        strategy_yaml: str | None = None,
        heartbeat_s: float = HEARTBEAT_INTERVAL_S,
        observe: Callable[[ProgressEvent], None] | None = None,
    ) -> None:
        """``observe``: sees each of the library's events first, in the training's thread
        (the host's metrics count epochs there); it must be quick and must not raise."""
        self.executor = executor
        self.config = config
        self.fanout = fanout
        self.strategy_yaml = strategy_yaml
        self.heartbeat_s = heartbeat_s
        self.observe = observe
        self.token = CancellationToken()
        self._sequence = 0
        self._lock = threading.Lock()
        self._last_event_at = time.monotonic()
        self.last_percent = 0.0

    # -- publishing ----------------------------------------------------------------------
    def number(self, event: common_pb2.ProgressEvent) -> common_pb2.ProgressEvent:
        """Give ``event`` the next sequence number without publishing it (thread-safe).

        For an owner that must record an event (e.g. a terminal one, in a database) before
        watchers see it: ``number``, record, then ``fanout.publish``.
        """
        with self._lock:
            self._sequence += 1
            event.sequence = self._sequence
            self._last_event_at = time.monotonic()
            if event.percent:
                self.last_percent = max(self.last_percent, event.percent)
        return event

    def publish(self, event: common_pb2.ProgressEvent) -> common_pb2.ProgressEvent:
        """Number ``event`` and hand it to the fan-out (thread-safe)."""
        self.fanout.publish(self.number(event))
        return event

    def _on_progress(self, event: ProgressEvent) -> None:  # worker thread
        if self.observe is not None:
            self.observe(event)
        self.publish(event_to_proto(event))

    async def _heartbeats(self) -> None:
        while True:
            await asyncio.sleep(min(1.0, self.heartbeat_s / 2))
            if time.monotonic() - self._last_event_at >= self.heartbeat_s:
                self.publish(
                    simple_event(ProgressKind.HEARTBEAT, IDLE_HEARTBEAT, self.last_percent)
                )

    # -- running -------------------------------------------------------------------------
    async def run(self) -> TrainingResult:
        """Train; raises ``TrainingCancelled``, ``TrainingError`` or any other failure."""
        beats = asyncio.create_task(self._heartbeats())
        try:
            return await asyncio.to_thread(
                self.executor.run,
                self.config,
                self._on_progress,
                self.token,
                strategy_yaml=self.strategy_yaml,
            )
        finally:
            beats.cancel()

    def cancel(self, reason: str = "cancelled by request") -> None:
        self.token.cancel(reason)
