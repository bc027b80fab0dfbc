"""Delivering spooled models to the backend with ``Backend.SubmitResults``, until acknowledged.

Retry policy (one ``asyncio`` task per spooled model): a finished model is never given up
because of a refusal that time or an operator can fix.

* Every attempt opens a fresh channel (so a backend that comes back is reached at once, not
  after the channel's own reconnect backoff), with the explicit message-size options, the
  host-role token read afresh (``BACKEND_TOKEN_FILE`` is re-read at every attempt, so a token
  rotated or fixed later is used by the next one) and a deadline of ``delivery_timeout_s``.
* Only a **final** answer ends a delivery: the backend's results intake marks it with the
  trailing metadata ``ktrdr-refusal: final`` (``ktrdr.transfer.refusals``). It is an answer
  about the operation or its bundle: NOT_FOUND (unknown operation), PERMISSION_DENIED (not this
  host's upload credential), ALREADY_EXISTS (another bundle was delivered), FAILED_PRECONDITION
  (cancelled or finished: it waits for no model), INVALID_ARGUMENT (an invalid bundle). The
  delivery becomes FAILED with the answer as its ``last_error`` (the backend shows it on the
  operation) and the entry moves to the spool's ``failed/`` folder, never deleted:
  ``ktrdr host spool list`` shows it, ``ktrdr host spool resend`` delivers it again.
  A spooled archive whose hash no longer matches is parked the same way.
* Everything else is retried for as long as the host runs, with capped exponential backoff and
  jitter (``delivery_initial_backoff_s`` x ``delivery_backoff_factor`` ^ n, capped at
  ``delivery_max_backoff_s``, each wait drawn between half and all of that): UNAVAILABLE,
  DEADLINE_EXCEEDED, RESOURCE_EXHAUSTED (the backend's upload slots are busy, or the bundle
  exceeds its limit until an operator raises it), UNAUTHENTICATED and unmarked
  PERMISSION_DENIED (a token that is missing, revoked or of the wrong role), DATA_LOSS (bytes
  damaged on the way; the spooled copy is re-hashed first), INTERNAL, UNKNOWN and the rest. A
  refusal's ``retry-after-ms`` hint (the backend's upload cap sends one) is honoured: the next
  attempt waits at least that long (at most 60 s). A host that starts again resends its spool.
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
import random
import time
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime, timedelta
from typing import Any

import grpc

from ktrdr import tracing
from ktrdr.log_format import set_operation_id
from ktrdr.security.channels import aio_channel
from ktrdr.security.diagnose import HOST_TO_BACKEND, explain_token, explain_unavailable
from ktrdr.service.convert import timestamp_to_proto
from ktrdr.training.result import TrainingResult
from ktrdr.training.v1 import backend_pb2, backend_pb2_grpc, common_pb2
from ktrdr.transfer import grpc_options, iter_submit_requests, send_results
from ktrdr.transfer.refusals import read_refusal
from ktrdr_host.events import NO_EVENTS, HostEvents
from ktrdr_host.settings import HostSettings
from ktrdr_host.spool import Spool, SpoolEntry

logger = logging.getLogger(__name__)

_CORE_WRITE_ERROR = "Internal error from Core"
# Retried like the rest, but logged as errors: only a person can fix them.
_NEEDS_AN_OPERATOR = frozenset({grpc.StatusCode.UNAUTHENTICATED, grpc.StatusCode.PERMISSION_DENIED})


@dataclass(frozen=True)
class Answer:
    """A failed attempt as the host sees it: the code, the text, and what the backend said
    about trying again (``final``: never; ``retry_after_s``: not before)."""

    code: grpc.StatusCode
    detail: str
    final: bool = False
    retry_after_s: float | None = None
    explanation: str = ""  # the likely cause, for a TLS or token mistake

    @classmethod
    def of(cls, exc: grpc.aio.AioRpcError) -> Answer:
        final, retry_after = read_refusal(exc.trailing_metadata())
        return cls(exc.code(), exc.details() or "", final, retry_after)

    @property
    def text(self) -> str:
        if self.explanation:
            return f"{self.code.name}: {self.explanation}"
        return f"{self.code.name}: {self.detail}" if self.detail else self.code.name


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
        self.events: HostEvents = NO_EVENTS  # the metrics' view of each attempt

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
        set_operation_id(entry.session_id)  # this task's log lines carry it
        # Under the session's span (the task started in it); a model resent after a restart
        # starts a trace of its own.
        with tracing.span("deliver results", {"ktrdr.operation_id": entry.session_id}):
            await self._attempts(entry, state)

    async def _attempts(self, entry: SpoolEntry, state: DeliveryState) -> None:
        while True:
            state.attempts += 1
            state.last_attempt_time = datetime.now(UTC)
            state.next_attempt_time = None
            started = time.perf_counter()
            try:
                response = await self._attempt(entry)
            except grpc.aio.AioRpcError as exc:
                seconds = time.perf_counter() - started
                answer = Answer.of(exc)
                if answer.code is grpc.StatusCode.INTERNAL and answer.detail == _CORE_WRITE_ERROR:
                    answer = await self._probe(entry, answer)
                answer = await self._explain(entry, answer)
                if answer.code is grpc.StatusCode.DATA_LOSS and not await asyncio.to_thread(
                    self.spool.verify, entry
                ):
                    self.events.upload_attempt("failed", 0, seconds)
                    await self._fail(entry, state, f"{answer.text}; the spooled archive is damaged")
                    return
                if answer.final:
                    self.events.upload_attempt("failed", 0, seconds)
                    await self._fail(
                        entry, state, f"refused by {entry.results_target}: {answer.text}"
                    )
                    return
                self.events.upload_attempt("retry", 0, seconds)
                self._schedule_retry(entry, state, answer)
            except OSError as exc:  # the spooled archive cannot be read
                self.events.upload_attempt("failed", 0, time.perf_counter() - started)
                await self._fail(entry, state, f"cannot read the spooled archive: {exc}")
                return
            else:
                sent = 0 if response.duplicate else entry.size_bytes
                self.events.upload_attempt("delivered", sent, time.perf_counter() - started)
                await self._delivered(entry, state, response)
                return
            assert state.next_attempt_time is not None
            delay = (state.next_attempt_time - datetime.now(UTC)).total_seconds()
            await asyncio.sleep(max(delay, 0.0))

    async def _explain(self, entry: SpoolEntry, answer: Answer) -> Answer:
        """The attempt's answer; a TLS or token mistake named with the setting to change."""
        if answer.code is grpc.StatusCode.UNAVAILABLE:
            cause = await asyncio.to_thread(
                explain_unavailable,
                answer.detail,
                entry.results_target,
                self.settings.backend_client_tls(),
                HOST_TO_BACKEND,
            )
            if cause is not None:
                return replace(answer, explanation=f"cannot connect: {cause}")
        if answer.code is grpc.StatusCode.UNAUTHENTICATED:
            return replace(answer, explanation=explain_token(answer.detail, HOST_TO_BACKEND))
        return answer

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

    async def _probe(self, entry: SpoolEntry, answer: Answer) -> Answer:
        """The backend's real refusal hidden behind a client-side INTERNAL, if there is one."""
        logger.info(
            "delivery of session %s: %s from the client library; probing %s for its answer",
            entry.session_id,
            answer.code.name,
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
                probed = Answer.of(exc)
                if probed.code is not grpc.StatusCode.DATA_LOSS:  # DATA_LOSS: header accepted
                    return probed
        return answer

    def retry_delay_s(self, attempts: int, hint_s: float | None = None) -> float:
        """Capped exponential backoff with jitter (half to all of it), at least ``hint_s``."""
        wait = self.settings.backoff_s(attempts) * random.uniform(0.5, 1.0)
        return max(wait, hint_s or 0.0)

    def _schedule_retry(self, entry: SpoolEntry, state: DeliveryState, answer: Answer) -> None:
        wait = self.retry_delay_s(state.attempts, answer.retry_after_s)
        state.last_error = answer.text
        state.next_attempt_time = datetime.now(UTC) + timedelta(seconds=wait)
        log = logger.error if answer.code in _NEEDS_AN_OPERATOR else logger.warning
        log(
            "delivery of session %s to %s failed (attempt %d: %s); retrying in %.1f s%s",
            entry.session_id,
            entry.results_target,
            state.attempts,
            answer.text,
            wait,
            " (fix the host's backend token: KTRDR_HOST_BACKEND_TOKEN[_FILE])"
            if answer.code in _NEEDS_AN_OPERATOR
            else "",
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
        """Park the entry (``failed/``, with the reason), then say FAILED: a spool scan never
        sees a FAILED delivery whose entry is still in the spool."""
        try:
            await asyncio.to_thread(self.spool.mark_failed, entry, reason)
        except OSError as exc:
            logger.error("session %s: cannot park the model: %s", entry.session_id, exc)
        state.status = common_pb2.DELIVERY_STATUS_FAILED
        state.last_error = reason
        state.next_attempt_time = None
        state.settled.set()

    def delivering(self, session_id: str) -> bool:
        """True while a delivery task of ``session_id`` runs."""
        task = self._tasks.get(session_id)
        return task is not None and not task.done()


__all__ = [
    "Answer",
    "DeliveryState",
    "ResultSender",
    "bundle_summary_to_proto",
    "summarize_bundle",
]
