"""A fake Backend servicer on an in-process gRPC server on loopback, for the client and CLI
tests (``fake_backend``)."""

from __future__ import annotations

import itertools
import json
import threading
from collections.abc import Iterator
from concurrent import futures
from pathlib import Path
from typing import Any

import grpc
import pytest
from grpc_health.v1 import health, health_pb2, health_pb2_grpc

from ktrdr.service.convert import timestamp_to_proto
from ktrdr.training.v1 import backend_pb2, backend_pb2_grpc, common_pb2
from tests.support.model_metadata import sample_metadata


class FakeBackend(backend_pb2_grpc.BackendServicer):
    """Runs every training instantly: a scripted event sequence, a model directory on disk."""

    def __init__(self, models_dir: Path) -> None:
        self.models_dir = models_dir
        self.ops: dict[str, backend_pb2.Operation] = {}
        self.default_mode = backend_pb2.EXECUTION_MODE_AUTO
        self.requests: list[backend_pb2.CreateTrainingRequest] = []
        self.hold = threading.Event()  # when cleared, WatchOperation blocks before the epochs
        self.hold.set()
        self._ids = itertools.count(1)
        self._lock = threading.Lock()
        # DownloadModel breaks off (UNAVAILABLE) after this many chunks, once per entry
        self.break_downloads: list[int] = []
        self.download_offsets: list[int] = []

    # -- helpers ---------------------------------------------------------------------------
    def _events(self, op: backend_pb2.Operation) -> list[common_pb2.ProgressEvent]:
        events = [
            common_pb2.ProgressEvent(
                kind=common_pb2.PROGRESS_KIND_STEP_STARTED,
                step=1,
                step_name="load data",
                total_steps=11,
                percent=1.0,
                message="loading",
            )
        ]
        for epoch in (1, 2, 3):
            events.append(
                common_pb2.ProgressEvent(
                    kind=common_pb2.PROGRESS_KIND_EPOCH,
                    step=8,
                    step_name="train",
                    total_steps=11,
                    epoch=epoch,
                    total_epochs=3,
                    percent=40 + 15 * epoch,
                    metrics={"train_loss": 1.0 / epoch, "val_accuracy": 0.5 + epoch / 20},
                )
            )
        return events

    def _finish(self, op: backend_pb2.Operation) -> None:
        path = self.models_dir / op.strategy_name / f"EURUSD_1h_v{op.operation_id[3:]}"
        path.mkdir(parents=True, exist_ok=True)
        (path / "metadata.json").write_text(json.dumps(sample_metadata()))
        (path / "weights.safetensors").write_bytes(b"fake weights")
        op.status = backend_pb2.OPERATION_STATUS_COMPLETED
        op.finished_time.CopyFrom(timestamp_to_proto())
        op.result.CopyFrom(
            common_pb2.ResultSummary(
                metrics={"test_accuracy": 0.6, "test_loss": 0.8},
                device="cpu",
                duration_s=1.5,
                delivery=common_pb2.Delivery(
                    status=common_pb2.DELIVERY_STATUS_DELIVERED,
                    model=common_pb2.ModelReference(
                        strategy_name=op.strategy_name, version=1, path=str(path)
                    ),
                ),
            )
        )
        op.last_event.CopyFrom(
            common_pb2.ProgressEvent(
                kind=common_pb2.PROGRESS_KIND_COMPLETED, percent=100, result=op.result
            )
        )

    def _get(self, operation_id: str, context: grpc.ServicerContext) -> backend_pb2.Operation:
        op = self.ops.get(operation_id)
        if op is None:
            context.abort(grpc.StatusCode.NOT_FOUND, f"no operation {operation_id!r}")
        assert op is not None
        return op

    # -- RPCs ------------------------------------------------------------------------------
    def CreateTraining(self, request: Any, context: Any) -> Any:
        self.requests.append(request)
        if "invalid" in request.strategy_yaml or request.strategy_name == "invalid":
            context.abort(grpc.StatusCode.INVALID_ARGUMENT, "model.training.epochs: must be > 0")
        if request.require_gpu:
            context.abort(grpc.StatusCode.FAILED_PRECONDITION, "no healthy host with a GPU")
        name = request.strategy_name or "fake_rsi"
        with self._lock:
            op_id = f"op-{next(self._ids)}"
        op = backend_pb2.Operation(
            operation_id=op_id,
            status=backend_pb2.OPERATION_STATUS_RUNNING,
            strategy_name=name,
            requested_mode=request.execution_mode,
            mode=backend_pb2.EXECUTION_MODE_LOCAL,
            mode_reason="fake: always local",
            created_time=timestamp_to_proto(),
        )
        self.ops[op_id] = op
        return backend_pb2.CreateTrainingResponse(operation=op)

    def WatchOperation(self, request: Any, context: Any) -> Iterator[Any]:
        op = self._get(request.operation_id, context)
        if op.status in (
            backend_pb2.OPERATION_STATUS_COMPLETED,
            backend_pb2.OPERATION_STATUS_CANCELLED,
        ):
            yield backend_pb2.WatchOperationResponse(event=op.last_event, status=op.status)
            return
        for event in self._events(op):
            yield backend_pb2.WatchOperationResponse(event=event, status=op.status)
            while not self.hold.wait(0.05):
                if op.status == backend_pb2.OPERATION_STATUS_CANCELLED:
                    yield backend_pb2.WatchOperationResponse(event=op.last_event, status=op.status)
                    return
        self._finish(op)
        yield backend_pb2.WatchOperationResponse(event=op.last_event, status=op.status)

    def GetOperation(self, request: Any, context: Any) -> Any:
        return backend_pb2.GetOperationResponse(operation=self._get(request.operation_id, context))

    def ListOperations(self, request: Any, context: Any) -> Any:
        ops = [
            op
            for op in reversed(list(self.ops.values()))
            if (not request.status or op.status == request.status)
            and (not request.strategy_name or op.strategy_name == request.strategy_name)
        ]
        start = int(request.page_token or 0)
        size = request.page_size or 50
        page = ops[start : start + size]
        token = str(start + size) if start + size < len(ops) else ""
        return backend_pb2.ListOperationsResponse(operations=page, next_page_token=token)

    def CancelOperation(self, request: Any, context: Any) -> Any:
        op = self._get(request.operation_id, context)
        if op.status == backend_pb2.OPERATION_STATUS_COMPLETED:
            context.abort(grpc.StatusCode.FAILED_PRECONDITION, "operation already completed")
        op.status = backend_pb2.OPERATION_STATUS_CANCELLED
        op.error.CopyFrom(common_pb2.ErrorDetail(code="CANCELLED", message=request.reason))
        op.last_event.CopyFrom(
            common_pb2.ProgressEvent(kind=common_pb2.PROGRESS_KIND_CANCELLED, error=op.error)
        )
        return backend_pb2.CancelOperationResponse(status=op.status, operation=op)

    def _config(self) -> backend_pb2.TrainingConfig:
        return backend_pb2.TrainingConfig(
            default_mode=self.default_mode,
            host_addresses=["127.0.0.1:1"],
            health_check_timeout_s=2.0,
            local_concurrency=1,
        )

    def GetTrainingConfig(self, request: Any, context: Any) -> Any:
        return backend_pb2.GetTrainingConfigResponse(config=self._config())

    def UpdateTrainingConfig(self, request: Any, context: Any) -> Any:
        if request.default_mode == backend_pb2.EXECUTION_MODE_UNSPECIFIED:
            context.abort(grpc.StatusCode.INVALID_ARGUMENT, "default_mode must be set")
        previous, self.default_mode = self.default_mode, request.default_mode
        return backend_pb2.UpdateTrainingConfigResponse(
            previous_default_mode=previous, default_mode=self.default_mode, config=self._config()
        )

    def ListModels(self, request: Any, context: Any) -> Any:
        groups: dict[str, list[backend_pb2.ModelVersion]] = {}
        for op in self.ops.values():
            if op.status == backend_pb2.OPERATION_STATUS_COMPLETED:
                if request.strategy_name and op.strategy_name != request.strategy_name:
                    continue
                versions = groups.setdefault(op.strategy_name, [])
                versions.append(
                    backend_pb2.ModelVersion(
                        version=len(versions) + 1,
                        created_time=op.finished_time,
                        test_metrics=op.result.metrics,
                        path=op.result.delivery.model.path,
                        operation_id=op.operation_id,
                    )
                )
        return backend_pb2.ListModelsResponse(
            strategies=[
                backend_pb2.StrategyModels(strategy_name=name, versions=versions)
                for name, versions in sorted(groups.items())
            ]
        )

    def _versions(self, strategy: str) -> list[backend_pb2.ModelVersion]:
        response = self.ListModels(backend_pb2.ListModelsRequest(strategy_name=strategy), None)
        return [v for g in response.strategies for v in g.versions]

    def _archive(self, version: backend_pb2.ModelVersion) -> tuple[Path, str]:
        import hashlib
        import tarfile

        directory = Path(version.path)
        archive = directory.parent / f".{directory.name}.tar"
        with tarfile.open(archive, "w") as tar:
            for name in ("metadata.json", "weights.safetensors"):
                tar.add(directory / name, arcname=name)
        return archive, hashlib.sha256(archive.read_bytes()).hexdigest()

    def _model(self, selector: Any, context: Any) -> backend_pb2.ModelVersion:
        versions = self._versions(selector.strategy_name)
        for v in versions:
            if v.version == (selector.version or len(versions)):
                _, v.sha256 = self._archive(v)
                v.strategy_name = selector.strategy_name
                return v
        context.abort(
            grpc.StatusCode.NOT_FOUND,
            f"{selector.strategy_name} has no version {selector.version}",
        )
        raise AssertionError

    def GetModel(self, request: Any, context: Any) -> Any:
        version = self._model(request.model, context)
        return backend_pb2.GetModelResponse(model=backend_pb2.ModelDetails(version=version))

    def DownloadModel(self, request: Any, context: Any) -> Any:
        from ktrdr.transfer import Codec
        from ktrdr.transfer.download import iter_download_responses

        version = self._model(request.model, context)
        archive, sha = self._archive(version)
        ref = common_pb2.ModelReference(
            strategy_name=version.strategy_name, version=version.version
        )
        self.download_offsets.append(request.offset)
        limit = self.break_downloads.pop(0) if self.break_downloads else None
        messages = iter_download_responses(
            archive, model=ref, sha256=sha, offset=request.offset, chunk_size=1024, codec=Codec.RAW
        )
        for i, message in enumerate(messages):
            if limit is not None and i > limit:
                context.abort(grpc.StatusCode.UNAVAILABLE, "connection lost (test)")
            yield message

    def ListStrategies(self, request: Any, context: Any) -> Any:
        return backend_pb2.ListStrategiesResponse(
            strategies=[
                backend_pb2.StrategyInfo(
                    name="fake_rsi", status=backend_pb2.STRATEGY_STATUS_TRAINED, latest_version=1
                ),
                backend_pb2.StrategyInfo(
                    name="other", status=backend_pb2.STRATEGY_STATUS_UNTRAINED
                ),
            ]
        )


@pytest.fixture
def fake_backend(tmp_path: Path) -> Iterator[tuple[str, FakeBackend]]:
    """(address, servicer) of a fake backend on a free loopback port."""
    server = grpc.server(futures.ThreadPoolExecutor(max_workers=8))
    servicer = FakeBackend(tmp_path / "models")
    backend_pb2_grpc.add_BackendServicer_to_server(servicer, server)
    health_servicer = health.HealthServicer()
    health_servicer.set("", health_pb2.HealthCheckResponse.SERVING)
    health_pb2_grpc.add_HealthServicer_to_server(health_servicer, server)
    port = server.add_insecure_port("127.0.0.1:0")
    server.start()
    try:
        yield f"127.0.0.1:{port}", servicer
    finally:
        servicer.hold.set()
        server.stop(grace=None)
