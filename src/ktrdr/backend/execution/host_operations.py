"""Host operations from request to end: queued for a slot, placed, followed on their host.

``follow`` turns a host operation's record into a live operation and the work that drives it:
a placed one is followed on its host (``HostRunner``; re-attached after a restart); one
without a host waits in the ``HostQueue`` until a slot frees up, then is placed (its host, a
fresh upload credential and the reason are stored) and followed the same way. A host that
refuses a placed operation as full sends it back to the head of the queue (at most
``MAX_HOST_REFUSALS`` times). When no host is healthy any more, a queued operation falls
back to a local run (``run_local``) and says so, or fails if it needs a GPU.

The ledger counts the operations placed on each host until their training there ended
(``HostRunner.on_training_over``) or they finished; releasing a slot wakes the queue.
"""

from __future__ import annotations

import dataclasses
import functools
import logging
import secrets
from collections.abc import Awaitable, Callable, Coroutine
from typing import Any

import grpc

from ktrdr.backend.execution.host_queue import HostQueue, Placement, Waiting
from ktrdr.backend.execution.host_runner import HostFull, HostRunner
from ktrdr.backend.execution.mode_selector import MODE_NAMES, ModeSelector, ModeUnavailable
from ktrdr.backend.live import LiveOperation
from ktrdr.backend.store import OperationRecord, Store
from ktrdr.security.tokens import hash_token
from ktrdr.service.convert import simple_event
from ktrdr.training.progress import ProgressKind
from ktrdr.training.v1 import host_pb2, host_pb2_grpc

logger = logging.getLogger(__name__)

# Times a placed operation goes back to the head of the queue because its host refused it as
# full; more means the refusal is about the request itself, and the operation fails.
MAX_HOST_REFUSALS = 5

RunLocal = Callable[[LiveOperation], Awaitable[None]]


def origin(record: OperationRecord) -> str:
    """How a reason names the requested mode: "host" or "host (the default mode)"."""
    name = MODE_NAMES.get(record.mode, "host")
    return name if record.requested_mode else f"{name} (the default mode)"


