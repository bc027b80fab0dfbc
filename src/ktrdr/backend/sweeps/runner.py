"""One sweep's task: ask Optuna for parameters, train each trial as an operation, report
its epochs to the pruner, tell Optuna the outcome; at most ``parallelism`` trials at once.

Restart (``resume=True``): trials whose operation is still active (a host run the backend
re-attached to) are followed again; trials that were training locally (the restart failed
their operation) or had no operation yet are marked INTERRUPTED, told to Optuna as failed
and replaced by new trials - they do not count towards ``n_trials``, so a restarted sweep
still ends with ``n_trials`` trials that ran to their end, and finished trials are never
repeated.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator, Callable
from typing import Any

import grpc

from ktrdr.backend.errors import RequestError
from ktrdr.backend.models.registry import ModelRegistry
from ktrdr.backend.operations import Operations
from ktrdr.backend.store import now_us
from ktrdr.backend.sweeps.convert import best_trial, trial_to_proto
from ktrdr.backend.sweeps.selection_bias import trial_tags
from ktrdr.backend.sweeps.store import TRIAL_COUNTED, SweepRecord, SweepStore, TrialRecord
from ktrdr.backend.sweeps.study import Studies
from ktrdr.security.interceptor import _CURRENT, Identity
from ktrdr.training.v1 import backend_pb2 as pb
from ktrdr.training.v1 import common_pb2

logger = logging.getLogger(__name__)

# An operation's events with its status after each (``Operations.watch``).
Watch = AsyncIterator[tuple[common_pb2.ProgressEvent, int]]

# Consecutive failed trials (none completed in between) after which a sweep gives up.
MAX_CONSECUTIVE_FAILURES = 5
# How long a trial waits before asking again when the backend's queue is full.
BUSY_RETRY_S = 1.0

Publish = Callable[[pb.SweepEvent], None]


def event(kind: int, trial: TrialRecord | None = None, message: str = "") -> pb.SweepEvent:
    e = pb.SweepEvent(kind=kind, message=message)  # type: ignore[arg-type]
    if trial is not None:
        e.trial.CopyFrom(trial_to_proto(trial))
    e.timestamp.GetCurrentTime()
    return e


class SweepRun:
    """Runs one sweep until it ends, is cancelled, or the backend stops."""

    def __init__(
        self,
        record: SweepRecord,
        store: SweepStore,
        studies: Studies,
        operations: Operations,
        publish: Publish,
    ) -> None:
        self.record = record
        self.request = record.request
        self.store = store
        self.studies = studies
        self.operations = operations
        self.publish = publish
        self.cancel_reason = ""
        self._wake = asyncio.Event()
        self._followers: dict[int, asyncio.Task[None]] = {}
        self._best: float | None = None
        self.task: asyncio.Task[None] | None = None

    # -- the loop --------------------------------------------------------------------------
    async def run(self, *, resume: bool) -> None:
        if self.record.owner:
            _CURRENT.set(Identity(self.record.owner, self.record.owner_role))
        try:
            await self.studies.open(self.record.id, self.request, create=not resume)
            if resume:
                await self._resume()
            await self._loop()
        except asyncio.CancelledError:
            for task in self._followers.values():
                task.cancel()
            await asyncio.gather(*self._followers.values(), return_exceptions=True)
            raise
        except Exception as exc:
            logger.exception("sweep %s crashed", self.record.id)
            await self._finish(pb.SWEEP_STATUS_FAILED, "INTERNAL", f"sweep stopped: {exc}")
        finally:
            self.studies.forget(self.record.id)

    async def _loop(self) -> None:
        n_trials, parallelism = self.request.n_trials, self.request.parallelism
        while True:
            # Cleared before the checks, not before the wait: a cancel that arrives while a
            # trial is being created must wake the wait below, not wait for a trial to end.
            self._wake.clear()
            if self.cancel_reason:
                await self._cancel_trials()
                await self._finish(pb.SWEEP_STATUS_CANCELLED, "CANCELLED", self.cancel_reason)
                return
            trials = await self.store.trials.aio(self.record.id)
            counted = [t for t in trials if t.status in TRIAL_COUNTED]
            if _failures_in_a_row(counted) >= MAX_CONSECUTIVE_FAILURES:
                await self._cancel_trials()
                last = counted[-1].error
                why = last.message if last is not None else "unknown"
                await self._finish(
                    pb.SWEEP_STATUS_FAILED,
                    "ABORTED",
                    f"{MAX_CONSECUTIVE_FAILURES} trials in a row failed; the last: {why}",
                )
                return
            if len(counted) >= n_trials and not self._followers:
                await self._finish(pb.SWEEP_STATUS_COMPLETED, "", "")
                return
            refused = False
            while (
                len(self._followers) < parallelism
                and len(counted) + len(self._followers) < n_trials
                and not self.cancel_reason
            ):
                if not await self._start_trial():
                    refused = True  # counted as failed: count again before asking more
                    break
            if refused:
                continue
            waiters = [asyncio.ensure_future(self._wake.wait()), *self._followers.values()]
            await asyncio.wait(waiters, return_when=asyncio.FIRST_COMPLETED)
            waiters[0].cancel()
            for number, task in list(self._followers.items()):
                if task.done():
                    del self._followers[number]
                    if not task.cancelled() and task.exception() is not None:
                        logger.error(
                            "sweep %s trial %d: %s", self.record.id, number, task.exception()
                        )

    def cancel(self, reason: str) -> None:
        self.cancel_reason = reason
        self._wake.set()

    async def _cancel_trials(self) -> None:
        """Cancel every running trial's operation at once (each cancel waits for its
        operation to stop), then wait for their followers to record the outcome."""
        reason = self.cancel_reason or "sweep stopped"

        async def cancel(operation_id: str) -> None:
            with contextlib.suppress(RequestError):
                await self.operations.cancel(operation_id, reason)

        running = [
            t.operation_id
            for t in await self.store.trials.aio(self.record.id)
            if t.status == pb.TRIAL_STATUS_RUNNING and t.operation_id
        ]
        await asyncio.gather(*(cancel(operation_id) for operation_id in running))
        await asyncio.gather(*self._followers.values(), return_exceptions=True)
        self._followers.clear()

    async def _finish(self, status: int, code: str, message: str) -> None:
        error = common_pb2.ErrorDetail(code=code, message=message) if code else None
        await self.store.finish_sweep.aio(self.record.id, status, now_us(), error)
        name = pb.SweepStatus.Name(status).removeprefix("SWEEP_STATUS_")
        logger.info("sweep %s: %s %s", self.record.id, name, message)
        self.publish(event(pb.SWEEP_EVENT_KIND_SWEEP_FINISHED, message=f"sweep {name}"))

    # -- trials ----------------------------------------------------------------------------
    async def _resume(self) -> None:
        sweep_id = self.record.id
        followed: set[int] = set()
        for trial in await self.store.trials.aio(sweep_id):
            if trial.status != pb.TRIAL_STATUS_RUNNING:
                continue
            op = await self.operations.store.get_operation.aio(trial.operation_id)
            if op is not None and not op.finished and self.operations.live(op.id) is not None:
                handle = await self.studies.handle(sweep_id, trial.number)
                self._follow(trial, handle)
                followed.add(trial.number)
            else:
                message = "backend restarted while the trial trained; a new trial replaces it"
                await self._end(trial, pb.TRIAL_STATUS_INTERRUPTED, error=("ABORTED", message))
        for number in await self.studies.running_numbers(sweep_id):
            if number not in followed:  # asked, but never recorded: a crash in between
                await self.studies.tell(sweep_id, number, "fail")
        logger.info("sweep %s resumed (%d trials followed again)", sweep_id, len(followed))

    async def _start_trial(self) -> bool:
        """Ask for a trial and create its operation; False when the backend refused it."""
        asked = await self.studies.ask(self.record.id, self.request)
        trial = TrialRecord(
            self.record.id, asked.number, pb.TRIAL_STATUS_RUNNING, asked.params, now_us()
        )
        await self.store.put_trial.aio(trial)
        request = pb.CreateTrainingRequest(
            strategy_yaml=self.request.strategy_yaml,
            execution_mode=self.request.execution_mode,
            require_gpu=self.request.require_gpu,
            field_overrides=[
                common_pb2.FieldOverride(path=p, value=v) for p, v in asked.params.items()
            ],
        )
        while True:
            try:
                op = await self.operations.create(request)
                break
            except RequestError as exc:
                busy = (grpc.StatusCode.RESOURCE_EXHAUSTED, grpc.StatusCode.UNAVAILABLE)
                if exc.code in busy and not self.cancel_reason:
                    # the queue is full, or the database locked: wait and ask again
                    await asyncio.sleep(BUSY_RETRY_S)
                    continue
                await self._end(trial, pb.TRIAL_STATUS_FAILED, error=(exc.code.name, exc.message))
                await self.studies.tell(self.record.id, trial.number, "fail")
                return False
        # Subscribed before the next await: a quick trial's epochs (its objective) are not
        # missed while the trial is recorded.
        watch = self.operations.watch(op.id)
        trial = trial.but(operation_id=op.id)
        await self.store.put_trial.aio(trial)
        # Copied to the model when it is registered (as CreateTraining's tags), so a trial
        # that ends across a restart still gets them; _tag_model covers a model registered
        # before this write.
        registry = ModelRegistry(self.operations.store)
        await registry.set_operation_tags.aio(op.id, trial_tags(self.record))
        logger.info("sweep %s trial %d: operation %s", self.record.id, trial.number, op.id)
        values = ", ".join(f"{p}={v}" for p, v in trial.params.items())
        self.publish(
            event(pb.SWEEP_EVENT_KIND_TRIAL_STARTED, trial, f"trial {trial.number}: {values}")
        )
        self._follow(trial, asked.handle, watch)
        return True

    def _follow(self, trial: TrialRecord, handle: Any, watch: Watch | None = None) -> None:
        watch = watch if watch is not None else self.operations.watch(trial.operation_id)
        self._followers[trial.number] = asyncio.create_task(
            self._watch(trial, handle, watch),
            name=f"sweep-{self.record.id}-trial-{trial.number}",
        )

    async def _watch(self, trial: TrialRecord, handle: Any, watch: Watch) -> None:
        async with contextlib.aclosing(watch) as events:  # type: ignore[type-var]
            pruned_at, trial = await self._epochs(trial, handle, events)
        op = await self.operations.get(trial.operation_id)
        if pruned_at:
            trial = trial.but(pruned_at_epoch=pruned_at)
            await self._end(trial, pb.TRIAL_STATUS_PRUNED)
            await self.studies.tell(self.record.id, trial.number, "pruned")
            return
        if op.status == pb.OPERATION_STATUS_COMPLETED and op.result is not None:
            # The objective is a result metric, else the last epoch's (e.g. "val_loss").
            metrics = {**trial.metrics, **op.result.metrics}
            value = metrics.get(self.request.objective)
            if value is None:
                known = ", ".join(sorted(metrics)) or "none"
                message = f"objective {self.request.objective!r} not in the result (has: {known})"
                await self._end(
                    trial.but(metrics=metrics), pb.TRIAL_STATUS_FAILED, ("NOT_FOUND", message)
                )
                await self.studies.tell(self.record.id, trial.number, "fail")
                return
            trial = trial.but(metrics=metrics, value=value)
            await self._tag_model(trial)
            await self._end(trial, pb.TRIAL_STATUS_COMPLETED)
            await self.studies.tell(self.record.id, trial.number, "complete", value)
            await self._maybe_best()
            return
        error = op.error or common_pb2.ErrorDetail(code="UNKNOWN", message="no error recorded")
        status = pb.TRIAL_STATUS_CANCELLED if self.cancel_reason else pb.TRIAL_STATUS_FAILED
        await self._end(trial, status, (error.code, error.message))
        await self.studies.tell(self.record.id, trial.number, "fail")

    async def _epochs(
        self, trial: TrialRecord, handle: Any, events: Any
    ) -> tuple[int, TrialRecord]:
        """Record the operation's epochs, report them to the pruner, cancel the operation
        when it says so; returns (the epoch it was pruned at or 0, the trial)."""
        metric = self.request.prune_metric
        prune = self.request.pruner == pb.SWEEP_PRUNER_MEDIAN
        async for e, _status in events:
            if e.kind != common_pb2.PROGRESS_KIND_EPOCH or not e.epoch:
                continue
            metrics = dict(e.metrics)
            trial = trial.but(last_epoch=e.epoch, metrics=metrics)
            await self.store.put_trial.aio(trial)
            epoch_event = event(pb.SWEEP_EVENT_KIND_TRIAL_EPOCH, trial)
            epoch_event.epoch = e.epoch
            epoch_event.metrics.update(metrics)
            self.publish(epoch_event)
            if metric not in metrics or self.cancel_reason:
                continue
            if await self.studies.report(handle, metrics[metric], e.epoch) and prune:
                reason = f"pruned by sweep {self.record.id} at epoch {e.epoch}"
                with contextlib.suppress(RequestError):
                    await self.operations.cancel(trial.operation_id, reason)
                return e.epoch, trial
        return 0, trial

    async def _end(
        self, trial: TrialRecord, status: int, error: tuple[str, str] | None = None
    ) -> None:
        detail = common_pb2.ErrorDetail(code=error[0], message=error[1]) if error else None
        trial = trial.but(status=status, finished_us=now_us(), error=detail)
        await self.store.put_trial.aio(trial)
        kind = (
            pb.SWEEP_EVENT_KIND_TRIAL_PRUNED
            if status == pb.TRIAL_STATUS_PRUNED
            else pb.SWEEP_EVENT_KIND_TRIAL_FINISHED
        )
        name = pb.TrialStatus.Name(status).removeprefix("TRIAL_STATUS_").lower()
        self.publish(event(kind, trial, f"trial {trial.number} {name}"))

    async def _tag_model(self, trial: TrialRecord) -> None:
        """The trial's model carries its sweep (and the mark of a test-period objective)."""
        record = await self.operations.store.get_operation.aio(trial.operation_id)
        if record is None or record.model_version is None:
            return  # not registered yet (a host's delivery): the operation's tags follow it
        try:
            await ModelRegistry(self.operations.store).change_tags.aio(
                record.strategy_name, record.model_version, trial_tags(self.record), []
            )
        except RequestError as exc:
            logger.warning(
                "sweep %s trial %d: cannot tag its model: %s",
                self.record.id,
                trial.number,
                exc.message,
            )

    async def _maybe_best(self) -> None:
        best = best_trial(self.record, await self.store.trials.aio(self.record.id))
        if best is not None and best.value != self._best:
            self._best = best.value
            await self._alias_best(best)
            self.publish(event(pb.SWEEP_EVENT_KIND_BEST, best, f"best: trial {best.number}"))

    async def _alias_best(self, best: TrialRecord) -> None:
        """Point the alias ``sweep-<id>-best`` at the best trial's model (moved as it improves)."""
        record = (
            await self.operations.store.get_operation.aio(best.operation_id)
            if best.operation_id
            else None
        )
        if record is None or record.model_version is None:
            return
        alias = best_alias(self.record.id)
        try:
            await ModelRegistry(self.operations.store).set_alias.aio(
                record.strategy_name, alias, record.model_version
            )
        except RequestError as exc:
            logger.warning("sweep %s: cannot set alias %s: %s", self.record.id, alias, exc.message)


def best_alias(sweep_id: str) -> str:
    """The model alias of a sweep's best trial (aliases are at most 40 characters)."""
    return f"sweep-{sweep_id[:12]}-best"


def _failures_in_a_row(counted: list[TrialRecord]) -> int:
    run = 0
    for trial in sorted(counted, key=lambda t: t.finished_us or 0):
        run = run + 1 if trial.status == pb.TRIAL_STATUS_FAILED else 0
    return run


__all__ = ["SweepRun"]
