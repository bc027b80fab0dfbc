"""Registering stored models directly (a real ModelStorage and Store), for the model RPC tests."""

from __future__ import annotations

import asyncio
import hashlib
import uuid
from collections.abc import Callable

from ktrdr.backend.store import ModelRecord, OperationRecord, now_us
from ktrdr.service.convert import simple_event
from ktrdr.storage import ModelBundle, StoredModel
from ktrdr.training.progress import ProgressKind
from ktrdr.training.v1 import backend_pb2 as pb
from ktrdr.training.v1 import common_pb2
from tests.support.backend import Backend


async def put_model(
    b: Backend,
    bundle: ModelBundle,
    *,
    owner: str = "",
    seed: int | None = None,
    accuracy: float | None = None,
    host: str = "",
    recorded: Callable[[StoredModel], str] | None = None,
) -> int:
    """``put_model_now`` in a thread: the backend's event loop (the test's) never waits."""
    return await asyncio.to_thread(
        put_model_now,
        b,
        bundle,
        owner=owner,
        seed=seed,
        accuracy=accuracy,
        host=host,
        recorded=recorded,
    )


def put_model_now(
    b: Backend,
    bundle: ModelBundle,
    *,
    owner: str = "",
    seed: int | None = None,
    accuracy: float | None = None,
    host: str = "",
    recorded: Callable[[StoredModel], str] | None = None,
) -> int:
    """Store ``bundle`` as the next version, trained by a completed operation; its version.
    ``recorded`` gives the path the registry row holds (default: store-relative, as the
    backend records it; older versions recorded other forms)."""
    app = b.app
    op_id = uuid.uuid4().hex
    overrides = common_pb2.TrainingOverrides(device="cpu")
    if seed is not None:
        overrides.seed = seed
    app.store.insert_operation(
        OperationRecord(
            id=op_id,
            status=pb.OPERATION_STATUS_PENDING,
            strategy_name=bundle.strategy_name,
            strategy_yaml="",
            overrides=overrides,
            requested_mode=pb.EXECUTION_MODE_UNSPECIFIED,
            mode=pb.EXECUTION_MODE_HOST if host else pb.EXECUTION_MODE_LOCAL,
            mode_reason="test",
            host_address=host,
            require_gpu=False,
            created_us=now_us(),
            owner=owner,
        )
    )
    app.store.mark_running(op_id)
    stored = app.storage.save(bundle, origin={"operation_id": op_id})
    archive = bundle.to_archive_bytes()
    sha = hashlib.sha256(archive).hexdigest()
    metrics = dict(stored.metrics)
    if accuracy is not None:
        metrics["test_accuracy"] = accuracy
    result = common_pb2.ResultSummary(
        metrics=metrics, device="cpu", duration_s=1.5, bundle_sha256=sha
    )
    assert app.store.complete_with_model(
        op_id,
        simple_event(ProgressKind.COMPLETED, "done"),
        result,
        ModelRecord(
            strategy_name=bundle.strategy_name,
            version=stored.version,
            path=recorded(stored) if recorded else stored.reference,
            created_us=now_us(),
            operation_id=op_id,
            sha256=sha,
            test_metrics=metrics,
        ),
    )
    return stored.version
