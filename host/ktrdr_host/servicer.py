"""``TrainingHostServicer``: the TrainingHost RPCs, each request -> registry/session -> response.

Every refusal is a raised ``RequestRefused`` with a message that says what to do; the
server's error boundary (``ktrdr.service.error_boundary``) answers its gRPC status, and
INTERNAL for anything unexpected. Streams end after the terminal event; a client that goes
away only closes its own subscription, never the session.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import grpc

from ktrdr.training.device import DeviceInfo
from ktrdr.training.v1 import host_pb2, host_pb2_grpc
from ktrdr_host.access import check_results_target
from ktrdr_host.capabilities import describe_host
from ktrdr_host.sessions import Session, SessionRegistry
from ktrdr_host.validation import validate_session_id, validate_start

SERVICE_NAME = host_pb2.DESCRIPTOR.services_by_name["TrainingHost"].full_name


class TrainingHostServicer(host_pb2_grpc.TrainingHostServicer):
    """Runs training sessions; see ``host.proto`` for the contract of each RPC."""

    def __init__(self, registry: SessionRegistry, device: DeviceInfo) -> None:
        self.registry = registry
        self.device = device  # the host's default device, reported by GetCapabilities

    async def StartTraining(
        self, request: host_pb2.StartTrainingRequest, context: grpc.aio.ServicerContext
    ) -> AsyncIterator[host_pb2.StartTrainingResponse]:
        settings = self.registry.settings  # parsing is CPU work: off the event loop
        spec = await asyncio.to_thread(
            validate_start,
            request,
            settings.device,
            max_strategy_bytes=settings.max_strategy_bytes,
            limits=settings.work_limits,
        )
        check_results_target(spec.results_target, settings.allowed_results_targets)
        session = self.registry.start(spec, upload_credential=request.upload_credential)
        # ACCEPTED was published on start, before any await: the snapshot is that event.
        first, subscription = session.fanout.subscribe()
        if first is not None:
            yield host_pb2.StartTrainingResponse(event=first, state=session.state_after(first))
        async for event in subscription:
            yield host_pb2.StartTrainingResponse(event=event, state=session.state_after(event))

    async def WatchSession(
        self, request: host_pb2.WatchSessionRequest, context: grpc.aio.ServicerContext
    ) -> AsyncIterator[host_pb2.WatchSessionResponse]:
        session = self._session(request.session_id)
        first, subscription = session.fanout.subscribe()
        if first is not None:
            yield host_pb2.WatchSessionResponse(event=first, state=session.state_after(first))
        async for event in subscription:
            yield host_pb2.WatchSessionResponse(event=event, state=session.state_after(event))

    async def CancelTraining(
        self, request: host_pb2.CancelTrainingRequest, context: grpc.aio.ServicerContext
    ) -> host_pb2.CancelTrainingResponse:
        session = self._session(request.session_id)
        reason = request.reason or "cancelled by request"
        state = await session.cancel(reason, self.registry.settings.cancel_wait_s)
        return host_pb2.CancelTrainingResponse(state=state, session=session.to_proto())

    async def GetSession(
        self, request: host_pb2.GetSessionRequest, context: grpc.aio.ServicerContext
    ) -> host_pb2.GetSessionResponse:
        session = self._session(request.session_id)
        return host_pb2.GetSessionResponse(session=session.to_proto())

    async def ListSessions(
        self, request: host_pb2.ListSessionsRequest, context: grpc.aio.ServicerContext
    ) -> host_pb2.ListSessionsResponse:
        sessions = self.registry.list_sessions(request.states)
        return host_pb2.ListSessionsResponse(sessions=[s.to_proto() for s in sessions])

    async def GetCapabilities(
        self, request: host_pb2.GetCapabilitiesRequest, context: grpc.aio.ServicerContext
    ) -> host_pb2.GetCapabilitiesResponse:
        return self.capabilities()

    def capabilities(self) -> host_pb2.GetCapabilitiesResponse:
        """What GetCapabilities answers now (also sent with RegisterHost)."""
        cluster = self.registry.cluster
        answer = describe_host(
            self.device,
            max_sessions=self.registry.settings.max_sessions
            if cluster is None
            else cluster.capacity,
            active_sessions=self.registry.active_count,
            accepting=self.registry.accepting,
        )
        if cluster is not None:
            answer.cluster.CopyFrom(cluster.to_proto())
        return answer

    def _session(self, session_id: str) -> Session:
        return self.registry.get(validate_session_id(session_id))


__all__ = ["SERVICE_NAME", "TrainingHostServicer"]
