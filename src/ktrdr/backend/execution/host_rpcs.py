"""``RegisterHost``, ``HostHeartbeat`` and ``ListHosts``: the registry's RPCs, and how the
backend judges the sessions a host holds.

A host lists the sessions it runs or holds in its spool. Of those sent to this backend's
results address, the ones whose operation ended here (COMPLETED, FAILED, CANCELLED) or that
this backend never created are returned as ``sessions_to_stop``; a session whose operation
still runs, or still waits for its model, stays (the host's spool resends the model).
Sessions for other backends (another results address) are never judged.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Sequence

import grpc
from google.protobuf.timestamp_pb2 import Timestamp

import ktrdr
from ktrdr.backend.errors import RequestError
from ktrdr.backend.execution.mode_selector import ModeSelector
from ktrdr.backend.execution.registry import (
    AVAILABLE,
    HostRegistry,
    Lost,
    RegisteredHost,
    check_address,
    check_host_id,
    check_text,
    check_versions,
)
from ktrdr.backend.store import Store
from ktrdr.service.host_protocol import MAX_HELD_SESSIONS, PROTOCOL_VERSION
from ktrdr.training.v1 import backend_pb2 as pb
from ktrdr.training.v1 import hosts_pb2

logger = logging.getLogger(__name__)

_ENDED: dict[int, str] = {
    pb.OPERATION_STATUS_COMPLETED: "COMPLETED",
    pb.OPERATION_STATUS_FAILED: "FAILED",
    pb.OPERATION_STATUS_CANCELLED: "CANCELLED",
}


def _timestamp(epoch_s: float) -> Timestamp:
    stamp = Timestamp()
    stamp.FromNanoseconds(int(epoch_s * 1e9))
    return stamp


def _check_sessions(sessions: Sequence[hosts_pb2.HeldSession]) -> list[str]:
    if len(sessions) > MAX_HELD_SESSIONS:
        raise RequestError(
            grpc.StatusCode.INVALID_ARGUMENT,
            f"sessions: at most {MAX_HELD_SESSIONS}, got {len(sessions)}",
        )
    for held in sessions:
        check_text("sessions.session_id", held.session_id)
        if len(held.results_target) > 256:
            raise RequestError(
                grpc.StatusCode.INVALID_ARGUMENT, "sessions.results_target: at most 256 characters"
            )
    return [held.session_id for held in sessions]


class HostRpcs:
    """The registry's three RPCs, mixed into ``BackendServicer``."""

    registry: HostRegistry
    host_store: Store
    host_selector: ModeSelector
    results_address: Callable[[], str]

    def setup_host_rpcs(
        self,
        registry: HostRegistry,
        store: Store,
        selector: ModeSelector,
        results_address: Callable[[], str],
    ) -> None:
        self.registry = registry
        self.host_store = store
        self.host_selector = selector
        self.results_address = results_address

    async def RegisterHost(
        self, request: hosts_pb2.RegisterHostRequest, context: grpc.aio.ServicerContext
    ) -> hosts_pb2.RegisterHostResponse:
        registry = self.registry
        if not registry.enabled:
            raise RequestError(
                grpc.StatusCode.FAILED_PRECONDITION,
                "this backend does not accept registered hosts (KTRDR_BACKEND_HOST_REGISTRATION"
                "=false); list the host with --host-address instead",
            )
        host_id = check_host_id(request.host_id)
        version = check_text("version", request.version)
        check_versions(host_id, version, request.protocol_version, ktrdr.__version__)
        address = check_address(request.address, registry.allowed_addresses)
        instance = check_text("instance_id", request.instance_id)
        check_text("capabilities.device_name", request.capabilities.device_name, required=False)
        if request.capabilities.max_sessions < 1:
            raise RequestError(
                grpc.StatusCode.INVALID_ARGUMENT,
                f"capabilities.max_sessions: at least 1, got {request.capabilities.max_sessions}",
            )
        held = _check_sessions(request.sessions)
        registry.register(
            host_id=host_id,
            address=address,
            instance_id=instance,
            version=request.version,
            capabilities=request.capabilities,
            held=held,
        )
        return hosts_pb2.RegisterHostResponse(
            heartbeat_interval_s=registry.heartbeat_interval_s,
            lease_s=registry.heartbeat_timeout_s,
            sessions_to_stop=await self._to_stop(request.sessions),
            backend_version=ktrdr.__version__,
            protocol_version=PROTOCOL_VERSION,
        )

    async def HostHeartbeat(
        self, request: hosts_pb2.HostHeartbeatRequest, context: grpc.aio.ServicerContext
    ) -> hosts_pb2.HostHeartbeatResponse:
        registry = self.registry
        check_host_id(request.host_id)
        check_text("instance_id", request.instance_id)
        _check_sessions(request.sessions)
        host = registry.heartbeat(
            request.host_id,
            request.instance_id,
            max(0, request.active_sessions),
            leaving=request.leaving,
        )
        interval = registry.heartbeat_interval_s
        if host is None:
            return hosts_pb2.HostHeartbeatResponse(known=False, heartbeat_interval_s=interval)
        return hosts_pb2.HostHeartbeatResponse(
            known=True,
            sessions_to_stop=await self._to_stop(request.sessions),
            heartbeat_interval_s=interval,
        )

    async def ListHosts(
        self, request: hosts_pb2.ListHostsRequest, context: grpc.aio.ServicerContext
    ) -> hosts_pb2.ListHostsResponse:
        registry = self.registry
        probes = await asyncio.gather(*(self.host_selector.probe(a) for a in registry.static))
        hosts = [
            hosts_pb2.HostInfo(
                address=probe.address,
                state=hosts_pb2.HOST_STATE_STATIC,
                joined=hosts_pb2.HOST_JOIN_STATIC,
                active_sessions=probe.active_sessions,
                max_sessions=probe.max_sessions,
                detail=probe.detail,
            )
            for probe in probes
        ]
        hosts.extend(_registered_to_proto(h, registry) for h in registry.hosts())
        return hosts_pb2.ListHostsResponse(hosts=hosts)

    async def _to_stop(
        self, sessions: Sequence[hosts_pb2.HeldSession]
    ) -> list[hosts_pb2.SessionToStop]:
        """The held sessions of this backend whose operation ended here or never existed."""
        own = self.results_address()
        stop = []
        for held in sessions:
            if held.results_target != own:
                continue
            record = await self.host_store.get_operation.aio(held.session_id)
            if record is None:
                reason = "unknown to the backend"
            elif record.status in _ENDED:
                reason = f"operation is {_ENDED[record.status]} on the backend"
            else:
                continue
            stop.append(hosts_pb2.SessionToStop(session_id=held.session_id, reason=reason))
        return stop


