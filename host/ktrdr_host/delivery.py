"""Delivering spooled models to the backend with ``Backend.SubmitResults``, until acknowledged.

Retry policy (one ``asyncio`` task per spooled model):

* Every attempt opens a fresh channel (so a backend that comes back is reached at once, not
  after the channel's own reconnect backoff), with the explicit message-size options and a
  deadline of ``delivery_timeout_s`` for the whole stream.
* Transient failures are retried with exponential backoff, 1 s, 2 s, 4 s, then every 8 s
  (``delivery_initial_backoff_s``, ``delivery_backoff_factor``, ``delivery_max_backoff_s``)
  for as long as the host runs; a host that starts again resends its whole spool. Transient:
  UNAVAILABLE, DEADLINE_EXCEEDED, DATA_LOSS (bytes damaged or cut on the way; the spooled copy
  is re-hashed first, and a damaged spool file is a permanent failure), ABORTED, INTERNAL,
  UNKNOWN, CANCELLED and anything else not listed below.
* Permanent refusals (the backend will give the same answer again): INVALID_ARGUMENT (invalid
  bundle or header), ALREADY_EXISTS (another bundle was already stored for the session),
  FAILED_PRECONDITION (the operation no longer waits for results), NOT_FOUND (unknown
  operation), RESOURCE_EXHAUSTED (bigger than the backend accepts), OUT_OF_RANGE,
  UNIMPLEMENTED (the target is not a backend), PERMISSION_DENIED, UNAUTHENTICATED. The delivery
  becomes FAILED and the entry moves to the spool's ``failed/`` folder: never deleted.
* The spool entry is deleted only after the backend's response (its acknowledgement).

A grpc.aio quirk (grpc/grpc#36066): when the backend refuses a client stream early (say at
the header) while chunks are still being written, the client may see ``INTERNAL: Internal error
from Core`` instead of the backend's code. For a large bundle that would hide a permanent
refusal behind retries forever, so on that error the sender sends a header-only probe (header
and an empty trailer): a backend that refuses the header answers with its real code at once;
one that accepts it answers DATA_LOSS (no chunks), and the attempt counts as transient.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import logging
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

import grpc

from ktrdr.security.channels import aio_channel
from ktrdr.security.diagnose import HOST_TO_BACKEND, explain_token, explain_unavailable
from ktrdr.service.convert import timestamp_to_proto
from ktrdr.training.result import TrainingResult
from ktrdr.training.v1 import backend_pb2, backend_pb2_grpc, common_pb2
from ktrdr.transfer import grpc_options, iter_submit_requests, send_results
from ktrdr_host.settings import HostSettings
from ktrdr_host.spool import Spool, SpoolEntry

logger = logging.getLogger(__name__)

PERMANENT_CODES = frozenset(
    {
        grpc.StatusCode.INVALID_ARGUMENT,
        grpc.StatusCode.ALREADY_EXISTS,
        grpc.StatusCode.FAILED_PRECONDITION,
        grpc.StatusCode.NOT_FOUND,
        grpc.StatusCode.RESOURCE_EXHAUSTED,
        grpc.StatusCode.OUT_OF_RANGE,
        grpc.StatusCode.UNIMPLEMENTED,
        grpc.StatusCode.PERMISSION_DENIED,
        grpc.StatusCode.UNAUTHENTICATED,
    }
)


_CORE_WRITE_ERROR = "Internal error from Core"


def is_permanent(code: grpc.StatusCode) -> bool:
    """True for refusals that a resend of the same bundle cannot change."""
    return code in PERMANENT_CODES


@dataclass
class DeliveryState:
    """Where one model's delivery stands; read by GetSession, written by the sender."""

    status: common_pb2.DeliveryStatus = common_pb2.DELIVERY_STATUS_PENDING
    attempts: int = 0
    last_error: str = ""
    last_attempt_time: datetime | None = None
    next_attempt_time: datetime | None = None
    model: common_pb2.ModelReference | None = None
    settled: asyncio.Event = field(default_factory=asyncio.Event)  # DELIVERED or FAILED

    def to_proto(self) -> common_pb2.Delivery:
        message = common_pb2.Delivery(
            status=self.status, attempts=self.attempts, last_error=self.last_error
        )
        if self.last_attempt_time is not None:
            message.last_attempt_time.CopyFrom(timestamp_to_proto(self.last_attempt_time))
        if self.next_attempt_time is not None:
            message.next_attempt_time.CopyFrom(timestamp_to_proto(self.next_attempt_time))
        if self.model is not None:
            message.model.CopyFrom(self.model)
        return message


