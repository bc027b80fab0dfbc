"""Plain, typed views of the backend's messages: operations, models, strategies.

Each record keeps the message it came from in ``proto`` for anything not copied out.
``frame(records)`` turns a list of them into a pandas DataFrame for notebooks.
"""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ktrdr.client.errors import KtrdrClientError
from ktrdr.service.convert import timestamp_from_proto
from ktrdr.training.v1 import backend_pb2, common_pb2

if TYPE_CHECKING:  # pandas loads when a table is asked for, not with the client
    import pandas as pd

MODES: dict[str, int] = {
    "auto": backend_pb2.EXECUTION_MODE_AUTO,
    "local": backend_pb2.EXECUTION_MODE_LOCAL,
    "host": backend_pb2.EXECUTION_MODE_HOST,
}
STATUSES: dict[str, int] = {
    "pending": backend_pb2.OPERATION_STATUS_PENDING,
    "running": backend_pb2.OPERATION_STATUS_RUNNING,
    "completed": backend_pb2.OPERATION_STATUS_COMPLETED,
    "failed": backend_pb2.OPERATION_STATUS_FAILED,
    "cancelled": backend_pb2.OPERATION_STATUS_CANCELLED,
}
FINISHED_STATUSES = frozenset({"completed", "failed", "cancelled"})


def mode_to_proto(mode: str | int | None) -> int:
    """``"auto"|"local"|"host"`` (or an ExecutionMode value, or None for the default)."""
    if mode is None:
        return backend_pb2.EXECUTION_MODE_UNSPECIFIED
    if isinstance(mode, int):
        return mode
    try:
        return MODES[mode.strip().lower()]
    except KeyError:
        raise ValueError(f"unknown mode {mode!r}: expected auto, local or host") from None


def mode_name(value: int) -> str:
    """The lower-case name of an ExecutionMode (``"default"`` when unspecified)."""
    for name, number in MODES.items():
        if number == value:
            return name
    return "default"


def status_to_proto(status: str | int | None) -> int:
    if status is None:
        return backend_pb2.OPERATION_STATUS_UNSPECIFIED
    if isinstance(status, int):
        return status
    try:
        return STATUSES[status.strip().lower()]
    except KeyError:
        raise ValueError(
            f"unknown status {status!r}: expected one of {', '.join(STATUSES)}"
        ) from None


def status_name(value: int) -> str:
    for name, number in STATUSES.items():
        if number == value:
            return name
    return "unknown"


def strategy_status_name(value: int) -> str:
    name: str = backend_pb2.StrategyStatus.Name(value)
    return name.removeprefix("STRATEGY_STATUS_").lower()


def _time(message: Any, name: str) -> datetime | None:
    return timestamp_from_proto(getattr(message, name)) if message.HasField(name) else None


@dataclass(frozen=True)
class ModelRef:
    """A model stored by the backend: strategy, version and directory."""

    strategy: str
    version: int
    path: str

    @classmethod
    def from_proto(cls, message: common_pb2.ModelReference) -> ModelRef:
        return cls(message.strategy_name, message.version, message.path)

    def metadata(self) -> dict[str, Any]:
        """The model's ``metadata.json`` (the directory must be readable from this machine)."""
        return read_model_metadata(self.path)


def local_model_dir(path: str | Path) -> Path:
    """A model directory: ``path`` itself, or a store reference (``strategy/dir``, as the
    backend reports it) inside the model store of a backend on this machine
    (``$KTRDR_BACKEND_DATA_DIR/models``, else ``.ktrdr/backend/models``)."""
    candidate = Path(path)
    if candidate.is_dir() or candidate.is_absolute():
        return candidate
    from ktrdr.client.connection import local_token_file

    return local_token_file().parent / "models" / candidate


def read_model_metadata(path: str | Path) -> dict[str, Any]:
    """Read ``metadata.json`` from a model directory or store reference (see
    ``local_model_dir``); ``KtrdrClientError`` when unreadable."""
    file = local_model_dir(path) / "metadata.json"
    try:
        data: dict[str, Any] = json.loads(file.read_text())
    except FileNotFoundError:
        raise KtrdrClientError(
            f"model {path} is not readable here: run where the backend's model store is, with "
            "KTRDR_BACKEND_DATA_DIR set to the backend's data directory"
        ) from None
    except (OSError, ValueError) as exc:
        raise KtrdrClientError(f"cannot read {file}: {exc}") from None
    return data


