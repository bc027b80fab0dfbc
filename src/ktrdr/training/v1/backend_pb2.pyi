import datetime

from google.protobuf import timestamp_pb2 as _timestamp_pb2
from ktrdr.training.v1 import common_pb2 as _common_pb2
from ktrdr.training.v1 import hosts_pb2 as _hosts_pb2
from google.protobuf.internal import containers as _containers
from google.protobuf.internal import enum_type_wrapper as _enum_type_wrapper
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from collections.abc import Iterable as _Iterable, Mapping as _Mapping
from typing import ClassVar as _ClassVar, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class ExecutionMode(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    EXECUTION_MODE_UNSPECIFIED: _ClassVar[ExecutionMode]
    EXECUTION_MODE_AUTO: _ClassVar[ExecutionMode]
    EXECUTION_MODE_LOCAL: _ClassVar[ExecutionMode]
    EXECUTION_MODE_HOST: _ClassVar[ExecutionMode]

class OperationStatus(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    OPERATION_STATUS_UNSPECIFIED: _ClassVar[OperationStatus]
    OPERATION_STATUS_PENDING: _ClassVar[OperationStatus]
    OPERATION_STATUS_RUNNING: _ClassVar[OperationStatus]
    OPERATION_STATUS_COMPLETED: _ClassVar[OperationStatus]
    OPERATION_STATUS_FAILED: _ClassVar[OperationStatus]
    OPERATION_STATUS_CANCELLED: _ClassVar[OperationStatus]

class StrategyStatus(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    STRATEGY_STATUS_UNSPECIFIED: _ClassVar[StrategyStatus]
    STRATEGY_STATUS_UNTRAINED: _ClassVar[StrategyStatus]
    STRATEGY_STATUS_TRAINING: _ClassVar[StrategyStatus]
    STRATEGY_STATUS_TRAINED: _ClassVar[StrategyStatus]
    STRATEGY_STATUS_FAILED: _ClassVar[StrategyStatus]

class Codec(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    CODEC_UNSPECIFIED: _ClassVar[Codec]
    CODEC_RAW: _ClassVar[Codec]
    CODEC_ZSTD: _ClassVar[Codec]
    CODEC_GZIP: _ClassVar[Codec]

class SweepStatus(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    SWEEP_STATUS_UNSPECIFIED: _ClassVar[SweepStatus]
    SWEEP_STATUS_RUNNING: _ClassVar[SweepStatus]
    SWEEP_STATUS_COMPLETED: _ClassVar[SweepStatus]
    SWEEP_STATUS_FAILED: _ClassVar[SweepStatus]
    SWEEP_STATUS_CANCELLED: _ClassVar[SweepStatus]

class TrialStatus(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    TRIAL_STATUS_UNSPECIFIED: _ClassVar[TrialStatus]
    TRIAL_STATUS_RUNNING: _ClassVar[TrialStatus]
    TRIAL_STATUS_COMPLETED: _ClassVar[TrialStatus]
    TRIAL_STATUS_PRUNED: _ClassVar[TrialStatus]
    TRIAL_STATUS_FAILED: _ClassVar[TrialStatus]
    TRIAL_STATUS_CANCELLED: _ClassVar[TrialStatus]
    TRIAL_STATUS_INTERRUPTED: _ClassVar[TrialStatus]

class SweepSampler(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    SWEEP_SAMPLER_UNSPECIFIED: _ClassVar[SweepSampler]
    SWEEP_SAMPLER_TPE: _ClassVar[SweepSampler]
    SWEEP_SAMPLER_RANDOM: _ClassVar[SweepSampler]
    SWEEP_SAMPLER_GRID: _ClassVar[SweepSampler]

class SweepPruner(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    SWEEP_PRUNER_UNSPECIFIED: _ClassVar[SweepPruner]
    SWEEP_PRUNER_MEDIAN: _ClassVar[SweepPruner]
    SWEEP_PRUNER_NONE: _ClassVar[SweepPruner]

class ObjectiveDirection(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    OBJECTIVE_DIRECTION_UNSPECIFIED: _ClassVar[ObjectiveDirection]
    OBJECTIVE_DIRECTION_MINIMIZE: _ClassVar[ObjectiveDirection]
    OBJECTIVE_DIRECTION_MAXIMIZE: _ClassVar[ObjectiveDirection]

class SweepEventKind(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    SWEEP_EVENT_KIND_UNSPECIFIED: _ClassVar[SweepEventKind]
    SWEEP_EVENT_KIND_SNAPSHOT: _ClassVar[SweepEventKind]
    SWEEP_EVENT_KIND_TRIAL_STARTED: _ClassVar[SweepEventKind]
    SWEEP_EVENT_KIND_TRIAL_EPOCH: _ClassVar[SweepEventKind]
    SWEEP_EVENT_KIND_TRIAL_PRUNED: _ClassVar[SweepEventKind]
    SWEEP_EVENT_KIND_TRIAL_FINISHED: _ClassVar[SweepEventKind]
    SWEEP_EVENT_KIND_BEST: _ClassVar[SweepEventKind]
    SWEEP_EVENT_KIND_SWEEP_FINISHED: _ClassVar[SweepEventKind]
EXECUTION_MODE_UNSPECIFIED: ExecutionMode
EXECUTION_MODE_AUTO: ExecutionMode
EXECUTION_MODE_LOCAL: ExecutionMode
EXECUTION_MODE_HOST: ExecutionMode
OPERATION_STATUS_UNSPECIFIED: OperationStatus
OPERATION_STATUS_PENDING: OperationStatus
OPERATION_STATUS_RUNNING: OperationStatus
OPERATION_STATUS_COMPLETED: OperationStatus
OPERATION_STATUS_FAILED: OperationStatus
OPERATION_STATUS_CANCELLED: OperationStatus
STRATEGY_STATUS_UNSPECIFIED: StrategyStatus
STRATEGY_STATUS_UNTRAINED: StrategyStatus
STRATEGY_STATUS_TRAINING: StrategyStatus
STRATEGY_STATUS_TRAINED: StrategyStatus
STRATEGY_STATUS_FAILED: StrategyStatus
CODEC_UNSPECIFIED: Codec
CODEC_RAW: Codec
CODEC_ZSTD: Codec
CODEC_GZIP: Codec
SWEEP_STATUS_UNSPECIFIED: SweepStatus
SWEEP_STATUS_RUNNING: SweepStatus
SWEEP_STATUS_COMPLETED: SweepStatus
SWEEP_STATUS_FAILED: SweepStatus
SWEEP_STATUS_CANCELLED: SweepStatus
TRIAL_STATUS_UNSPECIFIED: TrialStatus
TRIAL_STATUS_RUNNING: TrialStatus
TRIAL_STATUS_COMPLETED: TrialStatus
TRIAL_STATUS_PRUNED: TrialStatus
TRIAL_STATUS_FAILED: TrialStatus
TRIAL_STATUS_CANCELLED: TrialStatus
TRIAL_STATUS_INTERRUPTED: TrialStatus
SWEEP_SAMPLER_UNSPECIFIED: SweepSampler
SWEEP_SAMPLER_TPE: SweepSampler
SWEEP_SAMPLER_RANDOM: SweepSampler
SWEEP_SAMPLER_GRID: SweepSampler
SWEEP_PRUNER_UNSPECIFIED: SweepPruner
SWEEP_PRUNER_MEDIAN: SweepPruner
SWEEP_PRUNER_NONE: SweepPruner
OBJECTIVE_DIRECTION_UNSPECIFIED: ObjectiveDirection
OBJECTIVE_DIRECTION_MINIMIZE: ObjectiveDirection
OBJECTIVE_DIRECTION_MAXIMIZE: ObjectiveDirection
SWEEP_EVENT_KIND_UNSPECIFIED: SweepEventKind
SWEEP_EVENT_KIND_SNAPSHOT: SweepEventKind
SWEEP_EVENT_KIND_TRIAL_STARTED: SweepEventKind
SWEEP_EVENT_KIND_TRIAL_EPOCH: SweepEventKind
SWEEP_EVENT_KIND_TRIAL_PRUNED: SweepEventKind
SWEEP_EVENT_KIND_TRIAL_FINISHED: SweepEventKind
SWEEP_EVENT_KIND_BEST: SweepEventKind
SWEEP_EVENT_KIND_SWEEP_FINISHED: SweepEventKind

class Operation(_message.Message):
    __slots__ = ("operation_id", "status", "strategy_name", "requested_mode", "mode", "mode_reason", "host_address", "require_gpu", "created_time", "started_time", "finished_time", "last_event", "error", "result", "owner", "queue_reason", "queue_position", "fallback", "sweep_id", "trial_number")
    OPERATION_ID_FIELD_NUMBER: _ClassVar[int]
    STATUS_FIELD_NUMBER: _ClassVar[int]
    STRATEGY_NAME_FIELD_NUMBER: _ClassVar[int]
    REQUESTED_MODE_FIELD_NUMBER: _ClassVar[int]
    MODE_FIELD_NUMBER: _ClassVar[int]
    MODE_REASON_FIELD_NUMBER: _ClassVar[int]
    HOST_ADDRESS_FIELD_NUMBER: _ClassVar[int]
    REQUIRE_GPU_FIELD_NUMBER: _ClassVar[int]
    CREATED_TIME_FIELD_NUMBER: _ClassVar[int]
    STARTED_TIME_FIELD_NUMBER: _ClassVar[int]
    FINISHED_TIME_FIELD_NUMBER: _ClassVar[int]
    LAST_EVENT_FIELD_NUMBER: _ClassVar[int]
    ERROR_FIELD_NUMBER: _ClassVar[int]
    RESULT_FIELD_NUMBER: _ClassVar[int]
    OWNER_FIELD_NUMBER: _ClassVar[int]
    QUEUE_REASON_FIELD_NUMBER: _ClassVar[int]
    QUEUE_POSITION_FIELD_NUMBER: _ClassVar[int]
    FALLBACK_FIELD_NUMBER: _ClassVar[int]
    SWEEP_ID_FIELD_NUMBER: _ClassVar[int]
    TRIAL_NUMBER_FIELD_NUMBER: _ClassVar[int]
    operation_id: str
    status: OperationStatus
    strategy_name: str
    requested_mode: ExecutionMode
    mode: ExecutionMode
    mode_reason: str
    host_address: str
    require_gpu: bool
    created_time: _timestamp_pb2.Timestamp
    started_time: _timestamp_pb2.Timestamp
    finished_time: _timestamp_pb2.Timestamp
    last_event: _common_pb2.ProgressEvent
    error: _common_pb2.ErrorDetail
    result: _common_pb2.ResultSummary
    owner: str
    queue_reason: str
    queue_position: int
    fallback: bool
    sweep_id: str
    trial_number: int
    def __init__(self, operation_id: _Optional[str] = ..., status: _Optional[_Union[OperationStatus, str]] = ..., strategy_name: _Optional[str] = ..., requested_mode: _Optional[_Union[ExecutionMode, str]] = ..., mode: _Optional[_Union[ExecutionMode, str]] = ..., mode_reason: _Optional[str] = ..., host_address: _Optional[str] = ..., require_gpu: _Optional[bool] = ..., created_time: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., started_time: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., finished_time: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., last_event: _Optional[_Union[_common_pb2.ProgressEvent, _Mapping]] = ..., error: _Optional[_Union[_common_pb2.ErrorDetail, _Mapping]] = ..., result: _Optional[_Union[_common_pb2.ResultSummary, _Mapping]] = ..., owner: _Optional[str] = ..., queue_reason: _Optional[str] = ..., queue_position: _Optional[int] = ..., fallback: _Optional[bool] = ..., sweep_id: _Optional[str] = ..., trial_number: _Optional[int] = ...) -> None: ...

class CreateTrainingRequest(_message.Message):
    __slots__ = ("strategy_yaml", "strategy_name", "overrides", "execution_mode", "require_gpu", "tags", "field_overrides")
    STRATEGY_YAML_FIELD_NUMBER: _ClassVar[int]
    STRATEGY_NAME_FIELD_NUMBER: _ClassVar[int]
    OVERRIDES_FIELD_NUMBER: _ClassVar[int]
    EXECUTION_MODE_FIELD_NUMBER: _ClassVar[int]
    REQUIRE_GPU_FIELD_NUMBER: _ClassVar[int]
    TAGS_FIELD_NUMBER: _ClassVar[int]
    FIELD_OVERRIDES_FIELD_NUMBER: _ClassVar[int]
    strategy_yaml: str
    strategy_name: str
    overrides: _common_pb2.TrainingOverrides
    execution_mode: ExecutionMode
    require_gpu: bool
    tags: _containers.RepeatedScalarFieldContainer[str]
    field_overrides: _containers.RepeatedCompositeFieldContainer[_common_pb2.FieldOverride]
    def __init__(self, strategy_yaml: _Optional[str] = ..., strategy_name: _Optional[str] = ..., overrides: _Optional[_Union[_common_pb2.TrainingOverrides, _Mapping]] = ..., execution_mode: _Optional[_Union[ExecutionMode, str]] = ..., require_gpu: _Optional[bool] = ..., tags: _Optional[_Iterable[str]] = ..., field_overrides: _Optional[_Iterable[_Union[_common_pb2.FieldOverride, _Mapping]]] = ...) -> None: ...

class CreateTrainingResponse(_message.Message):
    __slots__ = ("operation",)
    OPERATION_FIELD_NUMBER: _ClassVar[int]
    operation: Operation
    def __init__(self, operation: _Optional[_Union[Operation, _Mapping]] = ...) -> None: ...

class WatchOperationRequest(_message.Message):
    __slots__ = ("operation_id",)
    OPERATION_ID_FIELD_NUMBER: _ClassVar[int]
    operation_id: str
    def __init__(self, operation_id: _Optional[str] = ...) -> None: ...

class WatchOperationResponse(_message.Message):
    __slots__ = ("event", "status")
    EVENT_FIELD_NUMBER: _ClassVar[int]
    STATUS_FIELD_NUMBER: _ClassVar[int]
    event: _common_pb2.ProgressEvent
    status: OperationStatus
    def __init__(self, event: _Optional[_Union[_common_pb2.ProgressEvent, _Mapping]] = ..., status: _Optional[_Union[OperationStatus, str]] = ...) -> None: ...

class GetOperationRequest(_message.Message):
    __slots__ = ("operation_id",)
    OPERATION_ID_FIELD_NUMBER: _ClassVar[int]
    operation_id: str
    def __init__(self, operation_id: _Optional[str] = ...) -> None: ...

class GetOperationResponse(_message.Message):
    __slots__ = ("operation",)
    OPERATION_FIELD_NUMBER: _ClassVar[int]
    operation: Operation
    def __init__(self, operation: _Optional[_Union[Operation, _Mapping]] = ...) -> None: ...

class ListOperationsRequest(_message.Message):
    __slots__ = ("status", "strategy_name", "page_size", "page_token", "owner")
    STATUS_FIELD_NUMBER: _ClassVar[int]
    STRATEGY_NAME_FIELD_NUMBER: _ClassVar[int]
    PAGE_SIZE_FIELD_NUMBER: _ClassVar[int]
    PAGE_TOKEN_FIELD_NUMBER: _ClassVar[int]
    OWNER_FIELD_NUMBER: _ClassVar[int]
    status: OperationStatus
    strategy_name: str
    page_size: int
    page_token: str
    owner: str
    def __init__(self, status: _Optional[_Union[OperationStatus, str]] = ..., strategy_name: _Optional[str] = ..., page_size: _Optional[int] = ..., page_token: _Optional[str] = ..., owner: _Optional[str] = ...) -> None: ...

class ListOperationsResponse(_message.Message):
    __slots__ = ("operations", "next_page_token")
    OPERATIONS_FIELD_NUMBER: _ClassVar[int]
    NEXT_PAGE_TOKEN_FIELD_NUMBER: _ClassVar[int]
    operations: _containers.RepeatedCompositeFieldContainer[Operation]
    next_page_token: str
    def __init__(self, operations: _Optional[_Iterable[_Union[Operation, _Mapping]]] = ..., next_page_token: _Optional[str] = ...) -> None: ...

class CancelOperationRequest(_message.Message):
    __slots__ = ("operation_id", "reason")
    OPERATION_ID_FIELD_NUMBER: _ClassVar[int]
    REASON_FIELD_NUMBER: _ClassVar[int]
    operation_id: str
    reason: str
    def __init__(self, operation_id: _Optional[str] = ..., reason: _Optional[str] = ...) -> None: ...

class CancelOperationResponse(_message.Message):
    __slots__ = ("status", "operation")
    STATUS_FIELD_NUMBER: _ClassVar[int]
    OPERATION_FIELD_NUMBER: _ClassVar[int]
    status: OperationStatus
    operation: Operation
    def __init__(self, status: _Optional[_Union[OperationStatus, str]] = ..., operation: _Optional[_Union[Operation, _Mapping]] = ...) -> None: ...

class TrainingConfig(_message.Message):
    __slots__ = ("default_mode", "host_addresses", "results_address", "health_check_timeout_s", "local_concurrency", "max_bundle_bytes", "max_pending", "auth_required", "max_host_queue")
    DEFAULT_MODE_FIELD_NUMBER: _ClassVar[int]
    HOST_ADDRESSES_FIELD_NUMBER: _ClassVar[int]
    RESULTS_ADDRESS_FIELD_NUMBER: _ClassVar[int]
    HEALTH_CHECK_TIMEOUT_S_FIELD_NUMBER: _ClassVar[int]
    LOCAL_CONCURRENCY_FIELD_NUMBER: _ClassVar[int]
    MAX_BUNDLE_BYTES_FIELD_NUMBER: _ClassVar[int]
    MAX_PENDING_FIELD_NUMBER: _ClassVar[int]
    AUTH_REQUIRED_FIELD_NUMBER: _ClassVar[int]
    MAX_HOST_QUEUE_FIELD_NUMBER: _ClassVar[int]
    default_mode: ExecutionMode
    host_addresses: _containers.RepeatedScalarFieldContainer[str]
    results_address: str
    health_check_timeout_s: float
    local_concurrency: int
    max_bundle_bytes: int
    max_pending: int
    auth_required: bool
    max_host_queue: int
    def __init__(self, default_mode: _Optional[_Union[ExecutionMode, str]] = ..., host_addresses: _Optional[_Iterable[str]] = ..., results_address: _Optional[str] = ..., health_check_timeout_s: _Optional[float] = ..., local_concurrency: _Optional[int] = ..., max_bundle_bytes: _Optional[int] = ..., max_pending: _Optional[int] = ..., auth_required: _Optional[bool] = ..., max_host_queue: _Optional[int] = ...) -> None: ...

class GetTrainingConfigRequest(_message.Message):
    __slots__ = ()
    def __init__(self) -> None: ...

class GetTrainingConfigResponse(_message.Message):
    __slots__ = ("config",)
    CONFIG_FIELD_NUMBER: _ClassVar[int]
    config: TrainingConfig
    def __init__(self, config: _Optional[_Union[TrainingConfig, _Mapping]] = ...) -> None: ...

class UpdateTrainingConfigRequest(_message.Message):
    __slots__ = ("default_mode",)
    DEFAULT_MODE_FIELD_NUMBER: _ClassVar[int]
    default_mode: ExecutionMode
    def __init__(self, default_mode: _Optional[_Union[ExecutionMode, str]] = ...) -> None: ...

class UpdateTrainingConfigResponse(_message.Message):
    __slots__ = ("previous_default_mode", "default_mode", "config")
    PREVIOUS_DEFAULT_MODE_FIELD_NUMBER: _ClassVar[int]
    DEFAULT_MODE_FIELD_NUMBER: _ClassVar[int]
    CONFIG_FIELD_NUMBER: _ClassVar[int]
    previous_default_mode: ExecutionMode
    default_mode: ExecutionMode
    config: TrainingConfig
    def __init__(self, previous_default_mode: _Optional[_Union[ExecutionMode, str]] = ..., default_mode: _Optional[_Union[ExecutionMode, str]] = ..., config: _Optional[_Union[TrainingConfig, _Mapping]] = ...) -> None: ...

class BundleSummary(_message.Message):
    __slots__ = ("model_type", "feature_count", "device", "seed", "duration_s", "ktrdr_version", "torch_version", "created_time")
    MODEL_TYPE_FIELD_NUMBER: _ClassVar[int]
    FEATURE_COUNT_FIELD_NUMBER: _ClassVar[int]
    DEVICE_FIELD_NUMBER: _ClassVar[int]
    SEED_FIELD_NUMBER: _ClassVar[int]
    DURATION_S_FIELD_NUMBER: _ClassVar[int]
    KTRDR_VERSION_FIELD_NUMBER: _ClassVar[int]
    TORCH_VERSION_FIELD_NUMBER: _ClassVar[int]
    CREATED_TIME_FIELD_NUMBER: _ClassVar[int]
    model_type: str
    feature_count: int
    device: str
    seed: int
    duration_s: float
    ktrdr_version: str
    torch_version: str
    created_time: _timestamp_pb2.Timestamp
    def __init__(self, model_type: _Optional[str] = ..., feature_count: _Optional[int] = ..., device: _Optional[str] = ..., seed: _Optional[int] = ..., duration_s: _Optional[float] = ..., ktrdr_version: _Optional[str] = ..., torch_version: _Optional[str] = ..., created_time: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ...) -> None: ...

class SubmitResultsHeader(_message.Message):
    __slots__ = ("session_id", "strategy_name", "bundle", "metrics", "raw_size_bytes", "codec", "sha256", "chunk_size_bytes", "upload_credential")
    class MetricsEntry(_message.Message):
        __slots__ = ("key", "value")
        KEY_FIELD_NUMBER: _ClassVar[int]
        VALUE_FIELD_NUMBER: _ClassVar[int]
        key: str
        value: float
        def __init__(self, key: _Optional[str] = ..., value: _Optional[float] = ...) -> None: ...
    SESSION_ID_FIELD_NUMBER: _ClassVar[int]
    STRATEGY_NAME_FIELD_NUMBER: _ClassVar[int]
    BUNDLE_FIELD_NUMBER: _ClassVar[int]
    METRICS_FIELD_NUMBER: _ClassVar[int]
    RAW_SIZE_BYTES_FIELD_NUMBER: _ClassVar[int]
    CODEC_FIELD_NUMBER: _ClassVar[int]
    SHA256_FIELD_NUMBER: _ClassVar[int]
    CHUNK_SIZE_BYTES_FIELD_NUMBER: _ClassVar[int]
    UPLOAD_CREDENTIAL_FIELD_NUMBER: _ClassVar[int]
    session_id: str
    strategy_name: str
    bundle: BundleSummary
    metrics: _containers.ScalarMap[str, float]
    raw_size_bytes: int
    codec: Codec
    sha256: str
    chunk_size_bytes: int
    upload_credential: str
    def __init__(self, session_id: _Optional[str] = ..., strategy_name: _Optional[str] = ..., bundle: _Optional[_Union[BundleSummary, _Mapping]] = ..., metrics: _Optional[_Mapping[str, float]] = ..., raw_size_bytes: _Optional[int] = ..., codec: _Optional[_Union[Codec, str]] = ..., sha256: _Optional[str] = ..., chunk_size_bytes: _Optional[int] = ..., upload_credential: _Optional[str] = ...) -> None: ...

class SubmitResultsChunk(_message.Message):
    __slots__ = ("data", "index")
    DATA_FIELD_NUMBER: _ClassVar[int]
    INDEX_FIELD_NUMBER: _ClassVar[int]
    data: bytes
    index: int
    def __init__(self, data: _Optional[bytes] = ..., index: _Optional[int] = ...) -> None: ...

class SubmitResultsTrailer(_message.Message):
    __slots__ = ("chunk_count", "encoded_size_bytes")
    CHUNK_COUNT_FIELD_NUMBER: _ClassVar[int]
    ENCODED_SIZE_BYTES_FIELD_NUMBER: _ClassVar[int]
    chunk_count: int
    encoded_size_bytes: int
    def __init__(self, chunk_count: _Optional[int] = ..., encoded_size_bytes: _Optional[int] = ...) -> None: ...

class SubmitResultsRequest(_message.Message):
    __slots__ = ("header", "chunk", "trailer")
    HEADER_FIELD_NUMBER: _ClassVar[int]
    CHUNK_FIELD_NUMBER: _ClassVar[int]
    TRAILER_FIELD_NUMBER: _ClassVar[int]
    header: SubmitResultsHeader
    chunk: SubmitResultsChunk
    trailer: SubmitResultsTrailer
    def __init__(self, header: _Optional[_Union[SubmitResultsHeader, _Mapping]] = ..., chunk: _Optional[_Union[SubmitResultsChunk, _Mapping]] = ..., trailer: _Optional[_Union[SubmitResultsTrailer, _Mapping]] = ...) -> None: ...

class SubmitResultsResponse(_message.Message):
    __slots__ = ("model", "duplicate", "sha256", "raw_size_bytes")
    MODEL_FIELD_NUMBER: _ClassVar[int]
    DUPLICATE_FIELD_NUMBER: _ClassVar[int]
    SHA256_FIELD_NUMBER: _ClassVar[int]
    RAW_SIZE_BYTES_FIELD_NUMBER: _ClassVar[int]
    model: _common_pb2.ModelReference
    duplicate: bool
    sha256: str
    raw_size_bytes: int
    def __init__(self, model: _Optional[_Union[_common_pb2.ModelReference, _Mapping]] = ..., duplicate: _Optional[bool] = ..., sha256: _Optional[str] = ..., raw_size_bytes: _Optional[int] = ...) -> None: ...

class ModelVersion(_message.Message):
    __slots__ = ("version", "created_time", "test_metrics", "path", "operation_id", "aliases", "tags", "lineage", "sha256", "strategy_name")
    class TestMetricsEntry(_message.Message):
        __slots__ = ("key", "value")
        KEY_FIELD_NUMBER: _ClassVar[int]
        VALUE_FIELD_NUMBER: _ClassVar[int]
        key: str
        value: float
        def __init__(self, key: _Optional[str] = ..., value: _Optional[float] = ...) -> None: ...
    VERSION_FIELD_NUMBER: _ClassVar[int]
    CREATED_TIME_FIELD_NUMBER: _ClassVar[int]
    TEST_METRICS_FIELD_NUMBER: _ClassVar[int]
    PATH_FIELD_NUMBER: _ClassVar[int]
    OPERATION_ID_FIELD_NUMBER: _ClassVar[int]
    ALIASES_FIELD_NUMBER: _ClassVar[int]
    TAGS_FIELD_NUMBER: _ClassVar[int]
    LINEAGE_FIELD_NUMBER: _ClassVar[int]
    SHA256_FIELD_NUMBER: _ClassVar[int]
    STRATEGY_NAME_FIELD_NUMBER: _ClassVar[int]
    version: int
    created_time: _timestamp_pb2.Timestamp
    test_metrics: _containers.ScalarMap[str, float]
    path: str
    operation_id: str
    aliases: _containers.RepeatedScalarFieldContainer[str]
    tags: _containers.RepeatedScalarFieldContainer[str]
    lineage: ModelLineage
    sha256: str
    strategy_name: str
    def __init__(self, version: _Optional[int] = ..., created_time: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., test_metrics: _Optional[_Mapping[str, float]] = ..., path: _Optional[str] = ..., operation_id: _Optional[str] = ..., aliases: _Optional[_Iterable[str]] = ..., tags: _Optional[_Iterable[str]] = ..., lineage: _Optional[_Union[ModelLineage, _Mapping]] = ..., sha256: _Optional[str] = ..., strategy_name: _Optional[str] = ...) -> None: ...

class StrategyModels(_message.Message):
    __slots__ = ("strategy_name", "versions")
    STRATEGY_NAME_FIELD_NUMBER: _ClassVar[int]
    VERSIONS_FIELD_NUMBER: _ClassVar[int]
    strategy_name: str
    versions: _containers.RepeatedCompositeFieldContainer[ModelVersion]
    def __init__(self, strategy_name: _Optional[str] = ..., versions: _Optional[_Iterable[_Union[ModelVersion, _Mapping]]] = ...) -> None: ...

class ListModelsRequest(_message.Message):
    __slots__ = ("strategy_name", "alias", "tag", "order_by", "descending", "page_size", "page_token")
    STRATEGY_NAME_FIELD_NUMBER: _ClassVar[int]
    ALIAS_FIELD_NUMBER: _ClassVar[int]
    TAG_FIELD_NUMBER: _ClassVar[int]
    ORDER_BY_FIELD_NUMBER: _ClassVar[int]
    DESCENDING_FIELD_NUMBER: _ClassVar[int]
    PAGE_SIZE_FIELD_NUMBER: _ClassVar[int]
    PAGE_TOKEN_FIELD_NUMBER: _ClassVar[int]
    strategy_name: str
    alias: str
    tag: str
    order_by: str
    descending: bool
    page_size: int
    page_token: str
    def __init__(self, strategy_name: _Optional[str] = ..., alias: _Optional[str] = ..., tag: _Optional[str] = ..., order_by: _Optional[str] = ..., descending: _Optional[bool] = ..., page_size: _Optional[int] = ..., page_token: _Optional[str] = ...) -> None: ...

class ListModelsResponse(_message.Message):
    __slots__ = ("strategies", "next_page_token", "models")
    STRATEGIES_FIELD_NUMBER: _ClassVar[int]
    NEXT_PAGE_TOKEN_FIELD_NUMBER: _ClassVar[int]
    MODELS_FIELD_NUMBER: _ClassVar[int]
    strategies: _containers.RepeatedCompositeFieldContainer[StrategyModels]
    next_page_token: str
    models: _containers.RepeatedCompositeFieldContainer[ModelVersion]
    def __init__(self, strategies: _Optional[_Iterable[_Union[StrategyModels, _Mapping]]] = ..., next_page_token: _Optional[str] = ..., models: _Optional[_Iterable[_Union[ModelVersion, _Mapping]]] = ...) -> None: ...

class ModelLineage(_message.Message):
    __slots__ = ("operation_id", "seed", "device", "mode", "host_address", "owner", "duration_s")
    OPERATION_ID_FIELD_NUMBER: _ClassVar[int]
    SEED_FIELD_NUMBER: _ClassVar[int]
    DEVICE_FIELD_NUMBER: _ClassVar[int]
    MODE_FIELD_NUMBER: _ClassVar[int]
    HOST_ADDRESS_FIELD_NUMBER: _ClassVar[int]
    OWNER_FIELD_NUMBER: _ClassVar[int]
    DURATION_S_FIELD_NUMBER: _ClassVar[int]
    operation_id: str
    seed: int
    device: str
    mode: ExecutionMode
    host_address: str
    owner: str
    duration_s: float
    def __init__(self, operation_id: _Optional[str] = ..., seed: _Optional[int] = ..., device: _Optional[str] = ..., mode: _Optional[_Union[ExecutionMode, str]] = ..., host_address: _Optional[str] = ..., owner: _Optional[str] = ..., duration_s: _Optional[float] = ...) -> None: ...

class EpochMetrics(_message.Message):
    __slots__ = ("epoch", "metrics")
    class MetricsEntry(_message.Message):
        __slots__ = ("key", "value")
        KEY_FIELD_NUMBER: _ClassVar[int]
        VALUE_FIELD_NUMBER: _ClassVar[int]
        key: str
        value: float
        def __init__(self, key: _Optional[str] = ..., value: _Optional[float] = ...) -> None: ...
    EPOCH_FIELD_NUMBER: _ClassVar[int]
    METRICS_FIELD_NUMBER: _ClassVar[int]
    epoch: int
    metrics: _containers.ScalarMap[str, float]
    def __init__(self, epoch: _Optional[int] = ..., metrics: _Optional[_Mapping[str, float]] = ...) -> None: ...

class ModelSelector(_message.Message):
    __slots__ = ("strategy_name", "version", "alias")
    STRATEGY_NAME_FIELD_NUMBER: _ClassVar[int]
    VERSION_FIELD_NUMBER: _ClassVar[int]
    ALIAS_FIELD_NUMBER: _ClassVar[int]
    strategy_name: str
    version: int
    alias: str
    def __init__(self, strategy_name: _Optional[str] = ..., version: _Optional[int] = ..., alias: _Optional[str] = ...) -> None: ...

class ModelDetails(_message.Message):
    __slots__ = ("version", "history", "symbols", "timeframes", "size_bytes", "model_type", "feature_count", "metrics", "ktrdr_version")
    class MetricsEntry(_message.Message):
        __slots__ = ("key", "value")
        KEY_FIELD_NUMBER: _ClassVar[int]
        VALUE_FIELD_NUMBER: _ClassVar[int]
        key: str
        value: float
        def __init__(self, key: _Optional[str] = ..., value: _Optional[float] = ...) -> None: ...
    VERSION_FIELD_NUMBER: _ClassVar[int]
    HISTORY_FIELD_NUMBER: _ClassVar[int]
    SYMBOLS_FIELD_NUMBER: _ClassVar[int]
    TIMEFRAMES_FIELD_NUMBER: _ClassVar[int]
    SIZE_BYTES_FIELD_NUMBER: _ClassVar[int]
    MODEL_TYPE_FIELD_NUMBER: _ClassVar[int]
    FEATURE_COUNT_FIELD_NUMBER: _ClassVar[int]
    METRICS_FIELD_NUMBER: _ClassVar[int]
    KTRDR_VERSION_FIELD_NUMBER: _ClassVar[int]
    version: ModelVersion
    history: _containers.RepeatedCompositeFieldContainer[EpochMetrics]
    symbols: _containers.RepeatedScalarFieldContainer[str]
    timeframes: _containers.RepeatedScalarFieldContainer[str]
    size_bytes: int
    model_type: str
    feature_count: int
    metrics: _containers.ScalarMap[str, float]
    ktrdr_version: str
    def __init__(self, version: _Optional[_Union[ModelVersion, _Mapping]] = ..., history: _Optional[_Iterable[_Union[EpochMetrics, _Mapping]]] = ..., symbols: _Optional[_Iterable[str]] = ..., timeframes: _Optional[_Iterable[str]] = ..., size_bytes: _Optional[int] = ..., model_type: _Optional[str] = ..., feature_count: _Optional[int] = ..., metrics: _Optional[_Mapping[str, float]] = ..., ktrdr_version: _Optional[str] = ...) -> None: ...

class GetModelRequest(_message.Message):
    __slots__ = ("model",)
    MODEL_FIELD_NUMBER: _ClassVar[int]
    model: ModelSelector
    def __init__(self, model: _Optional[_Union[ModelSelector, _Mapping]] = ...) -> None: ...

class GetModelResponse(_message.Message):
    __slots__ = ("model",)
    MODEL_FIELD_NUMBER: _ClassVar[int]
    model: ModelDetails
    def __init__(self, model: _Optional[_Union[ModelDetails, _Mapping]] = ...) -> None: ...

class DownloadModelRequest(_message.Message):
    __slots__ = ("model", "offset", "codec", "chunk_size_bytes", "expected_sha256")
    MODEL_FIELD_NUMBER: _ClassVar[int]
    OFFSET_FIELD_NUMBER: _ClassVar[int]
    CODEC_FIELD_NUMBER: _ClassVar[int]
    CHUNK_SIZE_BYTES_FIELD_NUMBER: _ClassVar[int]
    EXPECTED_SHA256_FIELD_NUMBER: _ClassVar[int]
    model: ModelSelector
    offset: int
    codec: Codec
    chunk_size_bytes: int
    expected_sha256: str
    def __init__(self, model: _Optional[_Union[ModelSelector, _Mapping]] = ..., offset: _Optional[int] = ..., codec: _Optional[_Union[Codec, str]] = ..., chunk_size_bytes: _Optional[int] = ..., expected_sha256: _Optional[str] = ...) -> None: ...

class DownloadModelHeader(_message.Message):
    __slots__ = ("model", "raw_size_bytes", "sha256", "codec", "chunk_size_bytes", "offset")
    MODEL_FIELD_NUMBER: _ClassVar[int]
    RAW_SIZE_BYTES_FIELD_NUMBER: _ClassVar[int]
    SHA256_FIELD_NUMBER: _ClassVar[int]
    CODEC_FIELD_NUMBER: _ClassVar[int]
    CHUNK_SIZE_BYTES_FIELD_NUMBER: _ClassVar[int]
    OFFSET_FIELD_NUMBER: _ClassVar[int]
    model: _common_pb2.ModelReference
    raw_size_bytes: int
    sha256: str
    codec: Codec
    chunk_size_bytes: int
    offset: int
    def __init__(self, model: _Optional[_Union[_common_pb2.ModelReference, _Mapping]] = ..., raw_size_bytes: _Optional[int] = ..., sha256: _Optional[str] = ..., codec: _Optional[_Union[Codec, str]] = ..., chunk_size_bytes: _Optional[int] = ..., offset: _Optional[int] = ...) -> None: ...

class DownloadModelResponse(_message.Message):
    __slots__ = ("header", "chunk", "trailer")
    HEADER_FIELD_NUMBER: _ClassVar[int]
    CHUNK_FIELD_NUMBER: _ClassVar[int]
    TRAILER_FIELD_NUMBER: _ClassVar[int]
    header: DownloadModelHeader
    chunk: SubmitResultsChunk
    trailer: SubmitResultsTrailer
    def __init__(self, header: _Optional[_Union[DownloadModelHeader, _Mapping]] = ..., chunk: _Optional[_Union[SubmitResultsChunk, _Mapping]] = ..., trailer: _Optional[_Union[SubmitResultsTrailer, _Mapping]] = ...) -> None: ...

class DeleteModelRequest(_message.Message):
    __slots__ = ("strategy_name", "version", "force")
    STRATEGY_NAME_FIELD_NUMBER: _ClassVar[int]
    VERSION_FIELD_NUMBER: _ClassVar[int]
    FORCE_FIELD_NUMBER: _ClassVar[int]
    strategy_name: str
    version: int
    force: bool
    def __init__(self, strategy_name: _Optional[str] = ..., version: _Optional[int] = ..., force: _Optional[bool] = ...) -> None: ...

class DeleteModelResponse(_message.Message):
    __slots__ = ("model", "removed_aliases")
    MODEL_FIELD_NUMBER: _ClassVar[int]
    REMOVED_ALIASES_FIELD_NUMBER: _ClassVar[int]
    model: _common_pb2.ModelReference
    removed_aliases: _containers.RepeatedScalarFieldContainer[str]
    def __init__(self, model: _Optional[_Union[_common_pb2.ModelReference, _Mapping]] = ..., removed_aliases: _Optional[_Iterable[str]] = ...) -> None: ...

class SetModelAliasRequest(_message.Message):
    __slots__ = ("strategy_name", "alias", "version")
    STRATEGY_NAME_FIELD_NUMBER: _ClassVar[int]
    ALIAS_FIELD_NUMBER: _ClassVar[int]
    VERSION_FIELD_NUMBER: _ClassVar[int]
    strategy_name: str
    alias: str
    version: int
    def __init__(self, strategy_name: _Optional[str] = ..., alias: _Optional[str] = ..., version: _Optional[int] = ...) -> None: ...

class SetModelAliasResponse(_message.Message):
    __slots__ = ("model", "previous_version")
    MODEL_FIELD_NUMBER: _ClassVar[int]
    PREVIOUS_VERSION_FIELD_NUMBER: _ClassVar[int]
    model: _common_pb2.ModelReference
    previous_version: int
    def __init__(self, model: _Optional[_Union[_common_pb2.ModelReference, _Mapping]] = ..., previous_version: _Optional[int] = ...) -> None: ...

class DeleteModelAliasRequest(_message.Message):
    __slots__ = ("strategy_name", "alias")
    STRATEGY_NAME_FIELD_NUMBER: _ClassVar[int]
    ALIAS_FIELD_NUMBER: _ClassVar[int]
    strategy_name: str
    alias: str
    def __init__(self, strategy_name: _Optional[str] = ..., alias: _Optional[str] = ...) -> None: ...

class DeleteModelAliasResponse(_message.Message):
    __slots__ = ("version",)
    VERSION_FIELD_NUMBER: _ClassVar[int]
    version: int
    def __init__(self, version: _Optional[int] = ...) -> None: ...

class SetModelTagsRequest(_message.Message):
    __slots__ = ("strategy_name", "version", "add", "remove")
    STRATEGY_NAME_FIELD_NUMBER: _ClassVar[int]
    VERSION_FIELD_NUMBER: _ClassVar[int]
    ADD_FIELD_NUMBER: _ClassVar[int]
    REMOVE_FIELD_NUMBER: _ClassVar[int]
    strategy_name: str
    version: int
    add: _containers.RepeatedScalarFieldContainer[str]
    remove: _containers.RepeatedScalarFieldContainer[str]
    def __init__(self, strategy_name: _Optional[str] = ..., version: _Optional[int] = ..., add: _Optional[_Iterable[str]] = ..., remove: _Optional[_Iterable[str]] = ...) -> None: ...

class SetModelTagsResponse(_message.Message):
    __slots__ = ("model", "tags")
    MODEL_FIELD_NUMBER: _ClassVar[int]
    TAGS_FIELD_NUMBER: _ClassVar[int]
    model: _common_pb2.ModelReference
    tags: _containers.RepeatedScalarFieldContainer[str]
    def __init__(self, model: _Optional[_Union[_common_pb2.ModelReference, _Mapping]] = ..., tags: _Optional[_Iterable[str]] = ...) -> None: ...

class StrategyInfo(_message.Message):
    __slots__ = ("name", "status", "latest_version", "last_operation_id")
    NAME_FIELD_NUMBER: _ClassVar[int]
    STATUS_FIELD_NUMBER: _ClassVar[int]
    LATEST_VERSION_FIELD_NUMBER: _ClassVar[int]
    LAST_OPERATION_ID_FIELD_NUMBER: _ClassVar[int]
    name: str
    status: StrategyStatus
    latest_version: int
    last_operation_id: str
    def __init__(self, name: _Optional[str] = ..., status: _Optional[_Union[StrategyStatus, str]] = ..., latest_version: _Optional[int] = ..., last_operation_id: _Optional[str] = ...) -> None: ...

class ListStrategiesRequest(_message.Message):
    __slots__ = ()
    def __init__(self) -> None: ...

class ListStrategiesResponse(_message.Message):
    __slots__ = ("strategies",)
    STRATEGIES_FIELD_NUMBER: _ClassVar[int]
    strategies: _containers.RepeatedCompositeFieldContainer[StrategyInfo]
    def __init__(self, strategies: _Optional[_Iterable[_Union[StrategyInfo, _Mapping]]] = ...) -> None: ...

class FloatRange(_message.Message):
    __slots__ = ("low", "high", "log")
    LOW_FIELD_NUMBER: _ClassVar[int]
    HIGH_FIELD_NUMBER: _ClassVar[int]
    LOG_FIELD_NUMBER: _ClassVar[int]
    low: float
    high: float
    log: bool
    def __init__(self, low: _Optional[float] = ..., high: _Optional[float] = ..., log: _Optional[bool] = ...) -> None: ...

class IntRange(_message.Message):
    __slots__ = ("low", "high", "step", "log")
    LOW_FIELD_NUMBER: _ClassVar[int]
    HIGH_FIELD_NUMBER: _ClassVar[int]
    STEP_FIELD_NUMBER: _ClassVar[int]
    LOG_FIELD_NUMBER: _ClassVar[int]
    low: int
    high: int
    step: int
    log: bool
    def __init__(self, low: _Optional[int] = ..., high: _Optional[int] = ..., step: _Optional[int] = ..., log: _Optional[bool] = ...) -> None: ...

class Choices(_message.Message):
    __slots__ = ("values",)
    VALUES_FIELD_NUMBER: _ClassVar[int]
    values: _containers.RepeatedScalarFieldContainer[str]
    def __init__(self, values: _Optional[_Iterable[str]] = ...) -> None: ...

class SweepParameter(_message.Message):
    __slots__ = ("path", "float_range", "int_range", "choices")
    PATH_FIELD_NUMBER: _ClassVar[int]
    FLOAT_RANGE_FIELD_NUMBER: _ClassVar[int]
    INT_RANGE_FIELD_NUMBER: _ClassVar[int]
    CHOICES_FIELD_NUMBER: _ClassVar[int]
    path: str
    float_range: FloatRange
    int_range: IntRange
    choices: Choices
    def __init__(self, path: _Optional[str] = ..., float_range: _Optional[_Union[FloatRange, _Mapping]] = ..., int_range: _Optional[_Union[IntRange, _Mapping]] = ..., choices: _Optional[_Union[Choices, _Mapping]] = ...) -> None: ...

class CreateSweepRequest(_message.Message):
    __slots__ = ("strategy_yaml", "strategy_name", "parameters", "objective", "direction", "n_trials", "parallelism", "sampler", "pruner", "seed", "execution_mode", "require_gpu", "field_overrides", "prune_metric", "pruner_startup_trials", "pruner_warmup_epochs", "allow_test_objective")
    STRATEGY_YAML_FIELD_NUMBER: _ClassVar[int]
    STRATEGY_NAME_FIELD_NUMBER: _ClassVar[int]
    PARAMETERS_FIELD_NUMBER: _ClassVar[int]
    OBJECTIVE_FIELD_NUMBER: _ClassVar[int]
    DIRECTION_FIELD_NUMBER: _ClassVar[int]
    N_TRIALS_FIELD_NUMBER: _ClassVar[int]
    PARALLELISM_FIELD_NUMBER: _ClassVar[int]
    SAMPLER_FIELD_NUMBER: _ClassVar[int]
    PRUNER_FIELD_NUMBER: _ClassVar[int]
    SEED_FIELD_NUMBER: _ClassVar[int]
    EXECUTION_MODE_FIELD_NUMBER: _ClassVar[int]
    REQUIRE_GPU_FIELD_NUMBER: _ClassVar[int]
    FIELD_OVERRIDES_FIELD_NUMBER: _ClassVar[int]
    PRUNE_METRIC_FIELD_NUMBER: _ClassVar[int]
    PRUNER_STARTUP_TRIALS_FIELD_NUMBER: _ClassVar[int]
    PRUNER_WARMUP_EPOCHS_FIELD_NUMBER: _ClassVar[int]
    ALLOW_TEST_OBJECTIVE_FIELD_NUMBER: _ClassVar[int]
    strategy_yaml: str
    strategy_name: str
    parameters: _containers.RepeatedCompositeFieldContainer[SweepParameter]
    objective: str
    direction: ObjectiveDirection
    n_trials: int
    parallelism: int
    sampler: SweepSampler
    pruner: SweepPruner
    seed: int
    execution_mode: ExecutionMode
    require_gpu: bool
    field_overrides: _containers.RepeatedCompositeFieldContainer[_common_pb2.FieldOverride]
    prune_metric: str
    pruner_startup_trials: int
    pruner_warmup_epochs: int
    allow_test_objective: bool
    def __init__(self, strategy_yaml: _Optional[str] = ..., strategy_name: _Optional[str] = ..., parameters: _Optional[_Iterable[_Union[SweepParameter, _Mapping]]] = ..., objective: _Optional[str] = ..., direction: _Optional[_Union[ObjectiveDirection, str]] = ..., n_trials: _Optional[int] = ..., parallelism: _Optional[int] = ..., sampler: _Optional[_Union[SweepSampler, str]] = ..., pruner: _Optional[_Union[SweepPruner, str]] = ..., seed: _Optional[int] = ..., execution_mode: _Optional[_Union[ExecutionMode, str]] = ..., require_gpu: _Optional[bool] = ..., field_overrides: _Optional[_Iterable[_Union[_common_pb2.FieldOverride, _Mapping]]] = ..., prune_metric: _Optional[str] = ..., pruner_startup_trials: _Optional[int] = ..., pruner_warmup_epochs: _Optional[int] = ..., allow_test_objective: _Optional[bool] = ...) -> None: ...

class CreateSweepResponse(_message.Message):
    __slots__ = ("sweep",)
    SWEEP_FIELD_NUMBER: _ClassVar[int]
    sweep: Sweep
    def __init__(self, sweep: _Optional[_Union[Sweep, _Mapping]] = ...) -> None: ...

class SweepTrial(_message.Message):
    __slots__ = ("number", "status", "params", "value", "operation_id", "pruned_at_epoch", "last_epoch", "metrics", "started_time", "finished_time", "error")
    class ParamsEntry(_message.Message):
        __slots__ = ("key", "value")
        KEY_FIELD_NUMBER: _ClassVar[int]
        VALUE_FIELD_NUMBER: _ClassVar[int]
        key: str
        value: str
        def __init__(self, key: _Optional[str] = ..., value: _Optional[str] = ...) -> None: ...
    class MetricsEntry(_message.Message):
        __slots__ = ("key", "value")
        KEY_FIELD_NUMBER: _ClassVar[int]
        VALUE_FIELD_NUMBER: _ClassVar[int]
        key: str
        value: float
        def __init__(self, key: _Optional[str] = ..., value: _Optional[float] = ...) -> None: ...
    NUMBER_FIELD_NUMBER: _ClassVar[int]
    STATUS_FIELD_NUMBER: _ClassVar[int]
    PARAMS_FIELD_NUMBER: _ClassVar[int]
    VALUE_FIELD_NUMBER: _ClassVar[int]
    OPERATION_ID_FIELD_NUMBER: _ClassVar[int]
    PRUNED_AT_EPOCH_FIELD_NUMBER: _ClassVar[int]
    LAST_EPOCH_FIELD_NUMBER: _ClassVar[int]
    METRICS_FIELD_NUMBER: _ClassVar[int]
    STARTED_TIME_FIELD_NUMBER: _ClassVar[int]
    FINISHED_TIME_FIELD_NUMBER: _ClassVar[int]
    ERROR_FIELD_NUMBER: _ClassVar[int]
    number: int
    status: TrialStatus
    params: _containers.ScalarMap[str, str]
    value: float
    operation_id: str
    pruned_at_epoch: int
    last_epoch: int
    metrics: _containers.ScalarMap[str, float]
    started_time: _timestamp_pb2.Timestamp
    finished_time: _timestamp_pb2.Timestamp
    error: _common_pb2.ErrorDetail
    def __init__(self, number: _Optional[int] = ..., status: _Optional[_Union[TrialStatus, str]] = ..., params: _Optional[_Mapping[str, str]] = ..., value: _Optional[float] = ..., operation_id: _Optional[str] = ..., pruned_at_epoch: _Optional[int] = ..., last_epoch: _Optional[int] = ..., metrics: _Optional[_Mapping[str, float]] = ..., started_time: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., finished_time: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., error: _Optional[_Union[_common_pb2.ErrorDetail, _Mapping]] = ...) -> None: ...

class Sweep(_message.Message):
    __slots__ = ("sweep_id", "status", "strategy_name", "parameters", "objective", "direction", "n_trials", "parallelism", "sampler", "pruner", "seed", "execution_mode", "owner", "created_time", "finished_time", "trials", "best_trial", "trial_counts", "prune_metric", "error", "selected_on_test", "deflated_sharpe", "backtest_overfitting")
    class TrialCountsEntry(_message.Message):
        __slots__ = ("key", "value")
        KEY_FIELD_NUMBER: _ClassVar[int]
        VALUE_FIELD_NUMBER: _ClassVar[int]
        key: str
        value: int
        def __init__(self, key: _Optional[str] = ..., value: _Optional[int] = ...) -> None: ...
    SWEEP_ID_FIELD_NUMBER: _ClassVar[int]
    STATUS_FIELD_NUMBER: _ClassVar[int]
    STRATEGY_NAME_FIELD_NUMBER: _ClassVar[int]
    PARAMETERS_FIELD_NUMBER: _ClassVar[int]
    OBJECTIVE_FIELD_NUMBER: _ClassVar[int]
    DIRECTION_FIELD_NUMBER: _ClassVar[int]
    N_TRIALS_FIELD_NUMBER: _ClassVar[int]
    PARALLELISM_FIELD_NUMBER: _ClassVar[int]
    SAMPLER_FIELD_NUMBER: _ClassVar[int]
    PRUNER_FIELD_NUMBER: _ClassVar[int]
    SEED_FIELD_NUMBER: _ClassVar[int]
    EXECUTION_MODE_FIELD_NUMBER: _ClassVar[int]
    OWNER_FIELD_NUMBER: _ClassVar[int]
    CREATED_TIME_FIELD_NUMBER: _ClassVar[int]
    FINISHED_TIME_FIELD_NUMBER: _ClassVar[int]
    TRIALS_FIELD_NUMBER: _ClassVar[int]
    BEST_TRIAL_FIELD_NUMBER: _ClassVar[int]
    TRIAL_COUNTS_FIELD_NUMBER: _ClassVar[int]
    PRUNE_METRIC_FIELD_NUMBER: _ClassVar[int]
    ERROR_FIELD_NUMBER: _ClassVar[int]
    SELECTED_ON_TEST_FIELD_NUMBER: _ClassVar[int]
    DEFLATED_SHARPE_FIELD_NUMBER: _ClassVar[int]
    BACKTEST_OVERFITTING_FIELD_NUMBER: _ClassVar[int]
    sweep_id: str
    status: SweepStatus
    strategy_name: str
    parameters: _containers.RepeatedCompositeFieldContainer[SweepParameter]
    objective: str
    direction: ObjectiveDirection
    n_trials: int
    parallelism: int
    sampler: SweepSampler
    pruner: SweepPruner
    seed: int
    execution_mode: ExecutionMode
    owner: str
    created_time: _timestamp_pb2.Timestamp
    finished_time: _timestamp_pb2.Timestamp
    trials: _containers.RepeatedCompositeFieldContainer[SweepTrial]
    best_trial: SweepTrial
    trial_counts: _containers.ScalarMap[str, int]
    prune_metric: str
    error: _common_pb2.ErrorDetail
    selected_on_test: bool
    deflated_sharpe: DeflatedSharpe
    backtest_overfitting: BacktestOverfitting
    def __init__(self, sweep_id: _Optional[str] = ..., status: _Optional[_Union[SweepStatus, str]] = ..., strategy_name: _Optional[str] = ..., parameters: _Optional[_Iterable[_Union[SweepParameter, _Mapping]]] = ..., objective: _Optional[str] = ..., direction: _Optional[_Union[ObjectiveDirection, str]] = ..., n_trials: _Optional[int] = ..., parallelism: _Optional[int] = ..., sampler: _Optional[_Union[SweepSampler, str]] = ..., pruner: _Optional[_Union[SweepPruner, str]] = ..., seed: _Optional[int] = ..., execution_mode: _Optional[_Union[ExecutionMode, str]] = ..., owner: _Optional[str] = ..., created_time: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., finished_time: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., trials: _Optional[_Iterable[_Union[SweepTrial, _Mapping]]] = ..., best_trial: _Optional[_Union[SweepTrial, _Mapping]] = ..., trial_counts: _Optional[_Mapping[str, int]] = ..., prune_metric: _Optional[str] = ..., error: _Optional[_Union[_common_pb2.ErrorDetail, _Mapping]] = ..., selected_on_test: _Optional[bool] = ..., deflated_sharpe: _Optional[_Union[DeflatedSharpe, _Mapping]] = ..., backtest_overfitting: _Optional[_Union[BacktestOverfitting, _Mapping]] = ...) -> None: ...

class BacktestOverfitting(_message.Message):
    __slots__ = ("probability", "reason", "n_trials", "n_folds", "combinations", "metric", "description")
    PROBABILITY_FIELD_NUMBER: _ClassVar[int]
    REASON_FIELD_NUMBER: _ClassVar[int]
    N_TRIALS_FIELD_NUMBER: _ClassVar[int]
    N_FOLDS_FIELD_NUMBER: _ClassVar[int]
    COMBINATIONS_FIELD_NUMBER: _ClassVar[int]
    METRIC_FIELD_NUMBER: _ClassVar[int]
    DESCRIPTION_FIELD_NUMBER: _ClassVar[int]
    probability: float
    reason: str
    n_trials: int
    n_folds: int
    combinations: int
    metric: str
    description: str
    def __init__(self, probability: _Optional[float] = ..., reason: _Optional[str] = ..., n_trials: _Optional[int] = ..., n_folds: _Optional[int] = ..., combinations: _Optional[int] = ..., metric: _Optional[str] = ..., description: _Optional[str] = ...) -> None: ...

class DeflatedSharpe(_message.Message):
    __slots__ = ("probability", "reason", "n_trials", "trial_number", "sharpe", "expected_max_sharpe", "observations", "description")
    PROBABILITY_FIELD_NUMBER: _ClassVar[int]
    REASON_FIELD_NUMBER: _ClassVar[int]
    N_TRIALS_FIELD_NUMBER: _ClassVar[int]
    TRIAL_NUMBER_FIELD_NUMBER: _ClassVar[int]
    SHARPE_FIELD_NUMBER: _ClassVar[int]
    EXPECTED_MAX_SHARPE_FIELD_NUMBER: _ClassVar[int]
    OBSERVATIONS_FIELD_NUMBER: _ClassVar[int]
    DESCRIPTION_FIELD_NUMBER: _ClassVar[int]
    probability: float
    reason: str
    n_trials: int
    trial_number: int
    sharpe: float
    expected_max_sharpe: float
    observations: int
    description: str
    def __init__(self, probability: _Optional[float] = ..., reason: _Optional[str] = ..., n_trials: _Optional[int] = ..., trial_number: _Optional[int] = ..., sharpe: _Optional[float] = ..., expected_max_sharpe: _Optional[float] = ..., observations: _Optional[int] = ..., description: _Optional[str] = ...) -> None: ...

class SweepEvent(_message.Message):
    __slots__ = ("kind", "trial", "epoch", "metrics", "sweep", "message", "timestamp")
    class MetricsEntry(_message.Message):
        __slots__ = ("key", "value")
        KEY_FIELD_NUMBER: _ClassVar[int]
        VALUE_FIELD_NUMBER: _ClassVar[int]
        key: str
        value: float
        def __init__(self, key: _Optional[str] = ..., value: _Optional[float] = ...) -> None: ...
    KIND_FIELD_NUMBER: _ClassVar[int]
    TRIAL_FIELD_NUMBER: _ClassVar[int]
    EPOCH_FIELD_NUMBER: _ClassVar[int]
    METRICS_FIELD_NUMBER: _ClassVar[int]
    SWEEP_FIELD_NUMBER: _ClassVar[int]
    MESSAGE_FIELD_NUMBER: _ClassVar[int]
    TIMESTAMP_FIELD_NUMBER: _ClassVar[int]
    kind: SweepEventKind
    trial: SweepTrial
    epoch: int
    metrics: _containers.ScalarMap[str, float]
    sweep: Sweep
    message: str
    timestamp: _timestamp_pb2.Timestamp
    def __init__(self, kind: _Optional[_Union[SweepEventKind, str]] = ..., trial: _Optional[_Union[SweepTrial, _Mapping]] = ..., epoch: _Optional[int] = ..., metrics: _Optional[_Mapping[str, float]] = ..., sweep: _Optional[_Union[Sweep, _Mapping]] = ..., message: _Optional[str] = ..., timestamp: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ...) -> None: ...

class WatchSweepRequest(_message.Message):
    __slots__ = ("sweep_id",)
    SWEEP_ID_FIELD_NUMBER: _ClassVar[int]
    sweep_id: str
    def __init__(self, sweep_id: _Optional[str] = ...) -> None: ...

class WatchSweepResponse(_message.Message):
    __slots__ = ("event",)
    EVENT_FIELD_NUMBER: _ClassVar[int]
    event: SweepEvent
    def __init__(self, event: _Optional[_Union[SweepEvent, _Mapping]] = ...) -> None: ...

class GetSweepRequest(_message.Message):
    __slots__ = ("sweep_id",)
    SWEEP_ID_FIELD_NUMBER: _ClassVar[int]
    sweep_id: str
    def __init__(self, sweep_id: _Optional[str] = ...) -> None: ...

class GetSweepResponse(_message.Message):
    __slots__ = ("sweep",)
    SWEEP_FIELD_NUMBER: _ClassVar[int]
    sweep: Sweep
    def __init__(self, sweep: _Optional[_Union[Sweep, _Mapping]] = ...) -> None: ...

class ListSweepsRequest(_message.Message):
    __slots__ = ("status", "owner", "page_size", "page_token")
    STATUS_FIELD_NUMBER: _ClassVar[int]
    OWNER_FIELD_NUMBER: _ClassVar[int]
    PAGE_SIZE_FIELD_NUMBER: _ClassVar[int]
    PAGE_TOKEN_FIELD_NUMBER: _ClassVar[int]
    status: SweepStatus
    owner: str
    page_size: int
    page_token: str
    def __init__(self, status: _Optional[_Union[SweepStatus, str]] = ..., owner: _Optional[str] = ..., page_size: _Optional[int] = ..., page_token: _Optional[str] = ...) -> None: ...

class ListSweepsResponse(_message.Message):
    __slots__ = ("sweeps", "next_page_token")
    SWEEPS_FIELD_NUMBER: _ClassVar[int]
    NEXT_PAGE_TOKEN_FIELD_NUMBER: _ClassVar[int]
    sweeps: _containers.RepeatedCompositeFieldContainer[Sweep]
    next_page_token: str
    def __init__(self, sweeps: _Optional[_Iterable[_Union[Sweep, _Mapping]]] = ..., next_page_token: _Optional[str] = ...) -> None: ...

class CancelSweepRequest(_message.Message):
    __slots__ = ("sweep_id", "reason")
    SWEEP_ID_FIELD_NUMBER: _ClassVar[int]
    REASON_FIELD_NUMBER: _ClassVar[int]
    sweep_id: str
    reason: str
    def __init__(self, sweep_id: _Optional[str] = ..., reason: _Optional[str] = ...) -> None: ...

class CancelSweepResponse(_message.Message):
    __slots__ = ("sweep",)
    SWEEP_FIELD_NUMBER: _ClassVar[int]
    sweep: Sweep
    def __init__(self, sweep: _Optional[_Union[Sweep, _Mapping]] = ...) -> None: ...
