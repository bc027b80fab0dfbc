"""The model RPCs of the Backend service (mixed into ``BackendServicer``).

Reads (GetModel, DownloadModel, ListModels) are for every reader; changes (DeleteModel,
SetModelAlias, DeleteModelAlias, SetModelTags) pass the role table as trainer or admin, and
here a trainer only for models its own token trained.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import grpc

from ktrdr.backend.auth.roles import may_act_on_any_operation
from ktrdr.backend.errors import RequestError
from ktrdr.backend.models.catalog import ModelCatalog, strategy_field
from ktrdr.backend.models.registry import ModelRow, check_alias, check_tags, invalid
from ktrdr.backend.tracking.events import NO_EVENTS, BackendEvents
from ktrdr.security.interceptor import current_identity
from ktrdr.training.v1 import backend_pb2 as pb
from ktrdr.training.v1 import common_pb2
from ktrdr.transfer import DEFAULT_CHUNK_SIZE
from ktrdr.transfer.download import MAX_DOWNLOAD_CHUNK, iter_download_responses
from ktrdr.transfer.protocol import codec_from_proto

logger = logging.getLogger(__name__)

MAX_CONCURRENT_DOWNLOADS = 8
# Smaller chunks cost a message (and its CPU) per few bytes: 1-byte chunks of a 70 KB model
# took seconds of server CPU.
MIN_DOWNLOAD_CHUNK = 4 * 1024
_DONE = object()


def reference(row: ModelRow, catalog: ModelCatalog) -> common_pb2.ModelReference:
    version = catalog.version_proto(row)
    return common_pb2.ModelReference(
        strategy_name=row.model.strategy_name, version=row.model.version, path=version.path
    )


def check_may_change(row: ModelRow, action: str) -> None:
    """Admins change every model; trainers only those their own token trained."""
    identity = current_identity()
    if identity is None or may_act_on_any_operation(identity.role):
        return
    if row.owner and row.owner == identity.name:
        return
    raise RequestError(
        grpc.StatusCode.PERMISSION_DENIED,
        f"{row.model.strategy_name} v{row.model.version} was trained by "
        f"{row.owner or 'an unnamed caller'!r}: role {identity.role!r} may {action} only models "
        "its own token trained (an admin may change any)",
    )


class ModelRpcs:
    """GetModel, DownloadModel, ListModels, DeleteModel, SetModelAlias, DeleteModelAlias,
    SetModelTags. Needs ``self.catalog``. The methods raise ``RequestError``; the server's
    error boundary (``ktrdr.service.error_boundary``) answers the status."""

    catalog: ModelCatalog
    downloads_in_progress: int = 0
    events: BackendEvents = NO_EVENTS  # the metrics' view of each download

    async def GetModel(
        self, request: pb.GetModelRequest, context: grpc.aio.ServicerContext
    ) -> pb.GetModelResponse:
        row = await asyncio.to_thread(self.catalog.resolve, request.model)
        details = await asyncio.to_thread(self.catalog.details, row)
        return pb.GetModelResponse(model=details)

    async def ListModels(
        self, request: pb.ListModelsRequest, context: grpc.aio.ServicerContext
    ) -> pb.ListModelsResponse:
        return await asyncio.to_thread(self.catalog.list_models, request)

    async def DeleteModel(
        self, request: pb.DeleteModelRequest, context: grpc.aio.ServicerContext
    ) -> pb.DeleteModelResponse:
        row = await asyncio.to_thread(self.catalog.row, request.strategy_name, request.version)
        check_may_change(row, "delete")
        ref = reference(row, self.catalog)
        removed = await asyncio.to_thread(self.catalog.delete, row, force=request.force)
        return pb.DeleteModelResponse(model=ref, removed_aliases=removed)

    async def SetModelAlias(
        self, request: pb.SetModelAliasRequest, context: grpc.aio.ServicerContext
    ) -> pb.SetModelAliasResponse:
        check_alias(request.alias)
        row = await asyncio.to_thread(self.catalog.row, request.strategy_name, request.version)
        check_may_change(row, "alias")
        current = await self.catalog.registry.alias_version.aio(
            row.model.strategy_name, request.alias
        )
        if current is not None and current != row.model.version:  # moving it away from there
            check_may_change(
                await asyncio.to_thread(self.catalog.row, row.model.strategy_name, current),
                "move an alias away from",
            )
        previous = await self.catalog.registry.set_alias.aio(
            row.model.strategy_name,
            request.alias,
            row.model.version,
        )
        logger.info(
            "alias %s@%s -> v%d (was v%d)",
            row.model.strategy_name,
            request.alias,
            row.model.version,
            previous,
        )
        return pb.SetModelAliasResponse(
            model=reference(row, self.catalog), previous_version=previous
        )

    async def DeleteModelAlias(
        self, request: pb.DeleteModelAliasRequest, context: grpc.aio.ServicerContext
    ) -> pb.DeleteModelAliasResponse:
        strategy = strategy_field(request.strategy_name)
        check_alias(request.alias)
        row = await asyncio.to_thread(
            self.catalog.resolve, pb.ModelSelector(strategy_name=strategy, alias=request.alias)
        )
        check_may_change(row, "alias")
        version = await self.catalog.registry.delete_alias.aio(strategy, request.alias)
        return pb.DeleteModelAliasResponse(version=version)

    async def SetModelTags(
        self, request: pb.SetModelTagsRequest, context: grpc.aio.ServicerContext
    ) -> pb.SetModelTagsResponse:
        add = check_tags(request.add, "add")
        remove = check_tags(request.remove, "remove")
        if not add and not remove:
            raise invalid("add, remove: give at least one tag to add or remove")
        row = await asyncio.to_thread(self.catalog.row, request.strategy_name, request.version)
        check_may_change(row, "tag")
        tags = await self.catalog.registry.change_tags.aio(
            row.model.strategy_name,
            row.model.version,
            add,
            remove,
        )
        return pb.SetModelTagsResponse(model=reference(row, self.catalog), tags=tags)

    # -- DownloadModel ---------------------------------------------------------------------
    async def DownloadModel(
        self, request: pb.DownloadModelRequest, context: grpc.aio.ServicerContext
    ) -> AsyncIterator[pb.DownloadModelResponse]:
        if request.offset < 0:
            raise invalid("offset: must be >= 0")
        chunk = request.chunk_size_bytes
        if chunk and not MIN_DOWNLOAD_CHUNK <= chunk <= MAX_DOWNLOAD_CHUNK:
            raise invalid(
                f"chunk_size_bytes: must be 0 (the default) or {MIN_DOWNLOAD_CHUNK}.."
                f"{MAX_DOWNLOAD_CHUNK}, got {chunk}"
            )
        codec = None
        if request.codec:
            codec = codec_from_proto(request.codec)
            if codec is None:
                raise invalid(f"codec: must be RAW, ZSTD, GZIP or unset, got {request.codec}")
        row = await asyncio.to_thread(self.catalog.resolve, request.model)
        if request.expected_sha256 and request.expected_sha256 != row.model.sha256:
            raise RequestError(
                grpc.StatusCode.FAILED_PRECONDITION,
                f"{row.model.strategy_name} v{row.model.version} has sha256 "
                f"{row.model.sha256}, not the expected {request.expected_sha256[:64]}: it is "
                "another model now; start the download again from 0",
            )
        if self.downloads_in_progress >= MAX_CONCURRENT_DOWNLOADS:
            raise RequestError(
                grpc.StatusCode.RESOURCE_EXHAUSTED,
                f"{MAX_CONCURRENT_DOWNLOADS} downloads are in progress: retry in a moment",
            )
        self.downloads_in_progress += 1
        archive: Path | None = None
        sent, outcome = 0, "incomplete"
        try:
            archive = await asyncio.to_thread(self.catalog.archive, row)
            size = archive.stat().st_size
            if request.offset > size:
                raise RequestError(
                    grpc.StatusCode.OUT_OF_RANGE,
                    f"offset {request.offset} is past the end of the {size}-byte archive",
                )
            responses = iter_download_responses(
                archive,
                model=reference(row, self.catalog),
                sha256=row.model.sha256 or "",
                offset=request.offset,
                codec=codec,
                chunk_size=request.chunk_size_bytes or DEFAULT_CHUNK_SIZE,
            )
            async for message in _in_thread(responses):
                sent += len(message.chunk.data)
                yield message
            outcome = "complete"
        finally:
            self.downloads_in_progress -= 1
            if sent or outcome == "complete":
                self.events.download_finished(outcome, sent)
            if archive is not None:
                archive.unlink(missing_ok=True)


async def _in_thread(
    iterator: Iterator[pb.DownloadModelResponse],
) -> AsyncIterator[pb.DownloadModelResponse]:
    try:
        while True:
            item = await asyncio.to_thread(next, iterator, _DONE)
            if item is _DONE:
                return
            yield item  # type: ignore[misc]
    finally:
        with contextlib.suppress(ValueError):
            iterator.close()  # type: ignore[attr-defined]


__all__ = ["MAX_CONCURRENT_DOWNLOADS", "ModelRpcs", "check_may_change"]
