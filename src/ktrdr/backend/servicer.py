"""``BackendServicer``: the Backend service's RPCs, each a thin call into ``Operations``."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator

import grpc

from ktrdr.backend.conversions import (
    config_to_proto,
    strategies_to_proto,
)
from ktrdr.backend.errors import RequestError
from ktrdr.backend.execution.host_rpcs import HostRpcs
from ktrdr.backend.execution.mode_selector import MODE_NAMES
from ktrdr.backend.execution.registry import HostRegistry
from ktrdr.backend.models import ModelCatalog, ModelRpcs, check_tags
from ktrdr.backend.operations import Operations
from ktrdr.backend.paging import owner_filter, page_size, page_token, parse_page_token
from ktrdr.backend.results import ResultsIntake, refusal_trailer
from ktrdr.backend.store import OperationRecord
from ktrdr.backend.strategies import strategy_files
from ktrdr.backend.sweeps import SweepRpcs, Sweeps
from ktrdr.security.interceptor import current_identity
from ktrdr.training.v1 import backend_pb2 as pb
from ktrdr.training.v1 import backend_pb2_grpc as pb_grpc
from ktrdr.transfer.framing import SubmitRequest

logger = logging.getLogger(__name__)

CONFIG_DEFAULT_MODE = "default_mode"


class BackendServicer(ModelRpcs, SweepRpcs, HostRpcs, pb_grpc.BackendServicer):
    """Implements ``ktrdr.training.v1.Backend`` (the model RPCs: ``ktrdr.backend.models``;
    the sweep RPCs: ``SweepRpcs``; the host registry's: ``HostRpcs``). Methods raise
    ``RequestError`` (or any exception): the server's error boundary
    (``ktrdr.service.error_boundary``) answers the status."""

    def __init__(self, operations: Operations, results: ResultsIntake, sweeps: Sweeps) -> None:
        self.operations = operations
        self.results = results
        settings = operations.settings
        self.catalog = ModelCatalog(operations.store, settings.models_dir, settings.incoming_dir)
        self.sweeps = sweeps
        selector = operations.selector
        registry = selector.registry or HostRegistry(selector.host_addresses, enabled=False)
        self.setup_host_rpcs(
            registry, operations.store, selector, lambda: operations.results_address
        )

    async def _operation(self, record: OperationRecord) -> pb.Operation:
        return await self.sweeps.annotate(self.operations.to_proto(record))

    async def CreateTraining(
        self, request: pb.CreateTrainingRequest, context: grpc.aio.ServicerContext
    ) -> pb.CreateTrainingResponse:
        tags = check_tags(request.tags)
        record = await self.operations.create(request)
        await self.catalog.registry.set_operation_tags.aio(record.id, tags)
        return pb.CreateTrainingResponse(operation=await self._operation(record))

    async def WatchOperation(
        self, request: pb.WatchOperationRequest, context: grpc.aio.ServicerContext
    ) -> AsyncIterator[pb.WatchOperationResponse]:
        async for event, status in self.operations.watch(request.operation_id):
            yield pb.WatchOperationResponse(event=event, status=status)  # type: ignore[arg-type]

    async def GetOperation(
        self, request: pb.GetOperationRequest, context: grpc.aio.ServicerContext
    ) -> pb.GetOperationResponse:
        record = await self.operations.get(request.operation_id)
        return pb.GetOperationResponse(operation=await self._operation(record))

    async def ListOperations(
        self, request: pb.ListOperationsRequest, context: grpc.aio.ServicerContext
    ) -> pb.ListOperationsResponse:
        size = page_size(request.page_size)
        owner = owner_filter(request.owner)
        records = await self.operations.store.list_operations.aio(
            status=request.status,
            strategy_name=request.strategy_name,
            owner=owner,
            limit=size + 1,
            after=parse_page_token(request.page_token, "ListOperations"),
        )
        page = records[:size]
        token = page_token(page[-1].created_us, page[-1].id) if len(records) > size else ""
        return pb.ListOperationsResponse(
            operations=[await self._operation(r) for r in page], next_page_token=token
        )

    async def CancelOperation(
        self, request: pb.CancelOperationRequest, context: grpc.aio.ServicerContext
    ) -> pb.CancelOperationResponse:
        record = await self.operations.cancel(
            request.operation_id, request.reason, current_identity()
        )
        return pb.CancelOperationResponse(
            status=record.status,  # type: ignore[arg-type]
            operation=await self._operation(record),
        )

    async def GetTrainingConfig(
        self, request: pb.GetTrainingConfigRequest, context: grpc.aio.ServicerContext
    ) -> pb.GetTrainingConfigResponse:
        return pb.GetTrainingConfigResponse(config=self._config())

    async def UpdateTrainingConfig(
        self, request: pb.UpdateTrainingConfigRequest, context: grpc.aio.ServicerContext
    ) -> pb.UpdateTrainingConfigResponse:
        new = request.default_mode
        if new not in MODE_NAMES:
            raise RequestError(
                grpc.StatusCode.INVALID_ARGUMENT,
                f"default_mode: must be EXECUTION_MODE_AUTO, _LOCAL or _HOST, got {new}",
            )
        previous = self.operations.default_mode
        await self.operations.store.set_config.aio(CONFIG_DEFAULT_MODE, MODE_NAMES[new])
        self.operations.default_mode = new  # once recorded
        logger.info("default mode %s -> %s", MODE_NAMES[previous], MODE_NAMES[new])
        return pb.UpdateTrainingConfigResponse(
            previous_default_mode=previous,  # type: ignore[arg-type]
            default_mode=new,
            config=self._config(),
        )

    async def SubmitResults(
        self,
        request_iterator: AsyncIterator[SubmitRequest],
        context: grpc.aio.ServicerContext,
    ) -> pb.SubmitResultsResponse:
        try:
            return await self.results.submit(request_iterator)
        except RequestError as exc:  # answered with the host's hint: final, or when to retry
            exc.trailing_metadata = refusal_trailer(exc)
            raise

    async def ListStrategies(
        self, request: pb.ListStrategiesRequest, context: grpc.aio.ServicerContext
    ) -> pb.ListStrategiesResponse:
        def listing() -> pb.ListStrategiesResponse:
            files = list(strategy_files(self.operations.settings.strategies_dir))
            return strategies_to_proto(self.operations.store.strategies(), files)

        return await asyncio.to_thread(listing)

    def _config(self) -> pb.TrainingConfig:
        """The configuration; ``host_addresses`` also lists the available registered hosts."""
        ops = self.operations
        config = config_to_proto(ops.settings, ops.default_mode, ops.results_address)
        listed = set(config.host_addresses)
        config.host_addresses.extend(a for a in self.registry.addresses() if a not in listed)
        return config