@dataclass(frozen=True)
class OperationInfo:
    """One training operation as the backend reports it."""

    operation_id: str
    status: str
    strategy: str
    mode: str
    requested_mode: str
    mode_reason: str
    host_address: str
    require_gpu: bool
    created: datetime | None
    started: datetime | None
    finished: datetime | None
    percent: float
    last_message: str
    error: str
    metrics: dict[str, float]
    model: ModelRef | None
    proto: backend_pb2.Operation = field(repr=False, compare=False)
    owner: str = ""  # the token name that created it
    # While it waits for a free host slot: why ("3 hosts busy, 2 queued (this one 1st)") and
    # its place in the host queue (1 = next); "" and 0 otherwise.
    queue_reason: str = ""
    queue_position: int = 0
    # Host mode was asked for, but it runs in the backend: no host was healthy.
    fallback: bool = False
    sweep_id: str = ""  # the sweep it is a trial of, if any
    trial_number: int | None = None

    @classmethod
    def from_proto(cls, op: backend_pb2.Operation) -> OperationInfo:
        model = None
        if op.HasField("result") and op.result.delivery.HasField("model"):
            model = ModelRef.from_proto(op.result.delivery.model)
        error = ""
        if op.HasField("error"):
            error = op.error.message
            if op.error.details:
                error += "\n  " + "\n  ".join(op.error.details)
        return cls(
            operation_id=op.operation_id,
            status=status_name(op.status),
            strategy=op.strategy_name,
            mode=mode_name(op.mode),
            requested_mode=mode_name(op.requested_mode),
            mode_reason=op.mode_reason,
            host_address=op.host_address,
            require_gpu=op.require_gpu,
            created=_time(op, "created_time"),
            started=_time(op, "started_time"),
            finished=_time(op, "finished_time"),
            percent=op.last_event.percent,
            last_message=op.last_event.message,
            error=error,
            metrics=dict(op.result.metrics),
            model=model,
            proto=op,
            owner=op.owner,
            queue_reason=op.queue_reason,
            queue_position=op.queue_position,
            fallback=op.fallback,
            sweep_id=op.sweep_id,
            trial_number=op.trial_number if op.HasField("trial_number") else None,
        )

    @property
    def finished_ok(self) -> bool:
        return self.status == "completed"

    @property
    def is_finished(self) -> bool:
        return self.status in FINISHED_STATUSES

    @property
    def placement(self) -> str:
        """Where it runs, in a few words: "host 10.0.0.5:50051", "queued for a host (...)",
        "local (FALLBACK: no healthy host)", "local"."""
        if self.queue_position:
            return f"queued for a host ({self.queue_reason})"
        if self.mode == "host":
            return f"host {self.host_address}" if self.host_address else "host"
        if self.fallback:
            return "local (FALLBACK from host mode: no training host was healthy)"
        return self.mode

    def to_dict(self) -> dict[str, Any]:
        out = {f.name: getattr(self, f.name) for f in dataclasses.fields(self) if f.name != "proto"}
        for key in ("created", "started", "finished"):
            out[key] = out[key].isoformat() if out[key] else None
        out["model"] = dataclasses.asdict(self.model) if self.model else None
        return out


@dataclass(frozen=True)
class ModelInfo:
    """One stored model version, with its aliases, tags and lineage."""

    strategy: str
    version: int
    created: datetime | None
    path: str  # store-relative: "strategy/dir"
    operation_id: str
    test_metrics: dict[str, float]
    aliases: list[str] = field(default_factory=list)
    tags: list[str] = field(default_factory=list)
    sha256: str = ""
    seed: int | None = None
    device: str = ""
    mode: str = ""
    host: str = ""
    owner: str = ""

    @property
    def ref(self) -> ModelRef:
        return ModelRef(self.strategy, self.version, self.path)

    @property
    def name(self) -> str:
        """``strategy:version``, a reference the client and the CLI accept."""
        return f"{self.strategy}:{self.version}"

    def metadata(self) -> dict[str, Any]:
        return read_model_metadata(self.path)

    def to_dict(self) -> dict[str, Any]:
        out = dataclasses.asdict(self)
        out["created"] = self.created.isoformat() if self.created else None
        return out

    @classmethod
    def from_proto(cls, v: backend_pb2.ModelVersion, strategy: str = "") -> ModelInfo:
        lineage = v.lineage
        return cls(
            strategy=v.strategy_name or strategy,
            version=v.version,
            created=_time(v, "created_time"),
            path=v.path,
            operation_id=v.operation_id,
            test_metrics=dict(v.test_metrics),
            aliases=list(v.aliases),
            tags=list(v.tags),
            sha256=v.sha256,
            seed=lineage.seed if lineage.HasField("seed") else None,
            device=lineage.device,
            mode=mode_name(lineage.mode) if lineage.mode else "",
            host=lineage.host_address,
            owner=lineage.owner,
        )


def models_from_proto(response: backend_pb2.ListModelsResponse) -> list[ModelInfo]:
    if response.models:
        return [ModelInfo.from_proto(v) for v in response.models]
    return [  # a backend from before the flat list
        ModelInfo.from_proto(v, group.strategy_name)
        for group in response.strategies
        for v in group.versions
    ]


@dataclass(frozen=True)
class StrategyInfo:
    """A strategy the backend knows, with its training status."""

    name: str
    status: str
    latest_version: int
    last_operation_id: str

    @classmethod
    def from_proto(cls, message: backend_pb2.StrategyInfo) -> StrategyInfo:
        return cls(
            message.name,
            strategy_status_name(message.status),
            message.latest_version,
            message.last_operation_id,
        )

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)


def frame(records: Sequence[OperationInfo | ModelInfo | StrategyInfo]) -> pd.DataFrame:
    """A DataFrame with one row per record (metrics dicts become columns)."""
    rows: list[dict[str, Any]] = []
    for record in records:
        row = record.to_dict()
        for key in ("metrics", "test_metrics"):
            if isinstance(row.get(key), dict):
                row.update(row.pop(key))
        if isinstance(row.get("model"), dict):
            row["model"] = row["model"]["path"]
        rows.append(row)
    from ktrdr.client.errors import require_module

    pd = require_module("pandas", "frame()", instead="each record's to_dict() is plain data")
    return pd.DataFrame(rows)


__all__ = [
    "MODES",
    "STATUSES",
    "ModelInfo",
    "ModelRef",
    "OperationInfo",
    "StrategyInfo",
    "frame",
    "mode_name",
    "mode_to_proto",
    "read_model_metadata",
    "status_name",
    "status_to_proto",
]