# -- bundle summary (the SubmitResults header's BundleSummary), kept JSON-friendly in the spool
def summarize_bundle(result: TrainingResult, device: str) -> dict[str, Any]:
    """The fields of ``BundleSummary`` for a finished run, as plain JSON values."""
    meta = result.bundle.metadata
    versions = meta.get("versions", {})
    return {
        "model_type": str(meta.get("model", {}).get("type", "mlp")),
        "feature_count": len(meta.get("feature_names", [])),
        "device": device,
        "seed": meta.get("seed"),
        "duration_s": result.duration_s,
        "ktrdr_version": str(versions.get("ktrdr", "")),
        "torch_version": str(versions.get("torch", "")),
        "created_time": str(meta.get("created_at", "")),
    }


def bundle_summary_to_proto(summary: Mapping[str, Any]) -> backend_pb2.BundleSummary:
    message = backend_pb2.BundleSummary(
        model_type=str(summary.get("model_type", "")),
        feature_count=int(summary.get("feature_count", 0)),
        device=str(summary.get("device", "")),
        duration_s=float(summary.get("duration_s", 0.0)),
        ktrdr_version=str(summary.get("ktrdr_version", "")),
        torch_version=str(summary.get("torch_version", "")),
    )
    if summary.get("seed") is not None:
        message.seed = int(summary["seed"])
    created = summary.get("created_time")
    if created:
        with contextlib.suppress(ValueError):
            message.created_time.CopyFrom(timestamp_to_proto(datetime.fromisoformat(created)))
    return message


