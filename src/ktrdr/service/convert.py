"""Library types <-> protobuf messages. ``to_proto`` one way, ``from_proto`` the other."""

from __future__ import annotations

import re
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

import grpc
from google.protobuf.timestamp_pb2 import Timestamp

from ktrdr.errors import (
    BundleError,
    DataError,
    DeviceError,
    StorageError,
    StrategyConfigError,
    TrainingCancelled,
    TrainingError,
    WorkerDied,
)
from ktrdr.service.disk import disk_full_message, is_disk_full
from ktrdr.training.progress import ProgressEvent, ProgressKind
from ktrdr.training.v1 import common_pb2

# The heartbeat of a run that is simply busy; any other heartbeat text says something a
# watcher should see (queued on a Ray cluster, a model the host cannot deliver yet, ...).
IDLE_HEARTBEAT = "still working"

if TYPE_CHECKING:  # clients import this module without the strategy schema (pandas, TA-Lib)
    from ktrdr.config.strategy import StrategyConfig

_KIND_TO_PROTO = {
    ProgressKind.ACCEPTED: common_pb2.PROGRESS_KIND_ACCEPTED,
    ProgressKind.STEP_STARTED: common_pb2.PROGRESS_KIND_STEP_STARTED,
    ProgressKind.STEP_FINISHED: common_pb2.PROGRESS_KIND_STEP_FINISHED,
    ProgressKind.EPOCH: common_pb2.PROGRESS_KIND_EPOCH,
    ProgressKind.BATCH: common_pb2.PROGRESS_KIND_BATCH,
    ProgressKind.HEARTBEAT: common_pb2.PROGRESS_KIND_HEARTBEAT,
    ProgressKind.COMPLETED: common_pb2.PROGRESS_KIND_COMPLETED,
    ProgressKind.FAILED: common_pb2.PROGRESS_KIND_FAILED,
    ProgressKind.CANCELLED: common_pb2.PROGRESS_KIND_CANCELLED,
}
_KIND_FROM_PROTO = {v: k for k, v in _KIND_TO_PROTO.items()}
TERMINAL_KINDS = frozenset(
    {
        common_pb2.PROGRESS_KIND_COMPLETED,
        common_pb2.PROGRESS_KIND_FAILED,
        common_pb2.PROGRESS_KIND_CANCELLED,
    }
)


# -- time ------------------------------------------------------------------------------------
def timestamp_to_proto(when: datetime | None = None) -> Timestamp:
    ts = Timestamp()
    ts.FromDatetime((when or datetime.now(UTC)).astimezone(UTC))
    return ts


def timestamp_from_proto(ts: Timestamp) -> datetime:
    return ts.ToDatetime(tzinfo=UTC)


# -- progress events -------------------------------------------------------------------------
def event_to_proto(event: ProgressEvent, sequence: int = 0) -> common_pb2.ProgressEvent:
    """A library progress event as the wire message (outcome fields are set by the caller)."""
    return common_pb2.ProgressEvent(
        kind=_KIND_TO_PROTO[event.kind],
        step=event.step,
        step_name=event.step_name,
        total_steps=event.total_steps,
        epoch=event.epoch,
        total_epochs=event.total_epochs,
        batch=event.batch,
        total_batches=event.total_batches,
        percent=event.percent,
        metrics={k: float(v) for k, v in event.metrics.items()},
        message=event.message,
        timestamp=timestamp_to_proto(event.timestamp),
        sequence=sequence,
    )


def event_from_proto(message: common_pb2.ProgressEvent) -> ProgressEvent:
    return ProgressEvent(
        kind=_KIND_FROM_PROTO.get(message.kind, ProgressKind.HEARTBEAT),
        step=message.step,
        step_name=message.step_name,
        total_steps=message.total_steps,
        epoch=message.epoch,
        total_epochs=message.total_epochs,
        batch=message.batch,
        total_batches=message.total_batches,
        percent=message.percent,
        metrics=dict(message.metrics),
        message=message.message,
        timestamp=timestamp_from_proto(message.timestamp)
        if message.HasField("timestamp")
        else datetime.now(UTC),
    )


