"""Local runs: the training library's executor in a worker process (``ProcessExecutor``).

At most ``local_concurrency`` run at once; the others wait as PENDING. The bundle is saved
with ``ModelStorage`` and registered with the operation's completion in one transaction.
"""

from __future__ import annotations

import asyncio
import hashlib
import logging
from dataclasses import dataclass
from typing import TYPE_CHECKING

from ktrdr.backend.conversions import model_reference
from ktrdr.backend.live import LiveOperation
from ktrdr.backend.store import ModelRecord, now_us
from ktrdr.errors import TrainingCancelled
from ktrdr.service.convert import error_to_proto, simple_event, timestamp_to_proto
from ktrdr.service.execution import ExecutorRun
from ktrdr.storage import ModelStorage, StoredModel
from ktrdr.training.progress import ProgressKind
from ktrdr.training.v1 import backend_pb2 as pb
from ktrdr.training.v1 import common_pb2

if TYPE_CHECKING:
    from ktrdr.training.executor import TrainingResult

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class SavedModel:
    stored: StoredModel
    sha256: str
    size: int


HELD_OUT_PREFIXES = ("test_", "val_", "wf_")
PER_FOLD_PREFIX = "wf_fold_"  # each fold's number: in the result, not in the registry


def test_metrics(metrics: dict[str, object]) -> dict[str, float]:
    """The held-out numbers of a metrics summary for the model registry: the test split's
    ("test_*"), the validation split's ("val_*", what ``models list`` sorts by default) and
    the walk-forward folds' aggregates ("wf_*")."""
    return {
        k: float(v)  # type: ignore[arg-type]
        for k, v in metrics.items()
        if k.startswith(HELD_OUT_PREFIXES)
        and not k.startswith(PER_FOLD_PREFIX)
        and isinstance(v, int | float)
    }


def completed_event(model: ModelRecord, where: str) -> common_pb2.ProgressEvent:
    return simple_event(
        ProgressKind.COMPLETED,
        f"model saved as {model.strategy_name} v{model.version} ({where})",
        100.0,
    )


class LocalRunner:
    """Runs local operations, ``slots`` at a time."""

    def __init__(self, storage: ModelStorage, slots: int) -> None:
        self.storage = storage
        self._slots = asyncio.Semaphore(slots)

    def _save(self, result: TrainingResult, operation_id: str) -> SavedModel:  # worker thread
        archive = result.bundle.to_archive_bytes()
        stored = self.storage.save(result.bundle, origin={"operation_id": operation_id})
        return SavedModel(stored, hashlib.sha256(archive).hexdigest(), len(archive))

    async def run(self, op: LiveOperation, run: ExecutorRun) -> None:
        async with self._slots:
            if op.finished or not await op.mark_running():
                return  # cancelled while it waited for a slot
            run.publish(
                simple_event(
                    ProgressKind.ACCEPTED,
                    f"running locally on device {run.executor.device_request}",
                )
            )
            try:
                result = await run.run()
                saved = await asyncio.to_thread(self._save, result, op.id)
            except TrainingCancelled as exc:
                await op.finish(
                    pb.OPERATION_STATUS_CANCELLED,
                    simple_event(ProgressKind.CANCELLED, f"cancelled: {exc}", run.last_percent),
                    error=error_to_proto(exc),
                )
                return
            except Exception as exc:
                logger.warning("operation %s failed locally: %s", op.id, exc, exc_info=True)
                error = error_to_proto(exc)
                if op.record.fallback:  # the cause may be why it did not go to a host
                    error.message += f" (it ran locally because {op.record.mode_reason})"
                await op.finish(
                    pb.OPERATION_STATUS_FAILED,
                    simple_event(ProgressKind.FAILED, f"failed: {error.message}", run.last_percent),
                    error=error,
                )
                return
        stored = saved.stored
        model = ModelRecord(
            strategy_name=stored.strategy,
            version=stored.version,
            path=stored.reference,
            created_us=now_us(),
            operation_id=op.id,
            sha256=saved.sha256,
            test_metrics=test_metrics(dict(result.summary)),
        )
        summary = common_pb2.ResultSummary(
            metrics={k: float(v) for k, v in result.summary.items()},
            device=result.device,
            duration_s=result.duration_s,
            bundle_size_bytes=saved.size,
            bundle_sha256=saved.sha256,
            delivery=common_pb2.Delivery(
                status=common_pb2.DELIVERY_STATUS_DELIVERED,
                last_attempt_time=timestamp_to_proto(),
                model=model_reference(model),
            ),
        )
        if not await op.complete(completed_event(model, "local run"), summary, model):
            logger.warning("operation %s finished meanwhile; model v%d kept", op.id, model.version)
