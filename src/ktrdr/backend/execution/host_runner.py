"""Host runs: drive a ``TrainingHost`` session and mirror it into the operation.

``StartTraining`` with session id = operation id and this backend's results address; the
host's events are copied into the operation (renumbered in the operation's sequence). The
host's COMPLETED is not the operation's end: the operation completes when ``SubmitResults``
has saved the model. A stream that ends without a terminal event proves nothing, so the
runner asks ``GetSession`` and re-attaches with ``WatchSession`` while the session runs,
retrying while the host is unreachable; it never guesses an outcome. A host that refuses
``StartTraining`` because it is full (RESOURCE_EXHAUSTED: its own count was ahead of the
backend's) raises ``HostFull`` so the operation goes back to the head of the host queue.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator, Callable
from typing import Any

import grpc

from ktrdr.backend.execution.mode_selector import HostConnection
from ktrdr.backend.live import LiveOperation
from ktrdr.service.convert import simple_event
from ktrdr.training.progress import ProgressKind
from ktrdr.training.v1 import backend_pb2 as pb
from ktrdr.training.v1 import common_pb2, host_pb2, host_pb2_grpc

logger = logging.getLogger(__name__)

STREAM_DEADLINE_S = 3600.0  # a stream past it is simply re-attached
UNARY_DEADLINE_S = 5.0
DELIVERY_POLL_S = 5.0
RETRY_INITIAL_S = 0.5
RETRY_MAX_S = 5.0

# Sessions still under way on the host (a Ray host's session may wait QUEUED for a node).
_RUNNING_STATES = (
    host_pb2.SESSION_STATE_QUEUED,
    host_pb2.SESSION_STATE_RUNNING,
    host_pb2.SESSION_STATE_CANCELLING,
)
_STATE_NAMES = host_pb2.SessionState


class HostFull(Exception):
    """The host refused the session for lack of a free slot; nothing was started there."""


class HostRunner:
    """Runs one operation on ``op.record.host_address``.

    ``on_training_over`` is called once when the host's training ended (its slot is free
    again), even while the model is still on its way.
    """

    def __init__(
        self,
        op: LiveOperation,
        *,
        results_address: str,
        connection: HostConnection,
        upload_credential: str = "",
        on_training_over: Callable[[], object] | None = None,
    ) -> None:
        self.op = op
        self.on_training_over = on_training_over
        self.address = op.record.host_address
        self.results_address = results_address
        self.connection = connection
        # Sent once with StartTraining; only its hash is stored in the backend.
        self.upload_credential = upload_credential
        self.channel = connection.channel(self.address)
        self.stub = host_pb2_grpc.TrainingHostStub(self.channel)
        self.host_sequence = 0  # the host's numbering: skip what a re-attach repeats
        self.training_finished = False  # the host said COMPLETED; waiting for the model
        self._delivery_error_logged = ""

    # -- entry points ----------------------------------------------------------------------
    async def start(self) -> None:
        """Start the session on the host, then follow it until the operation finishes."""
        record = self.op.record
        request = host_pb2.StartTrainingRequest(
            session_id=self.op.id,
            strategy_yaml=record.strategy_yaml,
            overrides=record.overrides,
            results_target=self.results_address,
            upload_credential=self.upload_credential,
        )
        try:
            stream = self.stub.StartTraining(request, timeout=STREAM_DEADLINE_S)
            if await self._follow(stream):
                return
        except grpc.aio.AioRpcError as exc:
            if self.host_sequence == 0 and exc.code() == grpc.StatusCode.RESOURCE_EXHAUSTED:
                raise HostFull(f"host {self.address} is full: {exc.details()}") from None
            if self.host_sequence == 0 and exc.code() != grpc.StatusCode.DEADLINE_EXCEEDED:
                await self._fail(
                    exc.code().name, f"host {self.address} refused StartTraining: {exc.details()}"
                )
                return
            logger.info(
                "operation %s: stream from %s ended: %s", self.op.id, self.address, exc.code().name
            )
        await self.reconcile()

    async def reconcile(self) -> None:
        """Find out from the host where the session stands and follow it to the end."""
        delay = RETRY_INITIAL_S
        while not self.op.finished:
            try:
                session = await self._get_session()
            except grpc.aio.AioRpcError as exc:
                if exc.code() == grpc.StatusCode.NOT_FOUND:
                    if await self._session_lost():
                        return
                else:
                    logger.warning(
                        "operation %s: host %s unreachable (%s); retrying in %.1f s",
                        self.op.id,
                        self.address,
                        exc.code().name,
                        delay,
                    )
                await asyncio.sleep(delay)
                delay = min(delay * 2, RETRY_MAX_S)
                continue
            delay = RETRY_INITIAL_S
            if session.state in _RUNNING_STATES:
                await self.op.note_running()
                try:
                    watch = self.stub.WatchSession(
                        host_pb2.WatchSessionRequest(session_id=self.op.id),
                        timeout=STREAM_DEADLINE_S,
                    )
                    if await self._follow(watch):
                        return
                except grpc.aio.AioRpcError as exc:
                    logger.info("operation %s: WatchSession ended: %s", self.op.id, exc.code().name)
                continue
            if session.last_event.kind and session.last_event.sequence > self.host_sequence:
                await self._on_terminal(session.last_event, session)
            else:
                await self._on_terminal(_session_outcome(session), session)
            return

    async def cancel(self, reason: str) -> int:
        """Ask the host to cancel; returns the host's session state (0: unknown to the host).

        Uses its own channel: the run's channel closes as soon as the host's stream reports
        the cancellation, which must not cut this call short.
        """
        channel = self.connection.channel(self.address)
        try:
            response = await host_pb2_grpc.TrainingHostStub(channel).CancelTraining(
                host_pb2.CancelTrainingRequest(session_id=self.op.id, reason=reason),
                timeout=UNARY_DEADLINE_S,
            )
        except grpc.aio.AioRpcError as exc:
            if exc.code() == grpc.StatusCode.NOT_FOUND:
                return host_pb2.SESSION_STATE_UNSPECIFIED
            raise
        finally:
            await channel.close()
        return int(response.state)

    async def close(self) -> None:
        await self.channel.close()

    # -- following a stream ----------------------------------------------------------------
    async def _follow(self, stream: AsyncIterator[Any]) -> bool:
        """Copy the stream's events; True once the operation is settled by a terminal event."""
        async for message in stream:
            event = message.event
            if event.sequence and event.sequence <= self.host_sequence:
                continue  # a re-attach repeats the latest event we already have
            self.host_sequence = max(self.host_sequence, event.sequence)
            if event.kind in (
                common_pb2.PROGRESS_KIND_COMPLETED,
                common_pb2.PROGRESS_KIND_FAILED,
                common_pb2.PROGRESS_KIND_CANCELLED,
            ):
                await self._on_terminal(event, None)
                return True
            await self.op.note_running()
            copy = common_pb2.ProgressEvent()
            copy.CopyFrom(event)
            self.op.publish(copy)
            if self.op.finished:
                return True
        return self.op.finished

    async def _on_terminal(
        self, event: common_pb2.ProgressEvent, session: host_pb2.Session | None
    ) -> None:
        self._training_over()
        if self.op.finished:
            return
        copy = common_pb2.ProgressEvent()
        copy.CopyFrom(event)
        copy.ClearField("outcome")
        if event.kind == common_pb2.PROGRESS_KIND_COMPLETED:
            self.training_finished = True
            result = event.result if event.HasField("result") else None
            if result is None and session is not None and session.HasField("result"):
                result = session.result
            if result is not None and result.bundle_sha256:
                # SubmitResults accepts only this bundle for the operation.
                sha256, size = result.bundle_sha256, result.bundle_size_bytes
                await self.op.record_until_landed(
                    "the announced bundle",
                    lambda: self.op.store.set_expected_bundle.aio(self.op.id, sha256, size),
                )
            marker = simple_event(
                ProgressKind.STEP_FINISHED,
                f"training finished on host {self.address}; waiting for the model",
                99.0,
            )
            marker.metrics.update(event.result.metrics)
            self.op.publish(marker)
            await self._await_delivery()
        elif event.kind == common_pb2.PROGRESS_KIND_CANCELLED:
            error = event.error if event.HasField("error") else _error("CANCELLED", "cancelled")
            await self.op.finish(pb.OPERATION_STATUS_CANCELLED, copy, error=error)
        else:
            error = common_pb2.ErrorDetail()
            if event.HasField("error"):
                error.CopyFrom(event.error)
            elif session is not None and session.HasField("error"):
                error.CopyFrom(session.error)
            error.message = f"host {self.address}: {error.message or 'training failed'}"
            error.code = error.code or "INTERNAL"
            await self.op.finish(pb.OPERATION_STATUS_FAILED, copy, error=error)

    async def _await_delivery(self) -> None:
        """Wait for SubmitResults to complete the operation; fail only on the host's word."""
        while not self.op.finished:
            try:
                await asyncio.wait_for(self.op.done.wait(), DELIVERY_POLL_S)
                return
            except TimeoutError:
                pass
            try:
                session = await self._get_session()
            except grpc.aio.AioRpcError as exc:
                logger.info(
                    "operation %s: GetSession while waiting for the model: %s",
                    self.op.id,
                    exc.code().name,
                )
                continue
            delivery = session.result.delivery
            if delivery.status == common_pb2.DELIVERY_STATUS_DELIVERED and not self.op.finished:
                model = delivery.model
                await self._fail(
                    "INTERNAL",
                    f"host {self.address} reports the model delivered as {model.strategy_name} "
                    f"v{model.version} at {model.path}, but this backend has no record of it",
                )
                return
            if delivery.status == common_pb2.DELIVERY_STATUS_FAILED:
                await self._fail(
                    "DATA_LOSS",
                    f"host {self.address} gave up delivering the model: {delivery.last_error}",
                )
                return
            self._show_delivery_wait(delivery)

    def _show_delivery_wait(self, delivery: common_pb2.Delivery) -> None:
        """Say on the operation (and once in the log) why the model has not arrived yet."""
        message = f"waiting for the model from host {self.address}"
        if delivery.last_error:
            message += (
                f": the host cannot deliver it yet ({delivery.last_error}); it retries until "
                "it succeeds"
            )
            if delivery.last_error != self._delivery_error_logged:
                self._delivery_error_logged = delivery.last_error
                logger.warning(
                    "operation %s: host %s cannot deliver the model yet (%d attempts): %s",
                    self.op.id,
                    self.address,
                    delivery.attempts,
                    delivery.last_error,
                )
        self.op.publish(simple_event(ProgressKind.HEARTBEAT, message, 99.0))

    def _training_over(self) -> None:
        callback, self.on_training_over = self.on_training_over, None
        if callback is not None:
            callback()

    async def _get_session(self) -> host_pb2.Session:
        """The host's current view of this operation's session (raises AioRpcError)."""
        response = await self.stub.GetSession(
            host_pb2.GetSessionRequest(session_id=self.op.id), timeout=UNARY_DEADLINE_S
        )
        return response.session

    async def _session_lost(self) -> bool:
        """The host does not know the session. True when that settles the operation."""
        if self.training_finished:
            return False  # its spool may still deliver the model: keep waiting
        await self._fail(
            "FAILED_PRECONDITION",
            f"host {self.address} has no session {self.op.id}: it never accepted the training "
            "or lost it in a restart",
        )
        return True

    async def _fail(self, code: str, message: str) -> None:
        logger.warning("operation %s failed: %s", self.op.id, message)
        await self.op.finish(
            pb.OPERATION_STATUS_FAILED,
            simple_event(ProgressKind.FAILED, message),
            error=_error(code, message),
        )


def _error(code: str, message: str) -> common_pb2.ErrorDetail:
    return common_pb2.ErrorDetail(code=code, message=message)


def _session_outcome(session: host_pb2.Session) -> common_pb2.ProgressEvent:
    """A terminal event for a finished session whose last event we lack."""
    kind = {
        host_pb2.SESSION_STATE_COMPLETED: ProgressKind.COMPLETED,
        host_pb2.SESSION_STATE_CANCELLED: ProgressKind.CANCELLED,
    }.get(session.state, ProgressKind.FAILED)
    event = simple_event(kind, f"session {_STATE_NAMES.Name(session.state).lower()} on the host")
    if session.HasField("result"):
        event.result.CopyFrom(session.result)
    elif session.HasField("error"):
        event.error.CopyFrom(session.error)
    return event
