import datetime

from google.protobuf import timestamp_pb2 as _timestamp_pb2
from ktrdr.training.v1 import common_pb2 as _common_pb2
from google.protobuf.internal import containers as _containers
from google.protobuf.internal import enum_type_wrapper as _enum_type_wrapper
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from collections.abc import Iterable as _Iterable, Mapping as _Mapping
from typing import ClassVar as _ClassVar, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class SessionState(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    SESSION_STATE_UNSPECIFIED: _ClassVar[SessionState]
    SESSION_STATE_RUNNING: _ClassVar[SessionState]
    SESSION_STATE_CANCELLING: _ClassVar[SessionState]
    SESSION_STATE_COMPLETED: _ClassVar[SessionState]
    SESSION_STATE_FAILED: _ClassVar[SessionState]
    SESSION_STATE_CANCELLED: _ClassVar[SessionState]
    SESSION_STATE_QUEUED: _ClassVar[SessionState]

class DeviceType(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    DEVICE_TYPE_UNSPECIFIED: _ClassVar[DeviceType]
    DEVICE_TYPE_CPU: _ClassVar[DeviceType]
    DEVICE_TYPE_CUDA: _ClassVar[DeviceType]
    DEVICE_TYPE_MPS: _ClassVar[DeviceType]
SESSION_STATE_UNSPECIFIED: SessionState
SESSION_STATE_RUNNING: SessionState
SESSION_STATE_CANCELLING: SessionState
SESSION_STATE_COMPLETED: SessionState
SESSION_STATE_FAILED: SessionState
SESSION_STATE_CANCELLED: SessionState
SESSION_STATE_QUEUED: SessionState
DEVICE_TYPE_UNSPECIFIED: DeviceType
DEVICE_TYPE_CPU: DeviceType
DEVICE_TYPE_CUDA: DeviceType
DEVICE_TYPE_MPS: DeviceType

class Session(_message.Message):
    __slots__ = ("session_id", "state", "strategy_name", "device", "results_target", "created_time", "finished_time", "last_event", "error", "result", "node")
    SESSION_ID_FIELD_NUMBER: _ClassVar[int]
    STATE_FIELD_NUMBER: _ClassVar[int]
    STRATEGY_NAME_FIELD_NUMBER: _ClassVar[int]
    DEVICE_FIELD_NUMBER: _ClassVar[int]
    RESULTS_TARGET_FIELD_NUMBER: _ClassVar[int]
    CREATED_TIME_FIELD_NUMBER: _ClassVar[int]
    FINISHED_TIME_FIELD_NUMBER: _ClassVar[int]
    LAST_EVENT_FIELD_NUMBER: _ClassVar[int]
    ERROR_FIELD_NUMBER: _ClassVar[int]
    RESULT_FIELD_NUMBER: _ClassVar[int]
    NODE_FIELD_NUMBER: _ClassVar[int]
    session_id: str
    state: SessionState
    strategy_name: str
    device: str
    results_target: str
    created_time: _timestamp_pb2.Timestamp
    finished_time: _timestamp_pb2.Timestamp
    last_event: _common_pb2.ProgressEvent
    error: _common_pb2.ErrorDetail
    result: _common_pb2.ResultSummary
    node: str
    def __init__(self, session_id: _Optional[str] = ..., state: _Optional[_Union[SessionState, str]] = ..., strategy_name: _Optional[str] = ..., device: _Optional[str] = ..., results_target: _Optional[str] = ..., created_time: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., finished_time: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., last_event: _Optional[_Union[_common_pb2.ProgressEvent, _Mapping]] = ..., error: _Optional[_Union[_common_pb2.ErrorDetail, _Mapping]] = ..., result: _Optional[_Union[_common_pb2.ResultSummary, _Mapping]] = ..., node: _Optional[str] = ...) -> None: ...

class StartTrainingRequest(_message.Message):
    __slots__ = ("session_id", "strategy_yaml", "overrides", "results_target", "upload_credential")
    SESSION_ID_FIELD_NUMBER: _ClassVar[int]
    STRATEGY_YAML_FIELD_NUMBER: _ClassVar[int]
    OVERRIDES_FIELD_NUMBER: _ClassVar[int]
    RESULTS_TARGET_FIELD_NUMBER: _ClassVar[int]
    UPLOAD_CREDENTIAL_FIELD_NUMBER: _ClassVar[int]
    session_id: str
    strategy_yaml: str
    overrides: _common_pb2.TrainingOverrides
    results_target: str
    upload_credential: str
    def __init__(self, session_id: _Optional[str] = ..., strategy_yaml: _Optional[str] = ..., overrides: _Optional[_Union[_common_pb2.TrainingOverrides, _Mapping]] = ..., results_target: _Optional[str] = ..., upload_credential: _Optional[str] = ...) -> None: ...

class StartTrainingResponse(_message.Message):
    __slots__ = ("event", "state")
    EVENT_FIELD_NUMBER: _ClassVar[int]
    STATE_FIELD_NUMBER: _ClassVar[int]
    event: _common_pb2.ProgressEvent
    state: SessionState
    def __init__(self, event: _Optional[_Union[_common_pb2.ProgressEvent, _Mapping]] = ..., state: _Optional[_Union[SessionState, str]] = ...) -> None: ...

class WatchSessionRequest(_message.Message):
    __slots__ = ("session_id",)
    SESSION_ID_FIELD_NUMBER: _ClassVar[int]
    session_id: str
    def __init__(self, session_id: _Optional[str] = ...) -> None: ...

class WatchSessionResponse(_message.Message):
    __slots__ = ("event", "state")
    EVENT_FIELD_NUMBER: _ClassVar[int]
    STATE_FIELD_NUMBER: _ClassVar[int]
    event: _common_pb2.ProgressEvent
    state: SessionState
    def __init__(self, event: _Optional[_Union[_common_pb2.ProgressEvent, _Mapping]] = ..., state: _Optional[_Union[SessionState, str]] = ...) -> None: ...

class CancelTrainingRequest(_message.Message):
    __slots__ = ("session_id", "reason")
    SESSION_ID_FIELD_NUMBER: _ClassVar[int]
    REASON_FIELD_NUMBER: _ClassVar[int]
    session_id: str
    reason: str
    def __init__(self, session_id: _Optional[str] = ..., reason: _Optional[str] = ...) -> None: ...

class CancelTrainingResponse(_message.Message):
    __slots__ = ("state", "session")
    STATE_FIELD_NUMBER: _ClassVar[int]
    SESSION_FIELD_NUMBER: _ClassVar[int]
    state: SessionState
    session: Session
    def __init__(self, state: _Optional[_Union[SessionState, str]] = ..., session: _Optional[_Union[Session, _Mapping]] = ...) -> None: ...

class GetSessionRequest(_message.Message):
    __slots__ = ("session_id",)
    SESSION_ID_FIELD_NUMBER: _ClassVar[int]
    session_id: str
    def __init__(self, session_id: _Optional[str] = ...) -> None: ...

class GetSessionResponse(_message.Message):
    __slots__ = ("session",)
    SESSION_FIELD_NUMBER: _ClassVar[int]
    session: Session
    def __init__(self, session: _Optional[_Union[Session, _Mapping]] = ...) -> None: ...

class ListSessionsRequest(_message.Message):
    __slots__ = ("states",)
    STATES_FIELD_NUMBER: _ClassVar[int]
    states: _containers.RepeatedScalarFieldContainer[SessionState]
    def __init__(self, states: _Optional[_Iterable[_Union[SessionState, str]]] = ...) -> None: ...

class ListSessionsResponse(_message.Message):
    __slots__ = ("sessions",)
    SESSIONS_FIELD_NUMBER: _ClassVar[int]
    sessions: _containers.RepeatedCompositeFieldContainer[Session]
    def __init__(self, sessions: _Optional[_Iterable[_Union[Session, _Mapping]]] = ...) -> None: ...

class GetCapabilitiesRequest(_message.Message):
    __slots__ = ()
    def __init__(self) -> None: ...

class GetCapabilitiesResponse(_message.Message):
    __slots__ = ("device_type", "device_name", "accelerator_memory_bytes", "ktrdr_version", "torch_version", "python_version", "max_sessions", "active_sessions", "accepting", "cluster")
    DEVICE_TYPE_FIELD_NUMBER: _ClassVar[int]
    DEVICE_NAME_FIELD_NUMBER: _ClassVar[int]
    ACCELERATOR_MEMORY_BYTES_FIELD_NUMBER: _ClassVar[int]
    KTRDR_VERSION_FIELD_NUMBER: _ClassVar[int]
    TORCH_VERSION_FIELD_NUMBER: _ClassVar[int]
    PYTHON_VERSION_FIELD_NUMBER: _ClassVar[int]
    MAX_SESSIONS_FIELD_NUMBER: _ClassVar[int]
    ACTIVE_SESSIONS_FIELD_NUMBER: _ClassVar[int]
    ACCEPTING_FIELD_NUMBER: _ClassVar[int]
    CLUSTER_FIELD_NUMBER: _ClassVar[int]
    device_type: DeviceType
    device_name: str
    accelerator_memory_bytes: int
    ktrdr_version: str
    torch_version: str
    python_version: str
    max_sessions: int
    active_sessions: int
    accepting: bool
    cluster: ClusterInfo
    def __init__(self, device_type: _Optional[_Union[DeviceType, str]] = ..., device_name: _Optional[str] = ..., accelerator_memory_bytes: _Optional[int] = ..., ktrdr_version: _Optional[str] = ..., torch_version: _Optional[str] = ..., python_version: _Optional[str] = ..., max_sessions: _Optional[int] = ..., active_sessions: _Optional[int] = ..., accepting: _Optional[bool] = ..., cluster: _Optional[_Union[ClusterInfo, _Mapping]] = ...) -> None: ...

class ClusterInfo(_message.Message):
    __slots__ = ("address", "reachable", "node_count", "cpus", "gpus", "cpus_per_session", "running_sessions", "queued_sessions", "free_slots", "max_queued", "nodes")
    ADDRESS_FIELD_NUMBER: _ClassVar[int]
    REACHABLE_FIELD_NUMBER: _ClassVar[int]
    NODE_COUNT_FIELD_NUMBER: _ClassVar[int]
    CPUS_FIELD_NUMBER: _ClassVar[int]
    GPUS_FIELD_NUMBER: _ClassVar[int]
    CPUS_PER_SESSION_FIELD_NUMBER: _ClassVar[int]
    RUNNING_SESSIONS_FIELD_NUMBER: _ClassVar[int]
    QUEUED_SESSIONS_FIELD_NUMBER: _ClassVar[int]
    FREE_SLOTS_FIELD_NUMBER: _ClassVar[int]
    MAX_QUEUED_FIELD_NUMBER: _ClassVar[int]
    NODES_FIELD_NUMBER: _ClassVar[int]
    address: str
    reachable: bool
    node_count: int
    cpus: float
    gpus: float
    cpus_per_session: float
    running_sessions: int
    queued_sessions: int
    free_slots: int
    max_queued: int
    nodes: _containers.RepeatedCompositeFieldContainer[ClusterNode]
    def __init__(self, address: _Optional[str] = ..., reachable: _Optional[bool] = ..., node_count: _Optional[int] = ..., cpus: _Optional[float] = ..., gpus: _Optional[float] = ..., cpus_per_session: _Optional[float] = ..., running_sessions: _Optional[int] = ..., queued_sessions: _Optional[int] = ..., free_slots: _Optional[int] = ..., max_queued: _Optional[int] = ..., nodes: _Optional[_Iterable[_Union[ClusterNode, _Mapping]]] = ...) -> None: ...

class ClusterNode(_message.Message):
    __slots__ = ("node_id", "address", "cpus", "gpus", "gpu_kind", "running_sessions", "head")
    NODE_ID_FIELD_NUMBER: _ClassVar[int]
    ADDRESS_FIELD_NUMBER: _ClassVar[int]
    CPUS_FIELD_NUMBER: _ClassVar[int]
    GPUS_FIELD_NUMBER: _ClassVar[int]
    GPU_KIND_FIELD_NUMBER: _ClassVar[int]
    RUNNING_SESSIONS_FIELD_NUMBER: _ClassVar[int]
    HEAD_FIELD_NUMBER: _ClassVar[int]
    node_id: str
    address: str
    cpus: float
    gpus: float
    gpu_kind: str
    running_sessions: int
    head: bool
    def __init__(self, node_id: _Optional[str] = ..., address: _Optional[str] = ..., cpus: _Optional[float] = ..., gpus: _Optional[float] = ..., gpu_kind: _Optional[str] = ..., running_sessions: _Optional[int] = ..., head: _Optional[bool] = ...) -> None: ...