class ResultSender:
    """Sends spooled models to their backends, retrying until acknowledged or refused."""

    def __init__(self, spool: Spool, settings: HostSettings) -> None:
        self.spool = spool
        self.settings = settings
        self._tasks: dict[str, asyncio.Task[None]] = {}
        self.states: dict[str, DeliveryState] = {}

    def submit(self, entry: SpoolEntry, state: DeliveryState | None = None) -> DeliveryState:
        """Start delivering ``entry`` in the background; returns its live state."""
        running = self._tasks.get(entry.session_id)
        if running is not None and not running.done():
            return self.states[entry.session_id]
        state = state or DeliveryState()
        self.states[entry.session_id] = state
        task = asyncio.create_task(self._deliver(entry, state), name=f"deliver-{entry.session_id}")
        self._tasks[entry.session_id] = task
        task.add_done_callback(functools.partial(self._forget, entry.session_id))
        return state

    @property
    def pending_count(self) -> int:
        return sum(1 for task in self._tasks.values() if not task.done())

    async def stop(self) -> None:
        """Stop every delivery; undelivered models stay in the spool for the next start."""
        tasks = [t for t in self._tasks.values() if not t.done()]
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        if tasks:
            logger.info("%d undelivered model(s) stay in %s", len(tasks), self.spool.directory)

    def _forget(self, session_id: str, task: asyncio.Task[None]) -> None:
        if self._tasks.get(session_id) is task:
            del self._tasks[session_id]

    # -- one model ---------------------------------------------------------------------------
    async def _deliver(self, entry: SpoolEntry, state: DeliveryState) -> None:
        while True:
            state.attempts += 1
            state.last_attempt_time = datetime.now(UTC)
            state.next_attempt_time = None
            try:
                response = await self._attempt(entry)
            except grpc.aio.AioRpcError as exc:
                code, detail = exc.code(), exc.details() or ""
                if code is grpc.StatusCode.INTERNAL and detail == _CORE_WRITE_ERROR:
                    code, detail = await self._probe(entry, code, detail)
                error = await self._explain(entry, code, detail)
                if code is grpc.StatusCode.DATA_LOSS and not await asyncio.to_thread(
                    self.spool.verify, entry
                ):
                    await self._fail(entry, state, f"{error}; the spooled archive is damaged")
                    return
                if is_permanent(code):
                    await self._fail(entry, state, f"refused by {entry.results_target}: {error}")
                    return
                self._schedule_retry(entry, state, error)
            except OSError as exc:  # the spooled archive cannot be read
                await self._fail(entry, state, f"cannot read the spooled archive: {exc}")
                return
            else:
                await self._delivered(entry, state, response)
                return
            assert state.next_attempt_time is not None
            delay = (state.next_attempt_time - datetime.now(UTC)).total_seconds()
            await asyncio.sleep(max(delay, 0.0))

    async def _explain(self, entry: SpoolEntry, code: grpc.StatusCode, detail: str) -> str:
        """The attempt's error; a TLS or token mistake named with the setting to change."""
        if code is grpc.StatusCode.UNAVAILABLE:
            cause = await asyncio.to_thread(
                explain_unavailable,
                detail,
                entry.results_target,
                self.settings.backend_client_tls(),
                HOST_TO_BACKEND,
            )
            if cause is not None:
                return f"UNAVAILABLE: cannot connect: {cause}"
        if code is grpc.StatusCode.UNAUTHENTICATED:
            return f"UNAUTHENTICATED: {explain_token(detail, HOST_TO_BACKEND)}"
        return f"{code.name}: {detail}" if detail else code.name

    def _channel(self, target: str) -> grpc.aio.Channel:
        """A fresh channel to the backend: its TLS settings and the host-role token."""
        return aio_channel(
            target,
            options=grpc_options(self.settings.max_message_bytes),
            tls=self.settings.backend_client_tls(),
            token=self.settings.backend_token_source(),
        )

    async def _attempt(self, entry: SpoolEntry) -> backend_pb2.SubmitResultsResponse:
        async with self._channel(entry.results_target) as channel:
            return await send_results(
                channel,
                entry.archive,
                session_id=entry.session_id,
                strategy_name=entry.strategy_name,
                timeout_s=self.settings.delivery_timeout_s,
                metrics=entry.metrics,
                bundle=bundle_summary_to_proto(entry.bundle),
                chunk_size=self.settings.chunk_size,
                sha256=entry.sha256,
                upload_credential=entry.upload_credential,
            )

    async def _probe(
        self, entry: SpoolEntry, code: grpc.StatusCode, detail: str
    ) -> tuple[grpc.StatusCode, str]:
        """The backend's real refusal hidden behind a client-side INTERNAL, if there is one."""
        logger.info(
            "delivery of session %s: %s from the client library; probing %s for its answer",
            entry.session_id,
            code.name,
            entry.results_target,
        )
        requests = iter_submit_requests(
            entry.archive,
            session_id=entry.session_id,
            strategy_name=entry.strategy_name,
            metrics=entry.metrics,
            bundle=bundle_summary_to_proto(entry.bundle),
            chunk_size=self.settings.chunk_size,
            sha256=entry.sha256,
            upload_credential=entry.upload_credential,
        )
        try:
            header = await asyncio.to_thread(next, requests)
        finally:
            requests.close()
        probe = [
            header,
            backend_pb2.SubmitResultsRequest(trailer=backend_pb2.SubmitResultsTrailer()),
        ]
        async with self._channel(entry.results_target) as channel:
            try:
                await backend_pb2_grpc.BackendStub(channel).SubmitResults(
                    iter(probe), timeout=self.settings.delivery_timeout_s
                )
            except grpc.aio.AioRpcError as exc:
                if is_permanent(exc.code()):
                    return exc.code(), exc.details() or ""
        return code, detail

    def _schedule_retry(self, entry: SpoolEntry, state: DeliveryState, error: str) -> None:
        wait = self.settings.backoff_s(state.attempts)
        state.last_error = error
        state.next_attempt_time = datetime.now(UTC) + timedelta(seconds=wait)
        logger.warning(
            "delivery of session %s to %s failed (attempt %d: %s); retrying in %.1f s",
            entry.session_id,
            entry.results_target,
            state.attempts,
            error,
            wait,
        )

    async def _delivered(
        self, entry: SpoolEntry, state: DeliveryState, response: backend_pb2.SubmitResultsResponse
    ) -> None:
        await asyncio.to_thread(self.spool.delete, entry)
        state.status = common_pb2.DELIVERY_STATUS_DELIVERED
        state.model = response.model
        state.last_error = ""
        state.settled.set()
        logger.info(
            "delivered the model of session %s to %s after %d attempt(s): %s v%d%s",
            entry.session_id,
            entry.results_target,
            state.attempts,
            response.model.strategy_name,
            response.model.version,
            " (already stored)" if response.duplicate else "",
        )

    async def _fail(self, entry: SpoolEntry, state: DeliveryState, reason: str) -> None:
        state.status = common_pb2.DELIVERY_STATUS_FAILED
        state.last_error = reason
        state.next_attempt_time = None
        with contextlib.suppress(OSError):
            await asyncio.to_thread(self.spool.mark_failed, entry, reason)
        state.settled.set()


__all__ = [
    "PERMANENT_CODES",
    "DeliveryState",
    "ResultSender",
    "bundle_summary_to_proto",
    "is_permanent",
    "summarize_bundle",
]
