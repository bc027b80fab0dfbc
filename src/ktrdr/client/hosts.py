"""The training hosts a backend may use, as ``TrainingClient.hosts()`` returns them."""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from ktrdr.training.v1 import host_pb2, hosts_pb2


def _when(message: hosts_pb2.HostInfo, name: str) -> datetime | None:
    if not message.HasField(name):
        return None
    stamp: datetime = getattr(message, name).ToDatetime(tzinfo=datetime.now().astimezone().tzinfo)
    return stamp


@dataclass(frozen=True)
class HostInfo:
    """One host: static (``--host-address``) or registered (``ktrdr host serve --backend``)."""

    address: str
    state: str  # "available", "unavailable" or "static"
    joined: str  # "static" or "registered"
    host_id: str
    active_sessions: int
    max_sessions: int
    last_heartbeat: datetime | None
    registered: datetime | None
    version: str
    device: str  # "cpu", "cuda", "mps" or "" (unknown)
    device_name: str
    ray_nodes: int
    detail: str

    @classmethod
    def from_proto(cls, message: hosts_pb2.HostInfo) -> HostInfo:
        return cls(
            address=message.address,
            state=hosts_pb2.HostState.Name(message.state).removeprefix("HOST_STATE_").lower(),
            joined=hosts_pb2.HostJoin.Name(message.joined).removeprefix("HOST_JOIN_").lower(),
            host_id=message.host_id,
            active_sessions=message.active_sessions,
            max_sessions=message.max_sessions,
            last_heartbeat=_when(message, "last_heartbeat_time"),
            registered=_when(message, "registered_time"),
            version=message.version,
            device=(
                ""
                if message.device_type == host_pb2.DEVICE_TYPE_UNSPECIFIED
                else host_pb2.DeviceType.Name(message.device_type)
                .removeprefix("DEVICE_TYPE_")
                .lower()
            ),
            device_name=message.device_name,
            ray_nodes=message.ray_nodes,
            detail=message.detail,
        )

    def to_dict(self) -> dict[str, Any]:
        row = dataclasses.asdict(self)
        for key in ("last_heartbeat", "registered"):
            row[key] = row[key].isoformat() if row[key] is not None else None
        return row


class HostCalls:
    """The host half of ``TrainingClient`` (it provides ``_call``, ``backend_stub``)."""

    backend_stub: Any
    _call: Callable[..., Any]

    def hosts(self) -> list[HostInfo]:
        """Every host the backend may use, with state and load (Backend.ListHosts)."""
        response = self._call(self.backend_stub.ListHosts, hosts_pb2.ListHostsRequest())
        return [HostInfo.from_proto(h) for h in response.hosts]


__all__ = ["HostCalls", "HostInfo"]