def is_terminal(message: common_pb2.ProgressEvent) -> bool:
    return message.kind in TERMINAL_KINDS


def is_droppable(message: common_pb2.ProgressEvent) -> bool:
    """Batch and heartbeat events may be dropped for slow watchers; nothing else may."""
    return message.kind in (common_pb2.PROGRESS_KIND_BATCH, common_pb2.PROGRESS_KIND_HEARTBEAT)


def simple_event(
    kind: ProgressKind, message: str, percent: float = 0.0, **fields: Any
) -> common_pb2.ProgressEvent:
    """An event the services produce themselves (accepted, heartbeat, terminal)."""
    return event_to_proto(ProgressEvent(kind, message=message, percent=percent, **fields))


# -- errors ----------------------------------------------------------------------------------
def status_for(exc: BaseException) -> grpc.StatusCode:
    """The one mapping from library errors to gRPC status codes."""
    if is_disk_full(exc):
        return grpc.StatusCode.RESOURCE_EXHAUSTED
    if isinstance(exc, StrategyConfigError):
        return grpc.StatusCode.INVALID_ARGUMENT
    if isinstance(exc, TrainingCancelled):
        return grpc.StatusCode.CANCELLED
    if isinstance(exc, (DataError, DeviceError)):
        return grpc.StatusCode.FAILED_PRECONDITION
    if isinstance(exc, BundleError):
        return grpc.StatusCode.INVALID_ARGUMENT
    if isinstance(exc, StorageError):
        return grpc.StatusCode.FAILED_PRECONDITION
    if isinstance(exc, WorkerDied):
        return grpc.StatusCode.ABORTED
    if isinstance(exc, TrainingError):
        return grpc.StatusCode.FAILED_PRECONDITION
    return grpc.StatusCode.INTERNAL


_ABSOLUTE_PATH = re.compile(r"(?<![\w.])(?:/[\w.@+-]+)+/([\w.@+-]+)")


def redact_paths(text: str) -> str:
    """``text`` with absolute file paths cut to their last part: a message that leaves the
    service never shows the server's directory layout."""
    return _ABSOLUTE_PATH.sub(r"\1", text)


def error_to_proto(exc: BaseException) -> common_pb2.ErrorDetail:
    code = status_for(exc)
    details = [redact_paths(d) for d in exc.errors] if isinstance(exc, StrategyConfigError) else []
    message = redact_paths(str(exc)) or type(exc).__name__
    if is_disk_full(exc):
        message = disk_full_message("the result could not be written")
    if code is grpc.StatusCode.INTERNAL:
        message = f"internal error: {type(exc).__name__}: {message}"
    return common_pb2.ErrorDetail(
        code=code.name,
        message=message,
        error_type=type(exc).__name__ if isinstance(exc, TrainingError) else "",
        details=details,
    )


# -- overrides ---------------------------------------------------------------------------------
def apply_overrides_from_proto(
    config: StrategyConfig, overrides: common_pb2.TrainingOverrides
) -> StrategyConfig:
    """Apply wire overrides to a strategy (raises ``StrategyConfigError`` with field paths)."""
    from ktrdr.config import apply_overrides

    return apply_overrides(
        config,
        symbols=list(overrides.symbols) or None,
        timeframes=list(overrides.timeframes) or None,
        start_date=overrides.start_date or None,
        end_date=overrides.end_date or None,
        seed=overrides.seed if overrides.HasField("seed") else None,
    )


def overrides_to_proto(
    *,
    symbols: list[str] | None = None,
    timeframes: list[str] | None = None,
    start_date: str | None = None,
    end_date: str | None = None,
    seed: int | None = None,
    device: str | None = None,
) -> common_pb2.TrainingOverrides:
    message = common_pb2.TrainingOverrides(
        symbols=symbols or [],
        timeframes=timeframes or [],
        start_date=start_date or "",
        end_date=end_date or "",
        device=device or "",
    )
    if seed is not None:
        message.seed = seed
    return message