class HostOperations:
    """The host side of ``Operations``: queue, ledger and one ``HostRunner`` per operation."""

    def __init__(
        self,
        store: Store,
        selector: ModeSelector,
        *,
        max_queue: int,
        poll_s: float,
        results_address: Callable[[], str],
        run_local: RunLocal,
    ) -> None:
        self.store = store
        self.connection = selector.connection
        self.ledger = selector.ledger
        self.queue = HostQueue(selector, limit=max_queue, poll_s=poll_s)
        self.results_address = results_address
        self.run_local = run_local
        self.runners: dict[str, HostRunner] = {}

    # -- starting --------------------------------------------------------------------------
    def follow(
        self,
        record: OperationRecord,
        *,
        reattach: bool,
        upload_credential: str = "",
        why: str = "",
    ) -> tuple[LiveOperation, Coroutine[Any, Any, None]]:
        """The live operation and the work that drives it (queued first when it has no host;
        ``why`` it waits, e.g. "3 hosts busy")."""
        op = LiveOperation.sequenced(record, self.store)
        if record.last_event is not None:
            op.fanout.publish(record.last_event)
        waiting = None
        if not record.host_address:
            if reattach:
                why = "queued again after a backend restart"
            waiting = self.queue.join(op, origin=origin(record), why=why)
            reattach = False
        else:
            self.ledger.place(record.id, record.host_address)
        return op, self._drive(op, upload_credential, reattach, waiting)

    async def _drive(
        self, op: LiveOperation, credential: str, reattach: bool, waiting: Waiting | None
    ) -> None:
        while True:
            if waiting is not None:
                try:
                    placement = await waiting.placed
                except ModeUnavailable as exc:
                    await op.finish_failed("FAILED_PRECONDITION", str(exc))
                    return
                if placement is None or op.finished:
                    return  # cancelled while it waited
                credential = await self._place(op, placement, credential)
                if placement.fallback:
                    await self.run_local(op)
                    return
            runner = HostRunner(
                op,
                results_address=self.results_address(),
                connection=self.connection,
                upload_credential=credential,
                on_training_over=functools.partial(self.ledger.release, op.id),
            )
            self.runners[op.id] = runner
            try:
                await (runner.reconcile() if reattach else runner.start())
                return
            except HostFull as exc:
                self.runners.pop(op.id, None)
                await runner.close()
                self.ledger.release(op.id)
                refusals = (waiting.refusals if waiting is not None else 0) + 1
                if refusals > MAX_HOST_REFUSALS:
                    await op.finish_failed("RESOURCE_EXHAUSTED", f"{exc} ({refusals} times)")
                    return
                logger.info("operation %s: %s; back to the head of the host queue", op.id, exc)
                waiting = self.queue.join(
                    op, origin=origin(op.record), why=str(exc), refusals=refusals
                )

    async def _place(self, op: LiveOperation, placement: Placement, credential: str) -> str:
        """Record where a queued operation goes; returns the host's upload credential: the one
        minted when the operation was created, or, when this backend restarted while it was
        queued (only its hash was kept, and no host ever held it), a fresh one replacing it."""
        digest = op.record.upload_credential_sha256
        if not placement.fallback and (not credential or digest != hash_token(credential)):
            credential = secrets.token_urlsafe(32)
            digest = hash_token(credential)
        await self.store.place_operation.aio(
            op.id,
            mode=placement.mode,
            host_address=placement.host_address,
            mode_reason=placement.reason,
            upload_credential_sha256=digest,
        )
        op.record = dataclasses.replace(
            op.record,
            mode=placement.mode,
            host_address=placement.host_address,
            mode_reason=placement.reason,
            upload_credential_sha256=digest,
            fallback=placement.fallback,
        )
        logger.info("operation %s: %s", op.id, placement.reason)
        op.publish(simple_event(ProgressKind.ACCEPTED, placement.reason))
        return credential

    # -- cancelling and forgetting ---------------------------------------------------------
    async def cancel(self, op: LiveOperation, reason: str) -> None:
        """Out of the queue, or cancelled on its host; unreachable host: cancelled here."""
        runner = self.runners.get(op.id)
        if self.queue.leave(op.id) or runner is None:  # queued, or placed a moment ago
            await op.finish_cancelled(reason)
            if op.task is not None:
                op.task.cancel()
            return
        try:
            state = await runner.cancel(reason)
        except grpc.aio.AioRpcError as exc:
            await op.finish_cancelled(
                f"{reason} (host {runner.address} unreachable: {exc.code().name}; a model it "
                "delivers later is refused)",
            )
            if op.task is not None:
                op.task.cancel()
            return
        if state in (
            host_pb2.SESSION_STATE_UNSPECIFIED,
            host_pb2.SESSION_STATE_CANCELLED,
            host_pb2.SESSION_STATE_COMPLETED,
        ):
            # Cancelled, unknown to the host, or training already over: the operation ends
            # here, and a model delivered later is refused.
            await op.finish_cancelled(reason)
            if op.task is not None:
                op.task.cancel()

    async def host_lost(self, addresses: frozenset[str], kept: frozenset[str], cause: str) -> int:
        """Operations followed on ``addresses`` (except the sessions in ``kept``) fail with
        ``cause``: their host was removed from the registry or restarted without them.
        Returns how many."""
        ended = 0
        for op_id, runner in list(self.runners.items()):
            if runner.address not in addresses or op_id in kept or runner.op.finished:
                continue
            if await runner.op.finish_failed("UNAVAILABLE", cause):
                ended += 1
            if runner.op.task is not None:
                runner.op.task.cancel()
        return ended

    async def forget(self, operation_id: str) -> None:
        self.queue.leave(operation_id)
        self.ledger.release(operation_id)
        runner = self.runners.pop(operation_id, None)
        if runner is not None:
            await runner.close()

    async def close(self) -> None:
        """Stop placing (queued operations stay PENDING in the store: queued again later)."""
        await self.queue.close()

    # -- delivery --------------------------------------------------------------------------
    async def announced_bundle(self, record: OperationRecord) -> tuple[str, int] | None:
        """The (sha256, size) of the model the operation's host announced, asking the host
        (GetSession) when its terminal event has not been seen yet; None when it has none."""
        if record.expected_sha256 and record.expected_size is not None:
            return record.expected_sha256, record.expected_size
        if not record.host_address:
            return None
        channel = self.connection.channel(record.host_address)
        try:
            response = await host_pb2_grpc.TrainingHostStub(channel).GetSession(
                host_pb2.GetSessionRequest(session_id=record.id), timeout=5.0
            )
        except grpc.aio.AioRpcError as exc:
            logger.info(
                "operation %s: cannot ask host %s for its model: %s",
                record.id,
                record.host_address,
                exc.code().name,
            )
            return None
        finally:
            await channel.close()
        result = response.session.result
        if not response.session.HasField("result") or not result.bundle_sha256:
            return None
        return result.bundle_sha256, result.bundle_size_bytes


__all__ = ["MAX_HOST_REFUSALS", "HostOperations", "origin"]
