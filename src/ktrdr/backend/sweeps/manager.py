"""``Sweeps``: create, watch, read, list and cancel sweeps; resume them after a restart."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import uuid
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass

import grpc

from ktrdr.backend.auth.roles import may_act_on_any_operation
from ktrdr.backend.errors import RequestError
from ktrdr.backend.operations import Operations
from ktrdr.backend.store import now_us
from ktrdr.backend.strategies import resolve_strategy
from ktrdr.backend.sweeps.convert import sweep_to_proto
from ktrdr.backend.sweeps.runner import SweepRun, event
from ktrdr.backend.sweeps.selection_bias import selected_on_test
from ktrdr.backend.sweeps.space import SweepBounds, normalise, sample_values
from ktrdr.backend.sweeps.store import SweepRecord, SweepStore
from ktrdr.backend.sweeps.study import OptunaMissing, Studies, optuna_available
from ktrdr.security.interceptor import Identity, current_identity
from ktrdr.training.v1 import backend_pb2 as pb

logger = logging.getLogger(__name__)

# Events a slow watcher may have queued before its epoch events are dropped.
WATCH_QUEUE = 256
CANCEL_WAIT_S = 10.0


_TRIAL_KINDS = (
    pb.SWEEP_EVENT_KIND_TRIAL_STARTED,
    pb.SWEEP_EVENT_KIND_TRIAL_PRUNED,
    pb.SWEEP_EVENT_KIND_TRIAL_FINISHED,
)


def sweep_not_found(sweep_id: str) -> RequestError:
    return RequestError(
        grpc.StatusCode.NOT_FOUND,
        f"no sweep {sweep_id!r} on this backend (ListSweeps shows the known ones)",
    )


@dataclass
class _Watchers:
    queues: set[asyncio.Queue[pb.SweepEvent]]

    def publish(self, e: pb.SweepEvent) -> None:
        for queue in self.queues:
            if e.kind == pb.SWEEP_EVENT_KIND_TRIAL_EPOCH and queue.qsize() >= WATCH_QUEUE:
                continue  # a slow watcher loses epoch events, never the others
            queue.put_nowait(e)


class Sweeps:
    """Owns the sweeps of this backend process; each running sweep is one asyncio task."""

    def __init__(self, operations: Operations) -> None:
        self.operations = operations
        settings = operations.settings
        self.settings = settings
        self.store = SweepStore(operations.store.database)
        self.studies = Studies(settings.data_dir / "sweeps.db")
        self.bounds = SweepBounds(settings.sweep_max_trials, settings.sweep_max_parallelism)
        self._runs: dict[str, SweepRun] = {}
        self._watchers: dict[str, _Watchers] = {}
        # Told (sweep id, finished) when a sweep starts and when it ends (MLflow tracking).
        self.listeners: list[Callable[[str, bool], None]] = []

    # -- creating --------------------------------------------------------------------------
    async def create(self, request: pb.CreateSweepRequest) -> SweepRecord:
        if not optuna_available():
            raise RequestError(
                grpc.StatusCode.FAILED_PRECONDITION,
                "this backend has no Optuna: install the sweeps extra (pip install "
                "'ktrdr[sweeps]') on the backend's machine and restart it",
            )
        running = await self.store.count_running.aio()
        if running >= self.settings.sweep_max_running:
            raise RequestError(
                grpc.StatusCode.RESOURCE_EXHAUSTED,
                f"{running} sweeps are running (limit {self.settings.sweep_max_running}, "
                "KTRDR_BACKEND_SWEEP_MAX_RUNNING); cancel one or wait for one to end",
            )
        caller = current_identity()
        share = self.settings.sweep_max_running_per_user
        if (
            caller is not None
            and (mine := await self.store.count_running.aio(caller.name)) >= share
        ):
            raise RequestError(
                grpc.StatusCode.RESOURCE_EXHAUSTED,
                f"{caller.name} has {mine} sweeps running (limit {share} per caller, "
                "KTRDR_BACKEND_SWEEP_MAX_RUNNING_PER_USER); cancel one or wait for one to end",
            )
        normal = normalise(request, self.bounds)
        base = pb.CreateTrainingRequest(field_overrides=request.field_overrides)
        if request.WhichOneof("strategy") == "strategy_yaml":
            base.strategy_yaml = request.strategy_yaml
        elif request.WhichOneof("strategy") == "strategy_name":
            base.strategy_name = request.strategy_name
        limits = {
            "max_bytes": self.settings.max_strategy_bytes,
            "limits": self.settings.work_limits,
        }
        text, config = await asyncio.to_thread(
            resolve_strategy,
            base,
            self.settings.strategies_dir,
            **limits,  # type: ignore[arg-type]
        )
        # The space's paths and values are checked against the strategy at their extremes.
        for overrides in sample_values(normal):
            probe = pb.CreateTrainingRequest(strategy_yaml=text, field_overrides=overrides)
            try:
                await asyncio.to_thread(
                    resolve_strategy,
                    probe,
                    self.settings.strategies_dir,
                    **limits,  # type: ignore[arg-type]
                )
            except RequestError as exc:
                at = ", ".join(f"{o.path}={o.value}" for o in overrides)
                raise RequestError(
                    exc.code, f"parameters: at {at[:300]}: {exc.message}", exc.details
                ) from None
        normal.strategy_yaml = text
        del normal.field_overrides[:]
        identity = current_identity()
        record = SweepRecord(
            id=uuid.uuid4().hex,
            status=pb.SWEEP_STATUS_RUNNING,
            strategy_name=config.name,
            request=normal,
            owner=identity.name if identity is not None else "",
            owner_role=identity.role if identity is not None else "",
            created_us=now_us(),
            selected_on_test=selected_on_test(normal),
        )
        await self.store.insert_sweep.aio(record)
        self._tell(record.id, finished=False)
        logger.info(
            "sweep %s: %s, %d trials x %d over %s%s",
            record.id,
            config.name,
            normal.n_trials,
            normal.parallelism,
            ", ".join(p.path for p in normal.parameters),
            f"; selected on the test metric {normal.objective} (allowed, marked)"
            if record.selected_on_test
            else "",
        )
        self._start(record, resume=False)
        return record

    def _start(self, record: SweepRecord, *, resume: bool) -> None:
        watchers = self._watchers.setdefault(record.id, _Watchers(set()))

        def publish(e: pb.SweepEvent) -> None:
            watchers.publish(e)
            if e.kind in _TRIAL_KINDS:
                self.operations.events.trial_changed(
                    "started"
                    if e.kind == pb.SWEEP_EVENT_KIND_TRIAL_STARTED
                    else pb.TrialStatus.Name(e.trial.status).removeprefix("TRIAL_STATUS_").lower()
                )
            if e.kind == pb.SWEEP_EVENT_KIND_SWEEP_FINISHED:
                self._tell(record.id, finished=True)

        run = SweepRun(record, self.store, self.studies, self.operations, publish)
        self._runs[record.id] = run

        async def guarded() -> None:
            try:
                await run.run(resume=resume)
            finally:
                self._runs.pop(record.id, None)
                self._watchers.pop(record.id, None)

        run.task = asyncio.create_task(guarded(), name=f"sweep-{record.id}")

    @property
    def running_count(self) -> int:
        """Sweeps running in this process now."""
        return len(self._runs)

    def _tell(self, sweep_id: str, *, finished: bool) -> None:
        for listener in self.listeners:
            try:
                listener(sweep_id, finished)
            except Exception:  # a listener never stops a sweep
                logger.exception("sweep %s: a listener failed", sweep_id)

    # -- reading ---------------------------------------------------------------------------
    async def get(self, sweep_id: str) -> SweepRecord:
        record = await self.store.get_sweep.aio(sweep_id)
        if record is None:
            raise sweep_not_found(sweep_id)
        return record

    async def to_proto(self, record: SweepRecord, *, with_trials: bool = True) -> pb.Sweep:
        trials = await self.store.trials.aio(record.id)
        return sweep_to_proto(record, trials, with_trials=with_trials)

    async def annotate(self, operation: pb.Operation) -> pb.Operation:
        """The operation with its sweep and trial number, when it is a trial."""
        link = await self.store.trial_of_operation.aio(operation.operation_id)
        if link is not None:
            operation.sweep_id, operation.trial_number = link
        return operation

    async def watch(self, sweep_id: str) -> AsyncIterator[pb.SweepEvent]:
        """A snapshot first, then live events until the sweep ends."""
        record = await self.get(sweep_id)
        if sweep_id not in self._runs or record.finished:
            snapshot = event(pb.SWEEP_EVENT_KIND_SNAPSHOT)
            snapshot.sweep.CopyFrom(await self.to_proto(await self.get(sweep_id)))
            yield snapshot
            return
        queue: asyncio.Queue[pb.SweepEvent] = asyncio.Queue()
        watchers = self._watchers[sweep_id]
        watchers.queues.add(queue)
        try:
            snapshot = event(pb.SWEEP_EVENT_KIND_SNAPSHOT)
            snapshot.sweep.CopyFrom(await self.to_proto(await self.get(sweep_id)))
            yield snapshot
            if snapshot.sweep.status != pb.SWEEP_STATUS_RUNNING:
                return
            while True:
                e = await queue.get()
                if e.kind == pb.SWEEP_EVENT_KIND_SWEEP_FINISHED:
                    e.sweep.CopyFrom(await self.to_proto(await self.get(sweep_id)))
                    yield e
                    return
                yield e
        finally:
            watchers.queues.discard(queue)

    # -- cancelling ------------------------------------------------------------------------
    async def cancel(self, sweep_id: str, reason: str, identity: Identity | None) -> SweepRecord:
        record = await self.store.get_sweep.aio(sweep_id)
        mine = record is not None and identity is not None and record.owner == identity.name
        if identity is not None and not may_act_on_any_operation(identity.role) and not mine:
            raise RequestError(
                grpc.StatusCode.PERMISSION_DENIED,
                f"no sweep {sweep_id!r} of yours: role {identity.role!r} may cancel only "
                "the sweeps its token created (an admin may cancel any)",
            )
        if record is None:
            raise sweep_not_found(sweep_id)
        run = self._runs.get(sweep_id)
        if record.finished or run is None:
            name = pb.SweepStatus.Name(record.status).removeprefix("SWEEP_STATUS_")
            raise RequestError(
                grpc.StatusCode.FAILED_PRECONDITION, f"sweep {sweep_id} already ended: {name}"
            )
        if not reason:
            reason = f"sweep cancelled by {identity.name}" if identity else "sweep cancelled"
        run.cancel(reason)
        if run.task is not None:
            with contextlib.suppress(TimeoutError, asyncio.CancelledError):
                await asyncio.wait_for(asyncio.shield(run.task), CANCEL_WAIT_S)
        return await self.get(sweep_id)

    # -- start and stop --------------------------------------------------------------------
    async def resume(self) -> None:
        """Continue the sweeps a previous process left running (after operations were
        reconciled, so a trial's operation already says whether it survived)."""
        for record in await self.store.running_sweeps.aio():
            if not optuna_available():
                logger.error("sweep %s cannot resume: %s", record.id, OptunaMissing.__doc__)
                continue
            logger.info("sweep %s: resuming after a restart", record.id)
            self._start(record, resume=True)

    async def shutdown(self) -> None:
        """Stop every sweep task; sweeps stay RUNNING in the store and resume at next start."""
        tasks = [run.task for run in self._runs.values() if run.task is not None]
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        await asyncio.to_thread(self.studies.close)


__all__ = ["Sweeps", "sweep_not_found"]
