import datetime

from google.protobuf import timestamp_pb2 as _timestamp_pb2
from ktrdr.training.v1 import host_pb2 as _host_pb2
from google.protobuf.internal import containers as _containers
from google.protobuf.internal import enum_type_wrapper as _enum_type_wrapper
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from collections.abc import Iterable as _Iterable, Mapping as _Mapping
from typing import ClassVar as _ClassVar, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class HostState(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    HOST_STATE_UNSPECIFIED: _ClassVar[HostState]
    HOST_STATE_AVAILABLE: _ClassVar[HostState]
    HOST_STATE_UNAVAILABLE: _ClassVar[HostState]
    HOST_STATE_STATIC: _ClassVar[HostState]

class HostJoin(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    HOST_JOIN_UNSPECIFIED: _ClassVar[HostJoin]
    HOST_JOIN_STATIC: _ClassVar[HostJoin]
    HOST_JOIN_REGISTERED: _ClassVar[HostJoin]
HOST_STATE_UNSPECIFIED: HostState
HOST_STATE_AVAILABLE: HostState
HOST_STATE_UNAVAILABLE: HostState
HOST_STATE_STATIC: HostState
HOST_JOIN_UNSPECIFIED: HostJoin
HOST_JOIN_STATIC: HostJoin
HOST_JOIN_REGISTERED: HostJoin

class HeldSession(_message.Message):
    __slots__ = ("session_id", "results_target", "spooled")
    SESSION_ID_FIELD_NUMBER: _ClassVar[int]
    RESULTS_TARGET_FIELD_NUMBER: _ClassVar[int]
    SPOOLED_FIELD_NUMBER: _ClassVar[int]
    session_id: str
    results_target: str
    spooled: bool
    def __init__(self, session_id: _Optional[str] = ..., results_target: _Optional[str] = ..., spooled: _Optional[bool] = ...) -> None: ...

class SessionToStop(_message.Message):
    __slots__ = ("session_id", "reason")
    SESSION_ID_FIELD_NUMBER: _ClassVar[int]
    REASON_FIELD_NUMBER: _ClassVar[int]
    session_id: str
    reason: str
    def __init__(self, session_id: _Optional[str] = ..., reason: _Optional[str] = ...) -> None: ...

class RegisterHostRequest(_message.Message):
    __slots__ = ("host_id", "address", "version", "protocol_version", "capabilities", "sessions", "instance_id")
    HOST_ID_FIELD_NUMBER: _ClassVar[int]
    ADDRESS_FIELD_NUMBER: _ClassVar[int]
    VERSION_FIELD_NUMBER: _ClassVar[int]
    PROTOCOL_VERSION_FIELD_NUMBER: _ClassVar[int]
    CAPABILITIES_FIELD_NUMBER: _ClassVar[int]
    SESSIONS_FIELD_NUMBER: _ClassVar[int]
    INSTANCE_ID_FIELD_NUMBER: _ClassVar[int]
    host_id: str
    address: str
    version: str
    protocol_version: int
    capabilities: _host_pb2.GetCapabilitiesResponse
    sessions: _containers.RepeatedCompositeFieldContainer[HeldSession]
    instance_id: str
    def __init__(self, host_id: _Optional[str] = ..., address: _Optional[str] = ..., version: _Optional[str] = ..., protocol_version: _Optional[int] = ..., capabilities: _Optional[_Union[_host_pb2.GetCapabilitiesResponse, _Mapping]] = ..., sessions: _Optional[_Iterable[_Union[HeldSession, _Mapping]]] = ..., instance_id: _Optional[str] = ...) -> None: ...

class RegisterHostResponse(_message.Message):
    __slots__ = ("heartbeat_interval_s", "lease_s", "sessions_to_stop", "backend_version", "protocol_version")
    HEARTBEAT_INTERVAL_S_FIELD_NUMBER: _ClassVar[int]
    LEASE_S_FIELD_NUMBER: _ClassVar[int]
    SESSIONS_TO_STOP_FIELD_NUMBER: _ClassVar[int]
    BACKEND_VERSION_FIELD_NUMBER: _ClassVar[int]
    PROTOCOL_VERSION_FIELD_NUMBER: _ClassVar[int]
    heartbeat_interval_s: float
    lease_s: float
    sessions_to_stop: _containers.RepeatedCompositeFieldContainer[SessionToStop]
    backend_version: str
    protocol_version: int
    def __init__(self, heartbeat_interval_s: _Optional[float] = ..., lease_s: _Optional[float] = ..., sessions_to_stop: _Optional[_Iterable[_Union[SessionToStop, _Mapping]]] = ..., backend_version: _Optional[str] = ..., protocol_version: _Optional[int] = ...) -> None: ...

class HostHeartbeatRequest(_message.Message):
    __slots__ = ("host_id", "instance_id", "active_sessions", "sessions", "leaving")
    HOST_ID_FIELD_NUMBER: _ClassVar[int]
    INSTANCE_ID_FIELD_NUMBER: _ClassVar[int]
    ACTIVE_SESSIONS_FIELD_NUMBER: _ClassVar[int]
    SESSIONS_FIELD_NUMBER: _ClassVar[int]
    LEAVING_FIELD_NUMBER: _ClassVar[int]
    host_id: str
    instance_id: str
    active_sessions: int
    sessions: _containers.RepeatedCompositeFieldContainer[HeldSession]
    leaving: bool
    def __init__(self, host_id: _Optional[str] = ..., instance_id: _Optional[str] = ..., active_sessions: _Optional[int] = ..., sessions: _Optional[_Iterable[_Union[HeldSession, _Mapping]]] = ..., leaving: _Optional[bool] = ...) -> None: ...

class HostHeartbeatResponse(_message.Message):
    __slots__ = ("known", "sessions_to_stop", "heartbeat_interval_s")
    KNOWN_FIELD_NUMBER: _ClassVar[int]
    SESSIONS_TO_STOP_FIELD_NUMBER: _ClassVar[int]
    HEARTBEAT_INTERVAL_S_FIELD_NUMBER: _ClassVar[int]
    known: bool
    sessions_to_stop: _containers.RepeatedCompositeFieldContainer[SessionToStop]
    heartbeat_interval_s: float
    def __init__(self, known: _Optional[bool] = ..., sessions_to_stop: _Optional[_Iterable[_Union[SessionToStop, _Mapping]]] = ..., heartbeat_interval_s: _Optional[float] = ...) -> None: ...

class ListHostsRequest(_message.Message):
    __slots__ = ()
    def __init__(self) -> None: ...

class HostInfo(_message.Message):
    __slots__ = ("host_id", "address", "state", "joined", "active_sessions", "max_sessions", "last_heartbeat_time", "registered_time", "version", "device_type", "device_name", "ray_nodes", "detail")
    HOST_ID_FIELD_NUMBER: _ClassVar[int]
    ADDRESS_FIELD_NUMBER: _ClassVar[int]
    STATE_FIELD_NUMBER: _ClassVar[int]
    JOINED_FIELD_NUMBER: _ClassVar[int]
    ACTIVE_SESSIONS_FIELD_NUMBER: _ClassVar[int]
    MAX_SESSIONS_FIELD_NUMBER: _ClassVar[int]
    LAST_HEARTBEAT_TIME_FIELD_NUMBER: _ClassVar[int]
    REGISTERED_TIME_FIELD_NUMBER: _ClassVar[int]
    VERSION_FIELD_NUMBER: _ClassVar[int]
    DEVICE_TYPE_FIELD_NUMBER: _ClassVar[int]
    DEVICE_NAME_FIELD_NUMBER: _ClassVar[int]
    RAY_NODES_FIELD_NUMBER: _ClassVar[int]
    DETAIL_FIELD_NUMBER: _ClassVar[int]
    host_id: str
    address: str
    state: HostState
    joined: HostJoin
    active_sessions: int
    max_sessions: int
    last_heartbeat_time: _timestamp_pb2.Timestamp
    registered_time: _timestamp_pb2.Timestamp
    version: str
    device_type: _host_pb2.DeviceType
    device_name: str
    ray_nodes: int
    detail: str
    def __init__(self, host_id: _Optional[str] = ..., address: _Optional[str] = ..., state: _Optional[_Union[HostState, str]] = ..., joined: _Optional[_Union[HostJoin, str]] = ..., active_sessions: _Optional[int] = ..., max_sessions: _Optional[int] = ..., last_heartbeat_time: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., registered_time: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., version: _Optional[str] = ..., device_type: _Optional[_Union[_host_pb2.DeviceType, str]] = ..., device_name: _Optional[str] = ..., ray_nodes: _Optional[int] = ..., detail: _Optional[str] = ...) -> None: ...

class ListHostsResponse(_message.Message):
    __slots__ = ("hosts",)
    HOSTS_FIELD_NUMBER: _ClassVar[int]
    hosts: _containers.RepeatedCompositeFieldContainer[HostInfo]
    def __init__(self, hosts: _Optional[_Iterable[_Union[HostInfo, _Mapping]]] = ...) -> None: ...
