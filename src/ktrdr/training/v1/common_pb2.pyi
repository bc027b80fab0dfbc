import datetime

from google.protobuf import timestamp_pb2 as _timestamp_pb2
from google.protobuf.internal import containers as _containers
from google.protobuf.internal import enum_type_wrapper as _enum_type_wrapper
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from collections.abc import Iterable as _Iterable, Mapping as _Mapping
from typing import ClassVar as _ClassVar, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class ProgressKind(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    PROGRESS_KIND_UNSPECIFIED: _ClassVar[ProgressKind]
    PROGRESS_KIND_ACCEPTED: _ClassVar[ProgressKind]
    PROGRESS_KIND_STEP_STARTED: _ClassVar[ProgressKind]
    PROGRESS_KIND_STEP_FINISHED: _ClassVar[ProgressKind]
    PROGRESS_KIND_EPOCH: _ClassVar[ProgressKind]
    PROGRESS_KIND_BATCH: _ClassVar[ProgressKind]
    PROGRESS_KIND_HEARTBEAT: _ClassVar[ProgressKind]
    PROGRESS_KIND_COMPLETED: _ClassVar[ProgressKind]
    PROGRESS_KIND_FAILED: _ClassVar[ProgressKind]
    PROGRESS_KIND_CANCELLED: _ClassVar[ProgressKind]

class DeliveryStatus(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    DELIVERY_STATUS_UNSPECIFIED: _ClassVar[DeliveryStatus]
    DELIVERY_STATUS_PENDING: _ClassVar[DeliveryStatus]
    DELIVERY_STATUS_DELIVERED: _ClassVar[DeliveryStatus]
    DELIVERY_STATUS_FAILED: _ClassVar[DeliveryStatus]
PROGRESS_KIND_UNSPECIFIED: ProgressKind
PROGRESS_KIND_ACCEPTED: ProgressKind
PROGRESS_KIND_STEP_STARTED: ProgressKind
PROGRESS_KIND_STEP_FINISHED: ProgressKind
PROGRESS_KIND_EPOCH: ProgressKind
PROGRESS_KIND_BATCH: ProgressKind
PROGRESS_KIND_HEARTBEAT: ProgressKind
PROGRESS_KIND_COMPLETED: ProgressKind
PROGRESS_KIND_FAILED: ProgressKind
PROGRESS_KIND_CANCELLED: ProgressKind
DELIVERY_STATUS_UNSPECIFIED: DeliveryStatus
DELIVERY_STATUS_PENDING: DeliveryStatus
DELIVERY_STATUS_DELIVERED: DeliveryStatus
DELIVERY_STATUS_FAILED: DeliveryStatus

class ProgressEvent(_message.Message):
    __slots__ = ("kind", "step", "step_name", "total_steps", "epoch", "total_epochs", "batch", "total_batches", "percent", "metrics", "message", "timestamp", "sequence", "result", "error")
    class MetricsEntry(_message.Message):
        __slots__ = ("key", "value")
        KEY_FIELD_NUMBER: _ClassVar[int]
        VALUE_FIELD_NUMBER: _ClassVar[int]
        key: str
        value: float
        def __init__(self, key: _Optional[str] = ..., value: _Optional[float] = ...) -> None: ...
    KIND_FIELD_NUMBER: _ClassVar[int]
    STEP_FIELD_NUMBER: _ClassVar[int]
    STEP_NAME_FIELD_NUMBER: _ClassVar[int]
    TOTAL_STEPS_FIELD_NUMBER: _ClassVar[int]
    EPOCH_FIELD_NUMBER: _ClassVar[int]
    TOTAL_EPOCHS_FIELD_NUMBER: _ClassVar[int]
    BATCH_FIELD_NUMBER: _ClassVar[int]
    TOTAL_BATCHES_FIELD_NUMBER: _ClassVar[int]
    PERCENT_FIELD_NUMBER: _ClassVar[int]
    METRICS_FIELD_NUMBER: _ClassVar[int]
    MESSAGE_FIELD_NUMBER: _ClassVar[int]
    TIMESTAMP_FIELD_NUMBER: _ClassVar[int]
    SEQUENCE_FIELD_NUMBER: _ClassVar[int]
    RESULT_FIELD_NUMBER: _ClassVar[int]
    ERROR_FIELD_NUMBER: _ClassVar[int]
    kind: ProgressKind
    step: int
    step_name: str
    total_steps: int
    epoch: int
    total_epochs: int
    batch: int
    total_batches: int
    percent: float
    metrics: _containers.ScalarMap[str, float]
    message: str
    timestamp: _timestamp_pb2.Timestamp
    sequence: int
    result: ResultSummary
    error: ErrorDetail
    def __init__(self, kind: _Optional[_Union[ProgressKind, str]] = ..., step: _Optional[int] = ..., step_name: _Optional[str] = ..., total_steps: _Optional[int] = ..., epoch: _Optional[int] = ..., total_epochs: _Optional[int] = ..., batch: _Optional[int] = ..., total_batches: _Optional[int] = ..., percent: _Optional[float] = ..., metrics: _Optional[_Mapping[str, float]] = ..., message: _Optional[str] = ..., timestamp: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., sequence: _Optional[int] = ..., result: _Optional[_Union[ResultSummary, _Mapping]] = ..., error: _Optional[_Union[ErrorDetail, _Mapping]] = ...) -> None: ...

class ErrorDetail(_message.Message):
    __slots__ = ("code", "message", "error_type", "details")
    CODE_FIELD_NUMBER: _ClassVar[int]
    MESSAGE_FIELD_NUMBER: _ClassVar[int]
    ERROR_TYPE_FIELD_NUMBER: _ClassVar[int]
    DETAILS_FIELD_NUMBER: _ClassVar[int]
    code: str
    message: str
    error_type: str
    details: _containers.RepeatedScalarFieldContainer[str]
    def __init__(self, code: _Optional[str] = ..., message: _Optional[str] = ..., error_type: _Optional[str] = ..., details: _Optional[_Iterable[str]] = ...) -> None: ...

class ResultSummary(_message.Message):
    __slots__ = ("metrics", "device", "duration_s", "bundle_size_bytes", "bundle_sha256", "delivery")
    class MetricsEntry(_message.Message):
        __slots__ = ("key", "value")
        KEY_FIELD_NUMBER: _ClassVar[int]
        VALUE_FIELD_NUMBER: _ClassVar[int]
        key: str
        value: float
        def __init__(self, key: _Optional[str] = ..., value: _Optional[float] = ...) -> None: ...
    METRICS_FIELD_NUMBER: _ClassVar[int]
    DEVICE_FIELD_NUMBER: _ClassVar[int]
    DURATION_S_FIELD_NUMBER: _ClassVar[int]
    BUNDLE_SIZE_BYTES_FIELD_NUMBER: _ClassVar[int]
    BUNDLE_SHA256_FIELD_NUMBER: _ClassVar[int]
    DELIVERY_FIELD_NUMBER: _ClassVar[int]
    metrics: _containers.ScalarMap[str, float]
    device: str
    duration_s: float
    bundle_size_bytes: int
    bundle_sha256: str
    delivery: Delivery
    def __init__(self, metrics: _Optional[_Mapping[str, float]] = ..., device: _Optional[str] = ..., duration_s: _Optional[float] = ..., bundle_size_bytes: _Optional[int] = ..., bundle_sha256: _Optional[str] = ..., delivery: _Optional[_Union[Delivery, _Mapping]] = ...) -> None: ...

class Delivery(_message.Message):
    __slots__ = ("status", "attempts", "last_error", "last_attempt_time", "next_attempt_time", "model")
    STATUS_FIELD_NUMBER: _ClassVar[int]
    ATTEMPTS_FIELD_NUMBER: _ClassVar[int]
    LAST_ERROR_FIELD_NUMBER: _ClassVar[int]
    LAST_ATTEMPT_TIME_FIELD_NUMBER: _ClassVar[int]
    NEXT_ATTEMPT_TIME_FIELD_NUMBER: _ClassVar[int]
    MODEL_FIELD_NUMBER: _ClassVar[int]
    status: DeliveryStatus
    attempts: int
    last_error: str
    last_attempt_time: _timestamp_pb2.Timestamp
    next_attempt_time: _timestamp_pb2.Timestamp
    model: ModelReference
    def __init__(self, status: _Optional[_Union[DeliveryStatus, str]] = ..., attempts: _Optional[int] = ..., last_error: _Optional[str] = ..., last_attempt_time: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., next_attempt_time: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., model: _Optional[_Union[ModelReference, _Mapping]] = ...) -> None: ...

class ModelReference(_message.Message):
    __slots__ = ("strategy_name", "version", "path")
    STRATEGY_NAME_FIELD_NUMBER: _ClassVar[int]
    VERSION_FIELD_NUMBER: _ClassVar[int]
    PATH_FIELD_NUMBER: _ClassVar[int]
    strategy_name: str
    version: int
    path: str
    def __init__(self, strategy_name: _Optional[str] = ..., version: _Optional[int] = ..., path: _Optional[str] = ...) -> None: ...

class FieldOverride(_message.Message):
    __slots__ = ("path", "value")
    PATH_FIELD_NUMBER: _ClassVar[int]
    VALUE_FIELD_NUMBER: _ClassVar[int]
    path: str
    value: str
    def __init__(self, path: _Optional[str] = ..., value: _Optional[str] = ...) -> None: ...

class TrainingOverrides(_message.Message):
    __slots__ = ("symbols", "timeframes", "start_date", "end_date", "seed", "device")
    SYMBOLS_FIELD_NUMBER: _ClassVar[int]
    TIMEFRAMES_FIELD_NUMBER: _ClassVar[int]
    START_DATE_FIELD_NUMBER: _ClassVar[int]
    END_DATE_FIELD_NUMBER: _ClassVar[int]
    SEED_FIELD_NUMBER: _ClassVar[int]
    DEVICE_FIELD_NUMBER: _ClassVar[int]
    symbols: _containers.RepeatedScalarFieldContainer[str]
    timeframes: _containers.RepeatedScalarFieldContainer[str]
    start_date: str
    end_date: str
    seed: int
    device: str
    def __init__(self, symbols: _Optional[_Iterable[str]] = ..., timeframes: _Optional[_Iterable[str]] = ..., start_date: _Optional[str] = ..., end_date: _Optional[str] = ..., seed: _Optional[int] = ..., device: _Optional[str] = ...) -> None: ...