def _registered_to_proto(host: RegisteredHost, registry: HostRegistry) -> hosts_pb2.HostInfo:
    caps = host.capabilities
    detail = host.detail
    if host.state == AVAILABLE:
        detail = f"heartbeat {registry.clock() - host.last_seen:.1f} s ago"
    return hosts_pb2.HostInfo(
        host_id=host.host_id,
        address=host.address,
        state=(
            hosts_pb2.HOST_STATE_AVAILABLE
            if host.state == AVAILABLE
            else hosts_pb2.HOST_STATE_UNAVAILABLE
        ),
        joined=hosts_pb2.HOST_JOIN_REGISTERED,
        active_sessions=host.active_sessions,
        max_sessions=caps.max_sessions,
        last_heartbeat_time=_timestamp(host.last_seen_wall),
        registered_time=_timestamp(host.registered_wall),
        version=host.version,
        device_type=caps.device_type,
        device_name=caps.device_name,
        ray_nodes=caps.cluster.node_count if caps.HasField("cluster") else 0,
        detail=detail,
    )


def lost_listener(fail: Callable[[Lost], object]) -> Callable[[Lost], None]:
    """A registry ``on_lost`` listener that runs ``fail`` (async) as a task."""

    def listener(lost: Lost) -> None:
        result = fail(lost)
        if asyncio.iscoroutine(result):
            asyncio.get_running_loop().create_task(result, name=f"host-lost-{lost.host_id}")

    return listener


__all__ = ["HostRpcs", "lost_listener"]
