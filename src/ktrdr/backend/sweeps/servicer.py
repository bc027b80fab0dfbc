"""The sweep RPCs of the Backend service, mixed into ``BackendServicer``."""

from __future__ import annotations

from collections.abc import AsyncIterator

import grpc

from ktrdr.backend.paging import owner_filter, page_size, page_token, parse_page_token
from ktrdr.backend.sweeps.manager import Sweeps
from ktrdr.security.interceptor import current_identity
from ktrdr.training.v1 import backend_pb2 as pb


class SweepRpcs:
    """CreateSweep, WatchSweep, GetSweep, ListSweeps, CancelSweep: thin calls into Sweeps.
    They raise ``RequestError``; the server's error boundary answers the status."""

    sweeps: Sweeps

    async def CreateSweep(
        self, request: pb.CreateSweepRequest, context: grpc.aio.ServicerContext
    ) -> pb.CreateSweepResponse:
        record = await self.sweeps.create(request)
        return pb.CreateSweepResponse(sweep=await self.sweeps.to_proto(record))

    async def WatchSweep(
        self, request: pb.WatchSweepRequest, context: grpc.aio.ServicerContext
    ) -> AsyncIterator[pb.WatchSweepResponse]:
        async for e in self.sweeps.watch(request.sweep_id):
            yield pb.WatchSweepResponse(event=e)

    async def GetSweep(
        self, request: pb.GetSweepRequest, context: grpc.aio.ServicerContext
    ) -> pb.GetSweepResponse:
        record = await self.sweeps.get(request.sweep_id)
        return pb.GetSweepResponse(sweep=await self.sweeps.to_proto(record))

    async def ListSweeps(
        self, request: pb.ListSweepsRequest, context: grpc.aio.ServicerContext
    ) -> pb.ListSweepsResponse:
        size = page_size(request.page_size)
        owner = owner_filter(request.owner)
        records = await self.sweeps.store.list_sweeps.aio(
            status=request.status,
            owner=owner,
            limit=size + 1,
            after=parse_page_token(request.page_token, "ListSweeps"),
        )
        page = records[:size]
        token = page_token(page[-1].created_us, page[-1].id) if len(records) > size else ""
        return pb.ListSweepsResponse(
            sweeps=[await self.sweeps.to_proto(r, with_trials=False) for r in page],
            next_page_token=token,
        )

    async def CancelSweep(
        self, request: pb.CancelSweepRequest, context: grpc.aio.ServicerContext
    ) -> pb.CancelSweepResponse:
        record = await self.sweeps.cancel(request.sweep_id, request.reason, current_identity())
        return pb.CancelSweepResponse(sweep=await self.sweeps.to_proto(record))


__all__ = ["SweepRpcs"]
