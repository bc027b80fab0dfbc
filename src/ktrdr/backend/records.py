"""The backend's records as stored in ``backend.db``: operations, models, strategies.

Proto-typed fields are the wire messages themselves (stored serialized); ``operation_record``
and ``model_record`` are the one place a row's columns are read.
"""

from __future__ import annotations

import json
import sqlite3
import time
from dataclasses import dataclass, field

from ktrdr.training.v1 import backend_pb2 as pb
from ktrdr.training.v1 import common_pb2

ACTIVE_STATUSES = (pb.OPERATION_STATUS_PENDING, pb.OPERATION_STATUS_RUNNING)
FINISHED_STATUSES = (
    pb.OPERATION_STATUS_COMPLETED,
    pb.OPERATION_STATUS_FAILED,
    pb.OPERATION_STATUS_CANCELLED,
)


def now_us() -> int:
    return time.time_ns() // 1000


@dataclass(frozen=True)
class OperationRecord:
    """One operation as stored; proto-typed fields are the wire messages themselves."""

    id: str
    status: int
    strategy_name: str
    strategy_yaml: str
    overrides: common_pb2.TrainingOverrides
    requested_mode: int
    mode: int
    mode_reason: str
    host_address: str
    require_gpu: bool
    created_us: int
    started_us: int | None = None
    finished_us: int | None = None
    last_event: common_pb2.ProgressEvent | None = None
    error: common_pb2.ErrorDetail | None = None
    result: common_pb2.ResultSummary | None = None
    model_version: int | None = None
    model_path: str | None = None
    bundle_sha256: str | None = None
    # The token name that created it ("" without authentication).
    owner: str = ""
    # SHA-256 of the host operation's upload credential (the credential itself is not kept).
    upload_credential_sha256: str | None = None
    # The bundle the host announced when its training completed (SubmitResults accepts
    # only that one).
    expected_sha256: str | None = None
    expected_size: int | None = None
    # Host mode was asked for but it runs locally: no host was healthy.
    fallback: bool = False

    @property
    def finished(self) -> bool:
        return self.status in FINISHED_STATUSES

    @property
    def is_host(self) -> bool:
        return self.mode == pb.EXECUTION_MODE_HOST


@dataclass(frozen=True)
class ModelRecord:
    """One stored model version in the registry."""

    strategy_name: str
    version: int
    path: str
    created_us: int
    operation_id: str
    sha256: str
    test_metrics: dict[str, float] = field(default_factory=dict)


def model_record(row: sqlite3.Row) -> ModelRecord:
    """A ``models`` row as its record (the one place the columns are read)."""
    return ModelRecord(
        strategy_name=row["strategy_name"],
        version=row["version"],
        path=row["path"],
        created_us=row["created_us"],
        operation_id=row["operation_id"],
        sha256=row["sha256"],
        test_metrics=json.loads(row["test_metrics"]),
    )


@dataclass(frozen=True)
class StrategyRecord:
    name: str
    status: int
    latest_version: int
    last_operation_id: str


def blob(message: object | None) -> bytes | None:
    return None if message is None else message.SerializeToString()  # type: ignore[attr-defined]


def _parse(cls: type, data: bytes | None):  # type: ignore[no-untyped-def]
    if data is None:
        return None
    message = cls()
    message.ParseFromString(data)
    return message


def operation_record(row: sqlite3.Row) -> OperationRecord:
    return OperationRecord(
        id=row["id"],
        status=row["status"],
        strategy_name=row["strategy_name"],
        strategy_yaml=row["strategy_yaml"],
        overrides=_parse(common_pb2.TrainingOverrides, row["overrides"]),
        requested_mode=row["requested_mode"],
        mode=row["mode"],
        mode_reason=row["mode_reason"],
        host_address=row["host_address"],
        require_gpu=bool(row["require_gpu"]),
        created_us=row["created_us"],
        started_us=row["started_us"],
        finished_us=row["finished_us"],
        last_event=_parse(common_pb2.ProgressEvent, row["last_event"]),
        error=_parse(common_pb2.ErrorDetail, row["error"]),
        result=_parse(common_pb2.ResultSummary, row["result"]),
        model_version=row["model_version"],
        model_path=row["model_path"],
        bundle_sha256=row["bundle_sha256"],
        owner=row["owner"],
        upload_credential_sha256=row["upload_credential_sha256"],
        expected_sha256=row["expected_sha256"],
        expected_size=row["expected_size"],
        fallback=bool(row["fallback"]),
    )


__all__ = [
    "ACTIVE_STATUSES",
    "FINISHED_STATUSES",
    "ModelRecord",
    "OperationRecord",
    "StrategyRecord",
    "blob",
    "model_record",
    "now_us",
    "operation_record",
]
