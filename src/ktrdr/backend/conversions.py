"""Backend records -> protobuf messages (the backend's only outbound conversion place)."""

from __future__ import annotations

from pathlib import PurePath

from google.protobuf.timestamp_pb2 import Timestamp

from ktrdr.backend.settings import BackendSettings
from ktrdr.backend.store import ModelRecord, OperationRecord, StrategyRecord
from ktrdr.errors import StorageError
from ktrdr.storage.model_storage import model_reference_parts
from ktrdr.training.v1 import backend_pb2 as pb
from ktrdr.training.v1 import common_pb2


def us_to_timestamp(us: int) -> Timestamp:
    ts = Timestamp()
    ts.FromMicroseconds(us)
    return ts


def operation_to_proto(
    record: OperationRecord, last_event: common_pb2.ProgressEvent | None = None
) -> pb.Operation:
    """``last_event`` overrides the stored snapshot (a live operation's latest event)."""
    message = pb.Operation(
        operation_id=record.id,
        status=record.status,  # type: ignore[arg-type]
        strategy_name=record.strategy_name,
        requested_mode=record.requested_mode,  # type: ignore[arg-type]
        mode=record.mode,  # type: ignore[arg-type]
        mode_reason=record.mode_reason,
        host_address=record.host_address,
        require_gpu=record.require_gpu,
        created_time=us_to_timestamp(record.created_us),
        owner=record.owner,
        fallback=record.fallback,
    )
    if record.started_us:
        message.started_time.CopyFrom(us_to_timestamp(record.started_us))
    if record.finished_us:
        message.finished_time.CopyFrom(us_to_timestamp(record.finished_us))
    last = last_event if last_event is not None else record.last_event
    if last is not None:
        message.last_event.CopyFrom(last)
    if record.error is not None:
        message.error.CopyFrom(record.error)
    if record.result is not None:
        message.result.CopyFrom(record.result)
    return message


def store_relative(path: str) -> str:
    """A model directory as a reference inside the store (``strategy/dir``), never a server
    path: the store keeps each model at ``models/{strategy}/{dir}``."""
    if not path:
        return ""
    try:
        return "/".join(model_reference_parts(path))
    except StorageError:
        return "/".join(PurePath(path).parts[-2:])


def model_reference(record: ModelRecord) -> common_pb2.ModelReference:
    return common_pb2.ModelReference(
        strategy_name=record.strategy_name,
        version=record.version,
        path=store_relative(record.path),
    )


def models_to_proto(records: list[ModelRecord]) -> pb.ListModelsResponse:
    """Registry rows (ordered by strategy, then version) grouped per strategy."""
    response = pb.ListModelsResponse()
    group: pb.StrategyModels | None = None
    for record in records:
        if group is None or group.strategy_name != record.strategy_name:
            group = response.strategies.add(strategy_name=record.strategy_name)
        group.versions.add(
            version=record.version,
            created_time=us_to_timestamp(record.created_us),
            test_metrics=record.test_metrics,
            path=store_relative(record.path),
            operation_id=record.operation_id,
        )
    return response


def strategies_to_proto(
    records: list[StrategyRecord], file_names: list[str]
) -> pb.ListStrategiesResponse:
    """Known strategies, plus never-trained files of the strategies directory, by name."""
    by_name = {r.name: r for r in records}
    for name in file_names:
        by_name.setdefault(name, StrategyRecord(name, pb.STRATEGY_STATUS_UNTRAINED, 0, ""))
    return pb.ListStrategiesResponse(
        strategies=[
            pb.StrategyInfo(
                name=r.name,
                status=r.status,  # type: ignore[arg-type]
                latest_version=r.latest_version,
                last_operation_id=r.last_operation_id,
            )
            for r in sorted(by_name.values(), key=lambda r: r.name)
        ]
    )


def config_to_proto(
    settings: BackendSettings, default_mode: int, results_address: str
) -> pb.TrainingConfig:
    return pb.TrainingConfig(
        default_mode=default_mode,  # type: ignore[arg-type]
        host_addresses=settings.host_addresses,
        results_address=results_address,
        health_check_timeout_s=settings.health_check_timeout_s,
        local_concurrency=settings.local_concurrency,
        max_bundle_bytes=settings.max_bundle_bytes,
        max_pending=settings.max_pending,
        auth_required=settings.auth_enabled,
        max_host_queue=settings.max_host_queue,
    )
