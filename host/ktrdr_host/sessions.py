"""Training sessions on the host and the registry that admits, finds and forgets them.

A ``Session`` owns one ``ExecutorRun`` in a background task that is independent of any RPC:
a dropped StartTraining stream does not stop it. It publishes ACCEPTED first and exactly one
terminal event. COMPLETED is sent once the bundle is safely in the spool, with delivery
PENDING (0 attempts); the ``ResultSender`` then delivers it, and GetSession shows the live
delivery state. A cancelled or failed session delivers nothing.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable, Iterable
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING

import grpc

from ktrdr import tracing
from ktrdr.errors import TrainingCancelled
from ktrdr.log_format import set_operation_id
from ktrdr.service.convert import error_to_proto, simple_event, timestamp_to_proto
from ktrdr.service.execution import ExecutorRun, new_fanout
from ktrdr.training.progress import ProgressKind
from ktrdr.training.result import TrainingResult
from ktrdr.training.v1 import common_pb2, host_pb2
from ktrdr.worker import ProcessExecutor, SparePool, TrainingRunner, thread_budget
from ktrdr_host.delivery import DeliveryState, ResultSender, summarize_bundle
from ktrdr_host.events import NO_EVENTS, HostEvents
from ktrdr_host.settings import HostSettings
from ktrdr_host.spool import Spool, SpoolEntry
from ktrdr_host.validation import RequestRefused, SessionSpec

if TYPE_CHECKING:
    from ktrdr_host.ray.cluster import RayCluster

logger = logging.getLogger(__name__)

ExecutorFactory = Callable[[str], TrainingRunner]  # device -> executor

ACTIVE_STATES = frozenset(
    {
        host_pb2.SESSION_STATE_QUEUED,
        host_pb2.SESSION_STATE_RUNNING,
        host_pb2.SESSION_STATE_CANCELLING,
    }
)
_TERMINAL_STATE = {
    common_pb2.PROGRESS_KIND_COMPLETED: host_pb2.SESSION_STATE_COMPLETED,
    common_pb2.PROGRESS_KIND_FAILED: host_pb2.SESSION_STATE_FAILED,
    common_pb2.PROGRESS_KIND_CANCELLED: host_pb2.SESSION_STATE_CANCELLED,
}


class Session:
    """One training session: its run, its events, its outcome and its model's delivery."""

    def __init__(
        self,
        session_id: str,
        *,
        strategy_name: str,
        device: str,
        results_target: str,
        upload_credential: str = "",
    ) -> None:
        self.session_id = session_id
        self.strategy_name = strategy_name
        self.device = device
        self.results_target = results_target
        self.upload_credential = upload_credential  # never shown by any RPC
        self.state: host_pb2.SessionState = host_pb2.SESSION_STATE_RUNNING
        self.created = datetime.now(UTC)
        self.finished: datetime | None = None
        self.fanout = new_fanout()
        self._loop = asyncio.get_running_loop()
        self.run: ExecutorRun | None = None
        self.error: common_pb2.ErrorDetail | None = None
        self.result: common_pb2.ResultSummary | None = None  # without delivery
        self.delivery: DeliveryState | None = None
        self.done = asyncio.Event()
        self.task: asyncio.Task[None] | None = None
        self.node = ""  # the Ray node it trains on (Ray mode)
        self.events: HostEvents = NO_EVENTS  # the metrics' view of its outcome
        self._sequence = 0

    # -- views ---------------------------------------------------------------------------
    @property
    def active(self) -> bool:
        return self.state in ACTIVE_STATES

    def state_after(self, event: common_pb2.ProgressEvent) -> host_pb2.SessionState:
        """The session's state as of ``event`` (for the state field of stream messages)."""
        if event.kind in _TERMINAL_STATE:
            return _TERMINAL_STATE[event.kind]
        if self.state in (host_pb2.SESSION_STATE_CANCELLING, host_pb2.SESSION_STATE_QUEUED):
            return self.state
        return host_pb2.SESSION_STATE_RUNNING

    def result_proto(self) -> common_pb2.ResultSummary | None:
        if self.result is None:
            return None
        summary = common_pb2.ResultSummary()
        summary.CopyFrom(self.result)
        if self.delivery is not None:
            summary.delivery.CopyFrom(self.delivery.to_proto())
        return summary

    def to_proto(self) -> host_pb2.Session:
        message = host_pb2.Session(
            session_id=self.session_id,
            state=self.state,
            strategy_name=self.strategy_name,
            device=self.device,
            results_target=self.results_target,
            created_time=timestamp_to_proto(self.created),
            node=self.node,
        )
        if self.finished is not None:
            message.finished_time.CopyFrom(timestamp_to_proto(self.finished))
        if self.fanout.last is not None:
            message.last_event.CopyFrom(self.fanout.last)
        if self.error is not None:
            message.error.CopyFrom(self.error)
        result = self.result_proto()
        if result is not None:
            message.result.CopyFrom(result)
        return message

    # -- running -------------------------------------------------------------------------
    def placed(self, state: str, node: str) -> None:
        """From a Ray executor's thread: the session is queued, or runs on ``node``."""
        if not self._loop.is_closed():
            self._loop.call_soon_threadsafe(self._placed, state, node)

    def _placed(self, state: str, node: str) -> None:
        if self.state in (host_pb2.SESSION_STATE_QUEUED, host_pb2.SESSION_STATE_RUNNING):
            queued = state == "queued"
            self.state = host_pb2.SESSION_STATE_QUEUED if queued else host_pb2.SESSION_STATE_RUNNING
        if node:
            self.node = node

    def publish(self, event: common_pb2.ProgressEvent) -> None:
        if self.run is not None:
            self.run.publish(event)
        else:  # a session restored from the spool has no run
            self._sequence += 1
            event.sequence = self._sequence
            self.fanout.publish(event)

    def start(
        self, run: ExecutorRun, spool: Spool, sender: ResultSender, device_label: str = ""
    ) -> None:
        """Publish ACCEPTED (naming the device) and train in the background, apart from any RPC."""
        self.run = run
        self.publish(
            simple_event(
                ProgressKind.ACCEPTED,
                f"session {self.session_id} accepted: training {self.strategy_name} "
                f"on {device_label or self.device}",
            )
        )
        self.task = asyncio.create_task(
            self._main(spool, sender), name=f"session-{self.session_id}"
        )

    async def _main(self, spool: Spool, sender: ResultSender) -> None:
        set_operation_id(self.session_id)  # the backend's operation id: on every log line
        # The session's life as a span under the StartTraining call (the task started in
        # it): the worker's spans and the delivery's go under it.
        with tracing.span("session", {"ktrdr.operation_id": self.session_id}):
            await self._train(spool, sender)

    async def _train(self, spool: Spool, sender: ResultSender) -> None:
        assert self.run is not None
        outcome = "failed"
        try:
            try:
                result = await self.run.run()
            except TrainingCancelled as exc:
                outcome = "cancelled"
                self._finish_unsuccessfully(common_pb2.PROGRESS_KIND_CANCELLED, error_to_proto(exc))
                return
            except Exception as exc:
                logger.exception("session %s failed", self.session_id)
                self._finish_unsuccessfully(common_pb2.PROGRESS_KIND_FAILED, error_to_proto(exc))
                return
            try:
                entry = await asyncio.to_thread(self._spool_result, spool, result)
            except Exception as exc:
                logger.exception("session %s: cannot spool the model", self.session_id)
                self._finish_unsuccessfully(
                    common_pb2.PROGRESS_KIND_FAILED,
                    common_pb2.ErrorDetail(
                        code=grpc.StatusCode.INTERNAL.name,
                        message=f"the model was trained but could not be written to the "
                        f"spool directory {spool.directory}: {exc}",
                    ),
                )
                return
            self._complete(entry, DeliveryState())
            outcome = "completed"
            assert self.delivery is not None
            sender.submit(entry, self.delivery)
        finally:
            self.events.session_finished(outcome)
            self.done.set()

    def _spool_result(self, spool: Spool, result: TrainingResult) -> SpoolEntry:
        metrics = {k: float(v) for k, v in result.summary.items()}
        return spool.put(
            result.bundle,
            session_id=self.session_id,
            results_target=self.results_target,
            device=self.device,
            duration_s=result.duration_s,
            metrics=metrics,
            summary=summarize_bundle(result, self.device),
            upload_credential=self.upload_credential,
        )

    def _complete(self, entry: SpoolEntry, delivery: DeliveryState) -> None:
        """Record success and publish the terminal COMPLETED event (model spooled)."""
        self.result = common_pb2.ResultSummary(
            metrics=entry.metrics,
            device=entry.device,
            duration_s=entry.duration_s,
            bundle_size_bytes=entry.size_bytes,
            bundle_sha256=entry.sha256,
        )
        self.delivery = delivery
        self.state = host_pb2.SESSION_STATE_COMPLETED
        self.finished = datetime.now(UTC)
        event = simple_event(
            ProgressKind.COMPLETED,
            f"training finished in {entry.duration_s:.1f} s; model spooled "
            f"({entry.size_bytes} bytes), delivery to {entry.results_target} pending",
            100.0,
            metrics=entry.metrics,
        )
        summary = self.result_proto()
        assert summary is not None
        event.result.CopyFrom(summary)
        self.publish(event)
        logger.info("session %s completed", self.session_id)

    def _finish_unsuccessfully(
        self, kind: common_pb2.ProgressKind, error: common_pb2.ErrorDetail
    ) -> None:
        self.error = error
        self.state = _TERMINAL_STATE[kind]
        self.finished = datetime.now(UTC)
        percent = self.run.last_percent if self.run is not None else 0.0
        event = simple_event(
            ProgressKind.CANCELLED
            if kind == common_pb2.PROGRESS_KIND_CANCELLED
            else ProgressKind.FAILED,
            error.message,
            percent,
        )
        event.error.CopyFrom(error)
        self.publish(event)
        logger.info(
            "session %s %s: %s",
            self.session_id,
            host_pb2.SessionState.Name(self.state),
            error.message,
        )

    async def cancel(self, reason: str, wait_s: float) -> host_pb2.SessionState:
        """Ask the run to stop and wait up to ``wait_s`` for it; returns the state reached."""
        if (
            self.state in (host_pb2.SESSION_STATE_RUNNING, host_pb2.SESSION_STATE_QUEUED)
            and self.run is not None
        ):
            self.state = host_pb2.SESSION_STATE_CANCELLING
            self.run.cancel(reason)
            logger.info("session %s: cancelling (%s)", self.session_id, reason)
        if self.active:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self.done.wait(), wait_s)
        return self.state

    @classmethod
    def restored(cls, entry: SpoolEntry, delivery: DeliveryState) -> Session:
        """A completed session rebuilt from its spool entry after a host restart."""
        session = cls(
            entry.session_id,
            strategy_name=entry.strategy_name,
            device=entry.device,
            results_target=entry.results_target,
            upload_credential=entry.upload_credential,
        )
        with contextlib.suppress(ValueError):
            session.created = datetime.fromisoformat(entry.created_at)
        session._complete(entry, delivery)
        session.done.set()
        return session


