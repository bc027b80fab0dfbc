"""The sweep RPCs of the Backend service, mixed into ``BackendServicer``."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator

import grpc

from ktrdr.backend.errors import RequestError
from ktrdr.backend.paging import page_size, page_token, parse_page_token
from ktrdr.backend.sweeps.manager import Sweeps
from ktrdr.security.interceptor import current_identity
from ktrdr.training.v1 import backend_pb2 as pb

logger = logging.getLogger(__name__)


async def _abort(context: grpc.aio.ServicerContext, name: str, exc: BaseException) -> None:
    if isinstance(exc, RequestError):
        await context.abort(exc.code, exc.message)
    logger.error("%s failed", name, exc_info=exc)
    await context.abort(
        grpc.StatusCode.INTERNAL, f"{name} failed on the server (the backend's log has the details)"
    )


class SweepRpcs:
    """CreateSweep, WatchSweep, GetSweep, ListSweeps, CancelSweep: thin calls into Sweeps."""

    sweeps: Sweeps

    async def CreateSweep(
        self, request: pb.CreateSweepRequest, context: grpc.aio.ServicerContext
    ) -> pb.CreateSweepResponse:
        try:
            record = await self.sweeps.create(request)
            return pb.CreateSweepResponse(sweep=self.sweeps.to_proto(record))
        except (asyncio.CancelledError, grpc.aio.AbortError):
            raise
        except Exception as exc:
            await _abort(context, "CreateSweep", exc)
            raise

    async def WatchSweep(
        self, request: pb.WatchSweepRequest, context: grpc.aio.ServicerContext
    ) -> AsyncIterator[pb.WatchSweepResponse]:
        try:
            async for e in self.sweeps.watch(request.sweep_id):
                yield pb.WatchSweepResponse(event=e)
        except (asyncio.CancelledError, grpc.aio.AbortError):
            raise
        except Exception as exc:
            await _abort(context, "WatchSweep", exc)

    async def GetSweep(
        self, request: pb.GetSweepRequest, context: grpc.aio.ServicerContext
    ) -> pb.GetSweepResponse:
        try:
            return pb.GetSweepResponse(
                sweep=self.sweeps.to_proto(self.sweeps.get(request.sweep_id))
            )
        except (asyncio.CancelledError, grpc.aio.AbortError):
            raise
        except Exception as exc:
            await _abort(context, "GetSweep", exc)
            raise

    async def ListSweeps(
        self, request: pb.ListSweepsRequest, context: grpc.aio.ServicerContext
    ) -> pb.ListSweepsResponse:
        try:
            size = page_size(request.page_size)
            owner = request.owner
            if owner == "me":
                identity = current_identity()
                owner = identity.name if identity is not None else ""
            records = await asyncio.to_thread(
                self.sweeps.store.list_sweeps,
                status=request.status,
                owner=owner,
                limit=size + 1,
                after=parse_page_token(request.page_token, "ListSweeps"),
            )
            page = records[:size]
            token = page_token(page[-1].created_us, page[-1].id) if len(records) > size else ""
            return pb.ListSweepsResponse(
                sweeps=[self.sweeps.to_proto(r, with_trials=False) for r in page],
                next_page_token=token,
            )
        except (asyncio.CancelledError, grpc.aio.AbortError):
            raise
        except Exception as exc:
            await _abort(context, "ListSweeps", exc)
            raise

    async def CancelSweep(
        self, request: pb.CancelSweepRequest, context: grpc.aio.ServicerContext
    ) -> pb.CancelSweepResponse:
        try:
            record = await self.sweeps.cancel(request.sweep_id, request.reason, current_identity())
            return pb.CancelSweepResponse(sweep=self.sweeps.to_proto(record))
        except (asyncio.CancelledError, grpc.aio.AbortError):
            raise
        except Exception as exc:
            await _abort(context, "CancelSweep", exc)
            raise


__all__ = ["SweepRpcs"]
