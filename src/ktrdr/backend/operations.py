"""The operation lifecycle: create, run (local or host), watch, cancel, restart reconciliation.

The store is the source of truth; ``LiveOperation`` objects exist only while an operation is
active in this process. On start, operations left active by a previous process are
reconciled: host ones are followed again through the host (``GetSession``/``WatchSession``,
the model still arrives through the host's delivery retries), host ones that waited for a
host slot join the host queue again in their original order, pending local ones are queued
again, and local ones that were running are failed with "backend restarted". Host operations
(queue, placement, runners) live in ``HostOperations``.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import secrets
import uuid
from collections.abc import AsyncIterator, Callable
from pathlib import Path

import grpc

from ktrdr import tracing
from ktrdr.backend.auth.roles import may_act_on_any_operation
from ktrdr.backend.conversions import operation_to_proto
from ktrdr.backend.database import DatabaseBusy
from ktrdr.backend.errors import RequestError, not_found
from ktrdr.backend.execution.host_operations import HostOperations
from ktrdr.backend.execution.local_runner import LocalRunner
from ktrdr.backend.execution.mode_selector import (
    MODE_NAMES,
    ModeSelector,
    ModeUnavailable,
    Selection,
)
from ktrdr.backend.live import LiveOperation, status_after
from ktrdr.backend.settings import BackendSettings
from ktrdr.backend.store import OperationRecord, Store, now_us
from ktrdr.backend.strategies import resolve_strategy
from ktrdr.backend.tracking.events import NO_EVENTS, BackendEvents
from ktrdr.config import parse_strategy
from ktrdr.config.strategy import StrategyConfig
from ktrdr.errors import DeviceError
from ktrdr.log_format import operation_context, set_operation_id
from ktrdr.security.interceptor import Identity, current_identity
from ktrdr.security.tokens import hash_token
from ktrdr.service.convert import apply_overrides_from_proto, simple_event
from ktrdr.service.disk import disk_full_message, is_disk_full
from ktrdr.service.execution import ExecutorRun, new_fanout
from ktrdr.service.fanout import EventFanout, Subscription
from ktrdr.storage import ModelStorage
from ktrdr.training.device import present_everywhere, resolve_device
from ktrdr.training.progress import ProgressKind
from ktrdr.training.v1 import backend_pb2 as pb
from ktrdr.training.v1 import common_pb2
from ktrdr.worker import ProcessExecutor, SparePool, thread_budget
from ktrdr.worker.entry import TrainingRunner

# What trains a local run: (market data directory, device) -> a runner. The default trains in
# a worker process; tests inject an in-thread runner with the same events and results.
RunnerFactory = Callable[[Path, str], TrainingRunner]

logger = logging.getLogger(__name__)

CANCEL_WAIT_S = 3.0
STATUS_NAMES = pb.OperationStatus
_STATE_NAMES = {
    value: name.removeprefix("OPERATION_STATUS_").lower()
    for name, value in pb.OperationStatus.items()
}


class Operations:
    """Owns every operation of this backend process."""

    def __init__(
        self,
        settings: BackendSettings,
        store: Store,
        storage: ModelStorage,
        selector: ModeSelector,
        *,
        results_address: str,
        default_mode: int,
        runner_factory: RunnerFactory | None = None,
    ) -> None:
        self.settings = settings
        self.runner_factory = runner_factory
        self.store = store
        self.storage = storage
        self.selector = selector
        self.results_address = results_address
        self.default_mode = default_mode
        self.connection = selector.connection
        self.local = LocalRunner(storage, settings.local_concurrency)
        # Local runs train in worker processes with a share of this machine's CPUs each.
        self.workers = SparePool(
            thread_budget(settings.worker_threads, settings.local_concurrency),
            settings.worker_spares,
        )
        self._live: dict[str, LiveOperation] = {}
        # The metrics' view of the lifecycle (a no-op unless metrics are on).
        self.events: BackendEvents = NO_EVENTS
        # Called with the id of each operation that finished (tracking); must not block.
        self.finished_listeners: list[Callable[[str], None]] = []
        self._runs: dict[str, ExecutorRun] = {}
        self.hosts = HostOperations(
            store,
            selector,
            max_queue=settings.max_host_queue,
            poll_s=settings.host_queue_poll_s,
            results_address=lambda: self.results_address,
            run_local=self._run_local_instead,
        )

    # -- lookups ---------------------------------------------------------------------------
    def live(self, operation_id: str) -> LiveOperation | None:
        return self._live.get(operation_id)

    def live_states(self) -> list[tuple[str, str]]:
        """(mode, status) of every active operation, e.g. ("host", "pending"); safe from
        another thread (a copy taken in one step)."""
        ops = list(self._live.values())
        return [(MODE_NAMES.get(op.record.mode, "unknown"), _STATE_NAMES[op.status]) for op in ops]

    async def get(self, operation_id: str) -> OperationRecord:
        record = await self.store.get_operation.aio(operation_id)
        if record is None:
            raise not_found(operation_id)
        return record

    def to_proto(self, record: OperationRecord) -> pb.Operation:
        """The operation with the freshest progress (the live event beats the snapshot)."""
        live = self._live.get(record.id)
        last = record.last_event
        if live is not None and live.fanout.last is not None and not record.finished:
            last = live.fanout.last
        message = operation_to_proto(record, last)
        waiting = self.hosts.queue.status(record.id)
        if waiting is not None and not record.finished:
            message.queue_reason = waiting.reason
            message.queue_position = waiting.position
        return message

    # -- creating --------------------------------------------------------------------------
    async def create(self, request: pb.CreateTrainingRequest) -> OperationRecord:
        await self._admit()
        # Parsing is CPU work on untrusted text: off the event loop.
        text, config = await asyncio.to_thread(
            resolve_strategy,
            request,
            self.settings.strategies_dir,
            max_bytes=self.settings.max_strategy_bytes,
            limits=self.settings.work_limits,
        )
        requested = request.execution_mode
        if requested not in (pb.EXECUTION_MODE_UNSPECIFIED, *MODE_NAMES):
            raise RequestError(
                grpc.StatusCode.INVALID_ARGUMENT,
                f"execution_mode: {requested} is not AUTO, LOCAL or HOST (or unset)",
            )
        mode = requested or self.default_mode
        operation_id = uuid.uuid4().hex
        try:
            selection = await self.selector.select(
                mode,
                request.require_gpu,
                default=not requested,
                operation_id=operation_id,  # a chosen host's slot is booked for it
                waiting=len(self.hosts.queue),
            )
        except ModeUnavailable as exc:
            raise RequestError(grpc.StatusCode.FAILED_PRECONDITION, str(exc)) from None
        if selection.queued:
            self.hosts.queue.check_room()
        if selection.mode == pb.EXECUTION_MODE_LOCAL and request.overrides.device:
            await self._check_local_device(request.overrides.device, operation_id)
        accepted = simple_event(ProgressKind.ACCEPTED, f"accepted: {selection.reason}")
        accepted.sequence = 1
        identity = current_identity()
        # A fresh secret per host operation, placed or queued, from the moment it exists:
        # only the host given it can deliver (SubmitResults accepts nothing without one).
        is_host = selection.mode == pb.EXECUTION_MODE_HOST
        credential = secrets.token_urlsafe(32) if is_host else ""
        record = OperationRecord(
            id=operation_id,
            status=pb.OPERATION_STATUS_PENDING,
            strategy_name=config.name,
            strategy_yaml=text,
            overrides=request.overrides,
            requested_mode=requested,
            mode=selection.mode,
            mode_reason=selection.reason,
            host_address=selection.host_address,
            require_gpu=request.require_gpu,
            created_us=now_us(),
            last_event=accepted,
            owner=identity.name if identity is not None else "",
            upload_credential_sha256=hash_token(credential) if credential else None,
            fallback=selection.fallback,
        )
        # Recorded, then started, as one step a caller who goes away cannot split: an
        # operation whose row was written always runs.
        await asyncio.shield(self._record_and_start(record, config, credential, selection))
        return record

    async def _record_and_start(
        self,
        record: OperationRecord,
        config: StrategyConfig,
        credential: str,
        selection: Selection,
    ) -> None:
        try:
            await self.store.insert_operation.aio(record)
        except BaseException as exc:
            self.selector.ledger.release(record.id)
            if is_disk_full(exc):
                raise RequestError(
                    grpc.StatusCode.RESOURCE_EXHAUSTED,
                    disk_full_message("the backend cannot record a new operation"),
                ) from None
            raise
        self.events.operation_created(record.mode)
        with operation_context(record.id):
            logger.info("operation %s: %s, %s", record.id, config.name, selection.reason)
        if record.is_host:
            self._start_host(
                record, reattach=False, upload_credential=credential, why=selection.waits_for
            )
        else:
            self._start_local(record, config)

    def _start_local(self, record: OperationRecord, config: StrategyConfig) -> None:
        fanout = new_fanout()
        last = record.last_event
        run = self._local_run(record, config, fanout, last.sequence if last is not None else 0)
        if last is not None:
            fanout.publish(last)
        op = LiveOperation(record, self.store, run)
        self._launch(op, self.local.run(op, run))

    def _local_run(
        self,
        record: OperationRecord,
        config: StrategyConfig,
        fanout: EventFanout[common_pb2.ProgressEvent],
        sequence: int,
    ) -> ExecutorRun:
        """A local run publishing to ``fanout``, numbering its events after ``sequence``."""
        device = record.overrides.device or ("cuda" if record.require_gpu else self.settings.device)
        run = ExecutorRun(
            self._runner(device),
            config,
            fanout=fanout,
            strategy_yaml=record.strategy_yaml,
        )
        for _ in range(sequence):  # continue the operation's numbering
            run.number(common_pb2.ProgressEvent())
        self._runs[record.id] = run
        return run

    def _runner(self, device: str) -> TrainingRunner:
        if self.runner_factory is not None:
            return self.runner_factory(self.settings.market_data_dir, device)
        return ProcessExecutor(self.settings.market_data_dir, device=device, pool=self.workers)

    async def _run_local_instead(self, op: LiveOperation) -> None:
        """A queued host operation that falls back to local: same operation, same stream."""
        config = await asyncio.to_thread(_config_of, op.record)
        last = op.fanout.last
        run = self._local_run(op.record, config, op.fanout, last.sequence if last else 0)
        op.numbering = run
        await self.local.run(op, run)

    async def _check_local_device(self, device: str, operation_id: str) -> None:
        """A device this machine has (INVALID_ARGUMENT for ``cuda:99`` on a 1-GPU backend).
        ``cpu`` and ``auto`` need no check: asking the machine is a probe process that imports
        torch, seconds on a busy machine, which the first CreateTraining would wait for."""
        if present_everywhere(device):
            return
        try:
            await asyncio.to_thread(resolve_device, device)
        except DeviceError as exc:
            self.selector.ledger.release(operation_id)
            raise RequestError(
                grpc.StatusCode.INVALID_ARGUMENT, f"overrides.device: {exc} (running locally)"
            ) from None

    async def _admit(self) -> None:
        """Refuse new work while too many operations wait (RESOURCE_EXHAUSTED)."""
        pending = await self.store.count_pending.aio()
        if pending >= self.settings.max_pending:
            raise RequestError(
                grpc.StatusCode.RESOURCE_EXHAUSTED,
                f"{pending} operations are queued (limit {self.settings.max_pending}, "
                "KTRDR_BACKEND_MAX_PENDING); try again when some have started",
            )
        identity = current_identity()
        share = self.settings.max_pending_per_user
        if (
            identity is not None
            and (mine := await self.store.count_pending.aio(identity.name)) >= share
        ):
            raise RequestError(
                grpc.StatusCode.RESOURCE_EXHAUSTED,
                f"{identity.name} has {mine} operations queued (limit {share} per caller, "
                "KTRDR_BACKEND_MAX_PENDING_PER_USER); try again when some have started",
            )

    def _start_host(
        self,
        record: OperationRecord,
        *,
        reattach: bool,
        upload_credential: str = "",
        why: str = "",
    ) -> None:
        op, work = self.hosts.follow(
            record, reattach=reattach, upload_credential=upload_credential, why=why
        )
        self._launch(op, work)

    def _launch(self, op: LiveOperation, work: object) -> None:
        self._live[op.id] = op
        op.events = self.events

        # The operation's life as a span, under the CreateTraining call that started it (a
        # new trace for one taken over at start): the host's and worker's spans go under it.
        span = tracing.span(
            "operation",
            {"ktrdr.operation_id": op.id, "ktrdr.mode": "host" if op.record.is_host else "local"},
        )

        async def guarded() -> None:
            set_operation_id(op.id)  # this task's log lines (and its threads') carry it
            try:
                with span:
                    await work  # type: ignore[misc]
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                logger.exception("operation %s: runner crashed", op.id)
                code, message = "INTERNAL", f"internal error: {exc}"
                if is_disk_full(exc):  # e.g. the RUNNING write of a local run
                    code = "RESOURCE_EXHAUSTED"
                    message = disk_full_message("the backend cannot record the operation")
                elif isinstance(exc, DatabaseBusy):  # locked by another process for too long
                    code, message = "UNAVAILABLE", exc.message
                await op.finish(
                    pb.OPERATION_STATUS_FAILED,
                    simple_event(ProgressKind.FAILED, message),
                    error=common_pb2.ErrorDetail(code=code, message=message),
                )
            finally:
                await self._forget(op)

        op.task = asyncio.create_task(guarded(), name=f"operation-{op.id}")

    def _announce_finished(self, operation_id: str) -> None:
        for listener in self.finished_listeners:
            try:
                listener(operation_id)
            except Exception:
                logger.exception("operation %s: a finished-listener failed", operation_id)

    async def _forget(self, op: LiveOperation) -> None:
        if op.finished:
            self._announce_finished(op.id)
        self._live.pop(op.id, None)
        self._runs.pop(op.id, None)
        await self.hosts.forget(op.id)
        await op.close()

    async def announced_bundle(self, record: OperationRecord) -> tuple[str, int] | None:
        """The (sha256, size) of the model a host operation's host announced, or None."""
        return await self.hosts.announced_bundle(record)

    # -- watching --------------------------------------------------------------------------
    def watch(self, operation_id: str) -> AsyncIterator[tuple[common_pb2.ProgressEvent, int]]:
        """The current state first, then live events until the terminal one.

        An active operation is subscribed to here, before the caller's next ``await``: a
        caller that watches an operation it has just created (a sweep's trial) misses none of
        its events, however quickly it trains. (Subscribing after a database read let a
        one-epoch trial finish first: its epoch metrics, the sweep's objective, were missed.)
        """
        live = self._live.get(operation_id)
        if live is not None:
            last, sub = live.fanout.subscribe()
            return self._live_events(live, last, sub)
        return self._stored_state(operation_id)

    async def _live_events(
        self,
        live: LiveOperation,
        last: common_pb2.ProgressEvent | None,
        sub: Subscription[common_pb2.ProgressEvent],
    ) -> AsyncIterator[tuple[common_pb2.ProgressEvent, int]]:
        try:
            if last is not None:
                yield last, status_after(last, live.status)
            async for event in sub:
                yield event, status_after(event, live.status)
        finally:
            sub.close()

    async def _stored_state(
        self, operation_id: str
    ) -> AsyncIterator[tuple[common_pb2.ProgressEvent, int]]:
        record = await self.get(operation_id)
        if record.last_event is not None:
            yield record.last_event, record.status

    # -- cancelling ------------------------------------------------------------------------
    async def check_may_act(self, operation_id: str, identity: Identity | None) -> OperationRecord:
        """The operation, if ``identity`` may change it: admins any, others their own.

        Someone else's operation and a missing one get the same PERMISSION_DENIED, so the
        answer does not tell whether an id exists.
        """
        record = await self.store.get_operation.aio(operation_id)
        if identity is None or may_act_on_any_operation(identity.role):
            if record is None:
                raise not_found(operation_id)
            return record
        if record is None or record.owner != identity.name:
            raise RequestError(
                grpc.StatusCode.PERMISSION_DENIED,
                f"no operation {operation_id!r} of yours: role {identity.role!r} may cancel "
                "only the operations its token created (an admin may cancel any)",
            )
        return record

    async def cancel(
        self, operation_id: str, reason: str, identity: Identity | None = None
    ) -> OperationRecord:
        record = await self.check_may_act(operation_id, identity)
        if identity is not None and not reason:
            reason = f"cancelled by {identity.name}"
        reason = reason or "cancelled by request"
        live = self._live.get(operation_id)
        if record.finished or live is None:
            raise RequestError(
                grpc.StatusCode.FAILED_PRECONDITION,
                f"operation {operation_id} already finished: "
                f"{STATUS_NAMES.Name(record.status).removeprefix('OPERATION_STATUS_')}",
            )
        if live.status == pb.OPERATION_STATUS_PENDING and not record.is_host:
            await self._cancelled(live, reason)
        elif record.is_host:
            await self.hosts.cancel(live, reason)  # out of the host queue, or on its host
        else:
            run = self._runs.get(operation_id)
            if run is not None:
                run.cancel(reason)
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(live.done.wait(), CANCEL_WAIT_S)
        return await self.get(operation_id)

    async def _cancelled(self, op: LiveOperation, reason: str) -> None:
        await op.finish(
            pb.OPERATION_STATUS_CANCELLED,
            simple_event(ProgressKind.CANCELLED, f"cancelled: {reason}"),
            error=common_pb2.ErrorDetail(code="CANCELLED", message=reason),
        )

    # -- start and stop --------------------------------------------------------------------
    async def reconcile(self) -> None:
        """Take over the operations a previous process left active."""
        for record in await self.store.active_operations.aio():
            if record.is_host:
                where = record.host_address or "the host queue (no host yet)"
                logger.info("operation %s: re-attaching to %s", record.id, where)
                self._start_host(record, reattach=True)
            elif record.status == pb.OPERATION_STATUS_PENDING:
                logger.info("operation %s: queued again after a restart", record.id)
                self._start_local(record, await asyncio.to_thread(_config_of, record))
            else:
                message = "backend restarted while the operation was training locally"
                event = simple_event(ProgressKind.FAILED, message)
                event.sequence = (record.last_event.sequence if record.last_event else 0) + 1
                error = common_pb2.ErrorDetail(code="ABORTED", message=message)
                event.error.CopyFrom(error)
                finish = self.store.finish.aio
                if await finish(record.id, pb.OPERATION_STATUS_FAILED, event, error=error):
                    self.events.operation_finished(
                        record.mode, pb.OPERATION_STATUS_FAILED, record.created_us
                    )
                    self._announce_finished(record.id)
                logger.warning("operation %s: %s", record.id, message)

    async def shutdown(self) -> None:
        """Stop: local runs are cancelled and failed, host runs keep running on their host."""
        for op in list(self._live.values()):
            if not op.record.is_host and op.status == pb.OPERATION_STATUS_RUNNING:
                run = self._runs.get(op.id)
                if run is not None:
                    run.cancel("backend shutting down")
                message = "backend shut down while the operation was training locally"
                await op.finish(
                    pb.OPERATION_STATUS_FAILED,
                    simple_event(ProgressKind.FAILED, message),
                    error=common_pb2.ErrorDetail(code="ABORTED", message=message),
                )
        await self.hosts.close()  # queued operations stay PENDING: queued again at the next start
        tasks = [op.task for op in self._live.values() if op.task is not None]
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        await asyncio.to_thread(self.workers.close)


def _config_of(record: OperationRecord) -> StrategyConfig:
    return apply_overrides_from_proto(parse_strategy(record.strategy_yaml), record.overrides)