class SessionRegistry:
    """Admits sessions (capacity, duplicates, draining), finds them and forgets old ones."""

    def __init__(
        self,
        settings: HostSettings,
        spool: Spool,
        sender: ResultSender,
        executor_factory: ExecutorFactory | None = None,
        cluster: RayCluster | None = None,
    ) -> None:
        self.settings = settings
        self.cluster = cluster  # Ray mode: sessions train on this cluster
        self.spool = spool
        self.sender = sender
        self.executor_factory = executor_factory or (
            cluster.executor if cluster is not None else self._default_executor
        )
        self.accepting = True
        self.events: HostEvents = NO_EVENTS  # the metrics' view of sessions
        self._sessions: dict[str, Session] = {}
        # Sessions train in worker processes, each with a share of this machine's CPUs.
        self.workers = SparePool(
            thread_budget(settings.worker_threads, settings.max_sessions), settings.worker_spares
        )

    def _default_executor(self, device: str) -> TrainingRunner:
        return ProcessExecutor(
            self.settings.data_dir,
            device=device,
            max_batch_events_per_s=self.settings.max_batch_events_per_s,
            pool=self.workers,
        )

    # -- admission -----------------------------------------------------------------------
    def start(self, spec: SessionSpec, upload_credential: str = "") -> Session:
        """Admit and start a session, or raise ``RequestRefused``. No await: atomic on the loop."""
        self.prune()
        if not self.accepting:
            raise RequestRefused(
                grpc.StatusCode.UNAVAILABLE,
                "the host is shutting down and accepts no new sessions; "
                "start the training on another host or after the restart",
            )
        existing = self._sessions.get(spec.session_id)
        if existing is not None and existing.active:
            raise RequestRefused(
                grpc.StatusCode.ALREADY_EXISTS,
                f"session {spec.session_id!r} is already running on this host "
                f"(state {host_pb2.SessionState.Name(existing.state)}); "
                "use WatchSession to follow it",
            )
        if existing is not None and _delivery_pending(existing):
            raise RequestRefused(
                grpc.StatusCode.ALREADY_EXISTS,
                f"session {spec.session_id!r} completed and its model is still being delivered "
                f"to {existing.results_target}; choose a new session id",
            )
        active = self.active_count
        refusal = self.cluster.refusal(active) if self.cluster is not None else None
        if refusal is not None:
            raise RequestRefused(*refusal)
        if self.cluster is None and active >= self.settings.max_sessions:
            raise RequestRefused(
                grpc.StatusCode.RESOURCE_EXHAUSTED,
                f"the host is at capacity: {active} of {self.settings.max_sessions} session(s) "
                f"running ({', '.join(s.session_id for s in self.active_sessions)}); "
                "retry when one finishes",
            )
        device = spec.device.spec
        session = Session(
            spec.session_id,
            strategy_name=spec.config.name,
            device=device,
            results_target=spec.results_target,
            upload_credential=upload_credential,
        )
        executor = self.executor_factory(device)
        if hasattr(executor, "listener"):  # a Ray executor says when it leaves the queue
            executor.listener = session.placed
            session.state = host_pb2.SESSION_STATE_QUEUED
        run = ExecutorRun(
            executor,
            spec.config,
            fanout=session.fanout,
            strategy_yaml=spec.strategy_yaml,
            heartbeat_s=self.settings.heartbeat_interval_s,
            observe=self.events.run_observer(),
        )
        session.events = self.events
        self.events.session_started()
        self._sessions[spec.session_id] = session
        logger.info(
            "session %s: training %s on %s, results to %s",
            spec.session_id,
            spec.config.name,
            spec.device,
            spec.results_target,
        )
        session.start(run, self.spool, self.sender, f"{device} ({spec.device.name})")
        return session

    def restore(self, entries: Iterable[SpoolEntry]) -> int:
        """Sessions for the spool's entries (after a restart), each delivery restarted."""
        count = 0
        for entry in entries:
            delivery = DeliveryState()
            self._sessions[entry.session_id] = Session.restored(entry, delivery)
            self.sender.submit(entry, delivery)
            count += 1
        return count

    def adopt(self, entries: Iterable[SpoolEntry]) -> int:
        """Deliver spool entries that appeared while the host runs (``ktrdr host spool
        resend``): those of unknown sessions or of sessions whose delivery was parked. An
        entry of a session still training, spooling or delivering is left alone."""
        adopted = []
        for entry in entries:
            known = self._sessions.get(entry.session_id)
            parked = (
                known is not None
                and known.delivery is not None
                and known.delivery.status == common_pb2.DELIVERY_STATUS_FAILED
            )
            idle = not self.sender.delivering(entry.session_id)
            if (known is None or parked) and idle and entry.archive.is_file():
                adopted.append(entry)  # (is_file: not parked again a moment ago)
        for entry in adopted:
            logger.info("session %s: its model is back in the spool; delivering", entry.session_id)
        return self.restore(adopted)

    # -- lookup --------------------------------------------------------------------------
    def get(self, session_id: str) -> Session:
        self.prune()
        session = self._sessions.get(session_id)
        if session is None:
            raise RequestRefused(
                grpc.StatusCode.NOT_FOUND,
                f"no session {session_id!r} on this host (unknown, or finished more than "
                f"{self.settings.finished_session_ttl_s:.0f} s ago)",
            )
        return session

    def list_sessions(self, states: Iterable[int] = ()) -> list[Session]:
        """Kept sessions, newest first, optionally only those in ``states``."""
        self.prune()
        wanted = set(states)
        sessions = [s for s in self._sessions.values() if not wanted or s.state in wanted]
        return sorted(sessions, key=lambda s: s.created, reverse=True)

    @property
    def active_sessions(self) -> list[Session]:
        # copied in one step first: the metrics read this from their HTTP thread
        return [s for s in list(self._sessions.values()) if s.active]

    @property
    def active_count(self) -> int:
        return len(self.active_sessions)

    def prune(self) -> None:
        """Forget finished sessions older than the TTL (never one still delivering)."""
        cutoff = datetime.now(UTC) - timedelta(seconds=self.settings.finished_session_ttl_s)
        for session_id, session in list(self._sessions.items()):
            if (
                session.finished is not None
                and session.finished < cutoff
                and not _delivery_pending(session)
            ):
                del self._sessions[session_id]

    # -- shutdown ------------------------------------------------------------------------
    async def drain(self, grace_s: float, force: asyncio.Event | None = None) -> None:
        """Refuse new sessions; let running ones finish within ``grace_s``, then cancel them."""
        self.accepting = False
        running = self.active_sessions
        if not running:
            return
        logger.info(
            "draining: waiting up to %.0f s for %d running session(s)", grace_s, len(running)
        )
        waiters: list[asyncio.Future[object]] = [asyncio.ensure_future(_all_done(running))]
        if force is not None:
            waiters.append(asyncio.ensure_future(force.wait()))
        try:
            await asyncio.wait(waiters, timeout=grace_s, return_when=asyncio.FIRST_COMPLETED)
        finally:
            for waiter in waiters:
                waiter.cancel()
        left = self.active_sessions
        if left:
            logger.warning("cancelling %d session(s) still running at shutdown", len(left))
            wait_s = self.settings.cancel_wait_s + 5.0
            await asyncio.gather(*(s.cancel("the host is shutting down", wait_s) for s in left))


async def _all_done(sessions: list[Session]) -> None:
    for session in sessions:
        await session.done.wait()


def _delivery_pending(session: Session) -> bool:
    return (
        session.delivery is not None
        and session.delivery.status == common_pb2.DELIVERY_STATUS_PENDING
    )


__all__ = ["ACTIVE_STATES", "ExecutorFactory", "Session", "SessionRegistry"]
