"""``SubmitResults``: receive a host's model, save it once, complete the operation.

The header is checked against the operation before any bytes are read (NOT_FOUND, the
operation's upload credential (PERMISSION_DENIED), a duplicate answered at once,
ALREADY_EXISTS, FAILED_PRECONDITION, and the size and SHA-256 the host announced when its
training completed: nothing else is decompressed or written). Streams are bounded: at most
``max_concurrent`` at once (RESOURCE_EXHAUSTED), an idle timeout between messages and a
deadline for the whole stream (DEADLINE_EXCEEDED). The transfer module then
streams the bundle to a temporary file beside the model store, bounds its size, verifies its
hash and validates it; ``ModelStorage`` saves it and the operation completes in the same
store transaction that registers the model. Saves of one operation are serialized, so a
resend racing the first delivery still yields exactly one stored copy.
"""

from __future__ import annotations

import asyncio
import hmac
import logging
import random
import shutil
import time
from collections.abc import AsyncIterable, AsyncIterator, Awaitable, Callable
from pathlib import Path

import grpc

from ktrdr.backend.conversions import model_reference, store_relative
from ktrdr.backend.errors import RequestError
from ktrdr.backend.execution.local_runner import completed_event, test_metrics
from ktrdr.backend.live import LiveOperation
from ktrdr.backend.store import ModelRecord, OperationRecord, Store, now_us
from ktrdr.backend.tracking.events import NO_EVENTS, BackendEvents
from ktrdr.errors import BundleError, StorageError
from ktrdr.security.tokens import hash_token
from ktrdr.service.convert import redact_paths, timestamp_to_proto
from ktrdr.storage import ModelBundle, ModelStorage, StoredModel
from ktrdr.training.v1 import backend_pb2 as pb
from ktrdr.training.v1 import common_pb2
from ktrdr.transfer import TransferError, receive_results
from ktrdr.transfer.framing import SubmitRequest
from ktrdr.transfer.receiver import drain
from ktrdr.transfer.refusals import refusal_metadata

logger = logging.getLogger(__name__)

_STATUS = pb.OperationStatus
# What a refused upload may still send before the refusal is answered: enough for a header
# and a few chunks, so the client reads the real status instead of a broken stream.
REFUSED_DRAIN_BYTES = 16 << 20

# Refusals that settle a delivery for good: answers about the operation itself (unknown, not
# this host's credential, already delivered, no longer waiting) or its bundle (invalid). They
# are marked final for the host; every other refusal is retried by the host.
FINAL_CODES = frozenset(
    {
        grpc.StatusCode.NOT_FOUND,
        grpc.StatusCode.PERMISSION_DENIED,
        grpc.StatusCode.ALREADY_EXISTS,
        grpc.StatusCode.FAILED_PRECONDITION,
        grpc.StatusCode.INVALID_ARGUMENT,
    }
)
# The retry hint of a refusal at the upload cap: about this long, spread so that refused hosts
# do not come back together.
BUSY_RETRY_AFTER_S = (1.0, 3.0)


class UploadsBusy(RequestError):
    """Every upload slot is taken: RESOURCE_EXHAUSTED with a retry hint."""

    def __init__(self, message: str) -> None:
        super().__init__(grpc.StatusCode.RESOURCE_EXHAUSTED, message)
        self.retry_after_s = random.uniform(*BUSY_RETRY_AFTER_S)


def refusal_trailer(exc: RequestError) -> tuple[tuple[str, str], ...]:
    """The trailing metadata that tells the host whether (and when) to try again."""
    if exc.code in FINAL_CODES:
        return refusal_metadata(final=True)
    return refusal_metadata(final=False, retry_after_s=getattr(exc, "retry_after_s", None))


Announced = Callable[[OperationRecord], Awaitable[tuple[str, int] | None]]


async def _announced_nothing(record: OperationRecord) -> tuple[str, int] | None:
    return None


