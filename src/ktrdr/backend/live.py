"""An operation while it is active: its event numbering, fan-out, snapshots and transitions.

Every transition is written to the store first and published second, so a watcher that saw
the terminal event finds ``GetOperation`` in agreement. Writes are awaited (the database's
writer thread; the event loop never waits for SQLite). A terminal write that fails (a full
disk, a database locked past its deadline) is retried in the background until it lands,
with a capped backoff (``TERMINAL_RETRY_*``): an operation never stays RUNNING because its
outcome could not be written once; it is published when it is recorded. Non-terminal events
are snapshotted to the store by a recorder task (step, epoch and accepted events at once;
batch events and heartbeats at most once per ``SNAPSHOT_INTERVAL_S``; queued without
waiting, the latest per operation wins) so a restarted backend still shows the last
progress.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import threading
import time
from collections.abc import Awaitable, Callable
from typing import Protocol

from ktrdr.backend.store import ModelRecord, OperationRecord, Store
from ktrdr.backend.tracking.events import NO_EVENTS, BackendEvents
from ktrdr.service.convert import is_droppable, is_terminal, simple_event
from ktrdr.service.disk import is_disk_full
from ktrdr.service.execution import new_fanout
from ktrdr.service.fanout import EventFanout
from ktrdr.training.progress import ProgressKind
from ktrdr.training.v1 import backend_pb2 as pb
from ktrdr.training.v1 import common_pb2

logger = logging.getLogger(__name__)

SNAPSHOT_INTERVAL_S = 1.0
TERMINAL_RETRY_FIRST_S = 0.2
TERMINAL_RETRY_MAX_S = 5.0
_TERMINAL_STATUS = {
    common_pb2.PROGRESS_KIND_COMPLETED: pb.OPERATION_STATUS_COMPLETED,
    common_pb2.PROGRESS_KIND_FAILED: pb.OPERATION_STATUS_FAILED,
    common_pb2.PROGRESS_KIND_CANCELLED: pb.OPERATION_STATUS_CANCELLED,
}


class Numbering(Protocol):
    """Gives events their sequence numbers (``ExecutorRun`` is one)."""

    fanout: EventFanout[common_pb2.ProgressEvent]

    def number(self, event: common_pb2.ProgressEvent) -> common_pb2.ProgressEvent: ...

    def publish(self, event: common_pb2.ProgressEvent) -> common_pb2.ProgressEvent: ...


class EventSequence:
    """Numbering for operations whose events come from elsewhere (a host's stream)."""

    def __init__(self, fanout: EventFanout[common_pb2.ProgressEvent], start: int = 0) -> None:
        self.fanout = fanout
        self._sequence = start
        self._lock = threading.Lock()

    def number(self, event: common_pb2.ProgressEvent) -> common_pb2.ProgressEvent:
        with self._lock:
            self._sequence += 1
            event.sequence = self._sequence
        return event

    def publish(self, event: common_pb2.ProgressEvent) -> common_pb2.ProgressEvent:
        self.fanout.publish(self.number(event))
        return event


def status_after(event: common_pb2.ProgressEvent | None, current: int) -> int:
    """The operation's status once ``event`` happened."""
    if event is not None and event.kind in _TERMINAL_STATUS:
        return _TERMINAL_STATUS[event.kind]
    return current


class LiveOperation:
    """An active operation in memory. Created on the event loop that serves it."""

    def __init__(self, record: OperationRecord, store: Store, numbering: Numbering) -> None:
        self.id = record.id
        self.record = record
        self.status = record.status
        self.store = store
        self.numbering = numbering
        self.fanout = numbering.fanout
        self.done = asyncio.Event()
        self.task: asyncio.Task[None] | None = None
        self.submit_attempts = 0
        self.events: BackendEvents = NO_EVENTS  # the metrics' view of its transitions
        # Set once a terminal write is under way (the first attempt, then its retries).
        self._terminal: asyncio.Task[None] | bool | None = None
        self._recorder = asyncio.create_task(self._record_progress(), name=f"record-{self.id}")

    @classmethod
    def sequenced(cls, record: OperationRecord, store: Store) -> LiveOperation:
        start = record.last_event.sequence if record.last_event is not None else 0
        return cls(record, store, EventSequence(new_fanout(), start))

    @property
    def finished(self) -> bool:
        return self.done.is_set()

    def publish(self, event: common_pb2.ProgressEvent) -> None:
        """A non-terminal event (ignored once the operation finished)."""
        if not self.finished:
            self.numbering.publish(event)

    async def mark_running(self) -> bool:
        if self.status != pb.OPERATION_STATUS_PENDING:
            return self.status == pb.OPERATION_STATUS_RUNNING
        if await self.store.mark_running.aio(self.id):
            self.status = pb.OPERATION_STATUS_RUNNING
            self.events.operation_running(self.record.mode, self.record.created_us)
            return True
        return False

    async def note_running(self) -> None:
        """``mark_running`` for a run that goes on elsewhere whatever this database says (a
        host's session): a write that fails (disk full, database locked) is logged, and tried
        again at the next event, instead of ending the follow-up (and the operation with it)
        while the host trains and delivers."""
        try:
            await self.mark_running()
        except Exception as exc:
            why = "disk full" if is_disk_full(exc) else f"{type(exc).__name__}: {exc}"
            logger.warning("operation %s: cannot record RUNNING yet (%s)", self.id, why)

    async def record_until_landed(self, what: str, write: Callable[[], Awaitable[object]]) -> bool:
        """A write a run elsewhere depends on (a host's announced bundle), retried with the
        terminal backoff until it lands: True once written, False if the operation finished
        meanwhile. A full disk or a locked database delays the follow-up, never ends it (the
        host goes on training and delivering whatever this database says)."""
        wait = TERMINAL_RETRY_FIRST_S
        while not self.finished:
            try:
                await write()
                return True
            except Exception as exc:
                why = "disk full" if is_disk_full(exc) else f"{type(exc).__name__}: {exc}"
                logger.warning(
                    "operation %s: cannot record %s yet (%s); retrying in %.1f s",
                    self.id,
                    what,
                    why,
                    wait,
                )
            await asyncio.sleep(wait)
            wait = min(wait * 2, TERMINAL_RETRY_MAX_S)
        return False

    async def finish(
        self,
        status: int,
        event: common_pb2.ProgressEvent,
        *,
        error: common_pb2.ErrorDetail | None = None,
        result: common_pb2.ResultSummary | None = None,
    ) -> bool:
        """Record then publish the terminal event; False if the operation already finished."""
        if self.finished or self._terminal is not None:
            return False
        if error is not None:
            event.error.CopyFrom(error)
        if result is not None:
            event.result.CopyFrom(result)
        self.numbering.number(event)
        return await self._record_terminal(
            lambda: self.store.finish.aio(self.id, status, event, error=error, result=result),
            status,
            event,
        )

    async def finish_cancelled(self, reason: str) -> bool:
        """CANCELLED with ``reason`` (code CANCELLED)."""
        return await self.finish(
            pb.OPERATION_STATUS_CANCELLED,
            simple_event(ProgressKind.CANCELLED, f"cancelled: {reason}"),
            error=common_pb2.ErrorDetail(code="CANCELLED", message=reason),
        )

    async def finish_failed(self, code: str, message: str) -> bool:
        """FAILED with ``message`` under the gRPC status name ``code``."""
        logger.warning("operation %s failed: %s", self.id, message)
        return await self.finish(
            pb.OPERATION_STATUS_FAILED,
            simple_event(ProgressKind.FAILED, message),
            error=common_pb2.ErrorDetail(code=code, message=message),
        )

    async def complete(
        self, event: common_pb2.ProgressEvent, result: common_pb2.ResultSummary, model: ModelRecord
    ) -> bool:
        """Record the saved model and COMPLETED, then publish; False if already finished."""
        if self.finished or self._terminal is not None:
            return False
        event.result.CopyFrom(result)
        self.numbering.number(event)
        return await self._record_terminal(
            lambda: self.store.complete_with_model.aio(self.id, event, result, model),
            pb.OPERATION_STATUS_COMPLETED,
            event,
        )

    async def _record_terminal(
        self, write: Callable[[], Awaitable[bool]], status: int, event: common_pb2.ProgressEvent
    ) -> bool:
        """Write the transition; on an error, retry it in the background until it lands
        (True: recorded now or later; False: the operation had already finished)."""
        self._terminal = True  # a second finish while this one is written is refused
        attempt = asyncio.ensure_future(write())
        # Settled by the callback, also when the caller is cancelled meanwhile (a shutdown):
        # the write is never left half-known.
        attempt.add_done_callback(lambda done: self._settle(done, write, status, event))
        try:
            return await asyncio.shield(attempt)
        except Exception:
            return True  # retried in the background until it lands

    def _settle(
        self,
        attempt: asyncio.Future[bool],
        write: Callable[[], Awaitable[bool]],
        status: int,
        event: common_pb2.ProgressEvent,
    ) -> None:
        error = (
            asyncio.CancelledError("the write was cancelled")
            if attempt.cancelled()
            else attempt.exception()
        )
        if error is not None:
            self._terminal = asyncio.get_running_loop().create_task(
                self._retry_terminal(write, status, event, error), name=f"terminal-{self.id}"
            )
            return
        self._terminal = None
        if attempt.result():
            self._finished(status, event)

    async def _retry_terminal(
        self,
        write: Callable[[], Awaitable[bool]],
        status: int,
        event: common_pb2.ProgressEvent,
        error: BaseException,
    ) -> None:
        wait = TERMINAL_RETRY_FIRST_S
        state = pb.OperationStatus.Name(status).removeprefix("OPERATION_STATUS_")
        while True:
            why = "disk full" if is_disk_full(error) else f"{type(error).__name__}: {error}"
            logger.error(
                "operation %s: cannot record %s yet (%s); retrying in %.1f s",
                self.id,
                state,
                why,
                wait,
            )
            await asyncio.sleep(wait)
            wait = min(wait * 2, TERMINAL_RETRY_MAX_S)
            try:
                written = await write()
            except Exception as exc:
                error = exc
                continue
            self._terminal = None
            if written:
                logger.info("operation %s: %s recorded after all", self.id, state)
                self._finished(status, event)
            else:  # finished another way meanwhile (a restart's reconciliation)
                self.done.set()
            return

    def _finished(self, status: int, event: common_pb2.ProgressEvent) -> None:
        self.status = status
        self.done.set()
        self.events.operation_finished(self.record.mode, status, self.record.created_us)
        self.fanout.publish(event)

    async def _record_progress(self) -> None:
        _, sub = self.fanout.subscribe()
        last_write = 0.0
        async for event in sub:
            if is_terminal(event):
                return  # the transition itself recorded it
            now = time.monotonic()
            if is_droppable(event) and now - last_write < SNAPSHOT_INTERVAL_S:
                continue
            last_write = now
            try:
                self.store.save_progress(self.id, event)
            except Exception:  # a snapshot is best effort; the transitions are not
                logger.exception("operation %s: cannot snapshot progress", self.id)

    async def close(self) -> None:
        """Stop the recorder (on shutdown)."""
        self._recorder.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await self._recorder


__all__ = ["EventSequence", "LiveOperation", "Numbering", "status_after"]