async def _bounded(
    iterator: AsyncIterator[SubmitRequest], idle_s: float, deadline_s: float
) -> AsyncIterator[SubmitRequest]:
    """The stream, ended with DEADLINE_EXCEEDED when it pauses or lasts too long."""
    end = time.monotonic() + deadline_s
    while True:
        left = end - time.monotonic()
        if left <= 0:
            raise RequestError(
                grpc.StatusCode.DEADLINE_EXCEEDED,
                f"upload took longer than {deadline_s:g} s (KTRDR_BACKEND_UPLOAD_DEADLINE_S)",
            )
        wait = min(idle_s, left)
        try:
            item = await asyncio.wait_for(anext(iterator), wait)
        except StopAsyncIteration:
            return
        except TimeoutError:
            if wait < idle_s:
                message = f"upload took longer than {deadline_s:g} s (UPLOAD_DEADLINE_S)"
            else:
                message = f"upload stalled: no message for {idle_s:g} s (UPLOAD_IDLE_TIMEOUT_S)"
            raise RequestError(grpc.StatusCode.DEADLINE_EXCEEDED, message) from None
        yield item


async def _chain(
    first: SubmitRequest, rest: AsyncIterator[SubmitRequest]
) -> AsyncIterator[SubmitRequest]:
    yield first
    async for item in rest:
        yield item


class ResultsIntake:
    """The receiving end of model delivery."""

    def __init__(
        self,
        store: Store,
        storage: ModelStorage,
        *,
        incoming_dir: Path,
        max_bundle_bytes: int,
        live: Callable[[str], LiveOperation | None],
        announced: Announced = _announced_nothing,
        max_concurrent: int = 8,
        idle_timeout_s: float = 60.0,
        deadline_s: float = 1800.0,
    ) -> None:
        self.store = store
        self.storage = storage
        self.incoming_dir = incoming_dir
        self.max_bundle_bytes = max_bundle_bytes
        self._live = live
        self._announced = announced
        self.max_concurrent = max_concurrent
        self.idle_timeout_s = idle_timeout_s
        self.deadline_s = deadline_s
        self.active = 0  # streams being received now
        self.events: BackendEvents = NO_EVENTS  # the metrics' view of each stream
        self._locks: dict[str, asyncio.Lock] = {}
        incoming_dir.mkdir(parents=True, exist_ok=True)
        for stale in incoming_dir.glob(".submit-*"):  # left by a crash mid-transfer
            stale.unlink(missing_ok=True)

    async def submit(self, requests: AsyncIterable[SubmitRequest]) -> pb.SubmitResultsResponse:
        """Receive one stream. A refusal is raised only after the client's stream has been
        read to its end: gRPC Python clients that are still writing when the server ends a
        client-streaming call see INTERNAL ("execute_batch") instead of the status sent.
        """
        raw = aiter(requests)
        if self.active >= self.max_concurrent:
            await drain(raw, REFUSED_DRAIN_BYTES)
            self.events.upload_finished("refused", 0, 0.0)
            raise UploadsBusy(
                f"{self.active} uploads are being received (limit {self.max_concurrent}, "
                "KTRDR_BACKEND_MAX_CONCURRENT_UPLOADS); retry shortly"
            )
        self.active += 1
        iterator = _bounded(raw, self.idle_timeout_s, self.deadline_s)
        started, outcome, size = time.perf_counter(), "refused", 0
        try:
            response = await self._receive(iterator)
            outcome = "duplicate" if response.duplicate else "stored"
            size = 0 if response.duplicate else response.raw_size_bytes
            return response
        except RequestError as exc:
            if exc.code != grpc.StatusCode.DEADLINE_EXCEEDED:
                await self._drain(iterator)
            raise
        finally:
            self.active -= 1
            self.events.upload_finished(outcome, size, time.perf_counter() - started)

    async def _drain(self, iterator: AsyncIterator[SubmitRequest]) -> None:
        """Discard the rest of a refused stream (bounded, and by the stream's deadlines)."""
        await drain(iterator, REFUSED_DRAIN_BYTES)

    async def _receive(self, iterator: AsyncIterator[SubmitRequest]) -> pb.SubmitResultsResponse:
        first = await anext(iterator, None)
        header = None
        if isinstance(first, pb.SubmitResultsRequest) and first.WhichOneof("part") == "header":
            header = first.header
            record = await self._record(header.session_id)
            self._check_credential(record, header.upload_credential)
            if header.sha256:
                early = self._settled(record, header.sha256)
                if early is not None:
                    await self._drain(iterator)
                    return early
            self._check_header(record, header)
            await self._check_announced(record, header)
        source = _chain(first, iterator) if first is not None else iterator
        bundles: list[ModelBundle] = []

        def validate(path: Path) -> None:
            bundle = ModelBundle.from_archive(path, max_member_bytes=self.max_bundle_bytes)
            if header is not None and bundle.strategy_name != header.strategy_name:
                raise BundleError(
                    f"the bundle is for strategy {bundle.strategy_name!r}, the header says "
                    f"{header.strategy_name!r}"
                )
            bundles.append(bundle)

        try:
            received = await receive_results(
                source,
                tmp_dir=self.incoming_dir,
                max_raw_bytes=self.max_bundle_bytes,
                validate=validate,
            )
        except TransferError as exc:
            logger.warning("SubmitResults refused: %s", exc)
            raise RequestError(exc.code, exc.message) from None
        try:
            return await self._store(
                received.header, bundles[0], received.sha256, received.raw_size
            )
        finally:
            received.path.unlink(missing_ok=True)

    # -- checks ----------------------------------------------------------------------------
    async def _record(self, operation_id: str) -> OperationRecord:
        record = await self.store.get_operation.aio(operation_id)
        if record is None:
            raise RequestError(
                grpc.StatusCode.NOT_FOUND,
                f"no operation {operation_id!r} on this backend: results for an unknown "
                "session are not accepted",
            )
        return record

    def _check_credential(self, record: OperationRecord, credential: str) -> None:
        """Only the host given the operation's credential may deliver its model."""
        expected = record.upload_credential_sha256
        if expected is None:
            if not record.is_host:
                return  # a local operation: refused by _check_header, with its reason
            # Created by a backend version before upload credentials: nobody can prove to
            # be its host, so nothing is accepted for it (a queued one gets a credential
            # when it is placed).
            logger.warning("operation %s has no upload credential; upload refused", record.id)
            raise RequestError(
                grpc.StatusCode.PERMISSION_DENIED,
                f"operation {record.id} has no upload credential (created by an older backend "
                "or not yet placed on a host): no model is accepted for it; train it again",
            )
        if not hmac.compare_digest(hash_token(credential), expected):
            logger.warning("operation %s: upload with a wrong credential refused", record.id)
            raise RequestError(
                grpc.StatusCode.PERMISSION_DENIED,
                f"header.upload_credential: not the credential of operation {record.id} "
                "(only the host that runs the operation can deliver its model)",
            )

    async def _check_announced(
        self, record: OperationRecord, header: pb.SubmitResultsHeader
    ) -> None:
        """The header must describe the bundle the host announced, before any byte is read."""
        if not record.is_host:
            return
        announced = await self._announced(record)
        if announced is None:
            raise RequestError(
                grpc.StatusCode.UNAVAILABLE,
                f"operation {record.id}: its host has not announced a finished model yet; "
                "retry once the training has completed",
            )
        sha256, size = announced
        if header.sha256 != sha256 or header.raw_size_bytes != size:
            raise RequestError(
                grpc.StatusCode.PERMISSION_DENIED,
                f"operation {record.id}: the host announced a bundle of {size} bytes with "
                f"sha256 {sha256}; this upload ({header.raw_size_bytes} bytes, sha256 "
                f"{header.sha256[:64]}) is not it",
            )

    def _settled(self, record: OperationRecord, sha256: str) -> pb.SubmitResultsResponse | None:
        """The answer for an operation that already has its model; None when it has none."""
        if record.status != pb.OPERATION_STATUS_COMPLETED or record.model_version is None:
            return None
        if record.bundle_sha256 == sha256:
            logger.info("operation %s: duplicate delivery of %s answered", record.id, sha256)
            return pb.SubmitResultsResponse(
                model=common_pb2.ModelReference(
                    strategy_name=record.strategy_name,
                    version=record.model_version,
                    path=store_relative(record.model_path or ""),
                ),
                duplicate=True,
                sha256=sha256,
                raw_size_bytes=record.result.bundle_size_bytes if record.result else 0,
            )
        raise RequestError(
            grpc.StatusCode.ALREADY_EXISTS,
            f"operation {record.id} already completed with model {record.strategy_name} "
            f"v{record.model_version} (sha256 {record.bundle_sha256}); a different bundle "
            f"(sha256 {sha256}) is not accepted",
        )

    def _check_header(self, record: OperationRecord, header: pb.SubmitResultsHeader) -> None:
        if not record.is_host:
            raise RequestError(
                grpc.StatusCode.FAILED_PRECONDITION,
                f"operation {record.id} runs locally in the backend; it takes no results "
                "from a host",
            )
        if record.finished:  # pending too: after a restart the host may deliver first
            state = _STATUS.Name(record.status).removeprefix("OPERATION_STATUS_")
            why = f": {record.error.message}" if record.error and record.error.message else ""
            raise RequestError(
                grpc.StatusCode.FAILED_PRECONDITION,
                f"operation {record.id} is {state}{why}; it is not waiting for results",
            )
        if header.strategy_name and header.strategy_name != record.strategy_name:
            raise RequestError(
                grpc.StatusCode.INVALID_ARGUMENT,
                f"header.strategy_name: {header.strategy_name!r} does not match operation "
                f"{record.id}'s strategy {record.strategy_name!r}",
            )

    # -- saving ----------------------------------------------------------------------------
    def _save_once(self, bundle: ModelBundle, operation_id: str, sha256: str) -> StoredModel:
        """Save, unless a crash after an earlier save left this very bundle stored."""
        earlier = self.storage.find_by_origin(
            bundle.strategy_name, operation_id=operation_id, sha256=sha256
        )
        if earlier is not None:
            logger.info("operation %s: model already stored at %s", operation_id, earlier.path)
            return earlier
        return self.storage.save(bundle, origin={"operation_id": operation_id, "sha256": sha256})

    async def _store(
        self, header: pb.SubmitResultsHeader, bundle: ModelBundle, sha256: str, size: int
    ) -> pb.SubmitResultsResponse:
        operation_id = header.session_id
        lock = self._locks.setdefault(operation_id, asyncio.Lock())
        async with lock:
            record = await self._record(operation_id)
            settled = self._settled(record, sha256)
            if settled is not None:
                return settled
            self._check_header(record, header)
            live = self._live(operation_id)
            if live is not None:
                live.submit_attempts += 1
            try:
                stored = await asyncio.to_thread(self._save_once, bundle, operation_id, sha256)
            except StorageError as exc:  # what the bundle's metadata says cannot be stored
                raise RequestError(
                    grpc.StatusCode.INVALID_ARGUMENT, f"bundle metadata: {redact_paths(str(exc))}"
                ) from None
            model = ModelRecord(
                strategy_name=stored.strategy,
                version=stored.version,
                path=stored.reference,
                created_us=now_us(),
                operation_id=operation_id,
                sha256=sha256,
                test_metrics=test_metrics(dict(stored.metrics)),
            )
            result = common_pb2.ResultSummary(
                metrics=dict(header.metrics) or test_metrics(dict(stored.metrics)),
                device=header.bundle.device,
                duration_s=header.bundle.duration_s,
                bundle_size_bytes=size,
                bundle_sha256=sha256,
                delivery=common_pb2.Delivery(
                    status=common_pb2.DELIVERY_STATUS_DELIVERED,
                    attempts=live.submit_attempts if live is not None else 1,
                    last_attempt_time=timestamp_to_proto(),
                    model=model_reference(model),
                ),
            )
            event = completed_event(model, f"delivered by host {record.host_address}")
            if live is not None:
                done = await live.complete(event, result, model)
            else:
                event.result.CopyFrom(result)
                event.sequence = (record.last_event.sequence if record.last_event else 0) + 1
                done = await self.store.complete_with_model.aio(operation_id, event, result, model)
            if not done:  # finished meanwhile (cancelled): keep nothing
                shutil.rmtree(stored.path, ignore_errors=True)
                record = await self._record(operation_id)
                state = _STATUS.Name(record.status).removeprefix("OPERATION_STATUS_")
                raise RequestError(
                    grpc.StatusCode.FAILED_PRECONDITION,
                    f"operation {operation_id} became {state} while the model arrived; "
                    "it was not stored",
                )
            self._locks.pop(operation_id, None)
        logger.info(
            "operation %s: model %s v%d saved at %s",
            operation_id,
            model.strategy_name,
            model.version,
            stored.path,
        )
        return pb.SubmitResultsResponse(
            model=model_reference(model), duplicate=False, sha256=sha256, raw_size_bytes=size
        )
