"""A small in-test Backend: only SubmitResults, implemented with ``ktrdr.transfer.receive_results``.

Shared by the host's unit and integration tests (``from tests.support.receiving_backend import
...``). It stores each verified bundle under ``stored/``, receives into ``incoming/`` (which
must be empty after every call: no temporary files left), can refuse with a chosen code, and
can damage the stream of its next calls (``faults``) to exercise the host's retries.
"""

from __future__ import annotations

import os
import time
from collections.abc import AsyncIterable, AsyncIterator, Callable
from dataclasses import dataclass
from pathlib import Path

import grpc

from ktrdr.backend.results import FINAL_CODES
from ktrdr.storage.bundle import ModelBundle
from ktrdr.training.v1 import backend_pb2 as pb
from ktrdr.training.v1 import backend_pb2_grpc as pb_grpc
from ktrdr.training.v1 import common_pb2
from ktrdr.transfer import TransferError, grpc_options, receive_results
from ktrdr.transfer.refusals import refusal_metadata

Stream = AsyncIterable[pb.SubmitResultsRequest]
Fault = Callable[[Stream], Stream]


async def corrupt_first_chunk(stream: Stream) -> AsyncIterator[pb.SubmitResultsRequest]:
    """Flip one bit in the first chunk: the receiver answers DATA_LOSS."""
    done = False
    async for message in stream:
        if not done and message.HasField("chunk") and message.chunk.data:
            data = bytearray(message.chunk.data)
            data[len(data) // 2] ^= 0x01
            message.chunk.data = bytes(data)
            done = True
        yield message


async def truncate_after_first_chunk(stream: Stream) -> AsyncIterator[pb.SubmitResultsRequest]:
    """Drop everything after the first chunk (as if the sender died): DATA_LOSS."""
    async for message in stream:
        yield message
        if message.HasField("chunk"):
            return


def validate_bundle(path: Path) -> None:
    ModelBundle.from_archive(path).validate()


class ReceivingBackend(pb_grpc.BackendServicer):
    def __init__(self, root: Path, *, max_raw_bytes: int = 64 << 20) -> None:
        self.incoming = root / "incoming"
        self.stored = root / "stored"
        self.incoming.mkdir(parents=True, exist_ok=True)
        self.stored.mkdir(parents=True, exist_ok=True)
        self.max_raw_bytes = max_raw_bytes
        self.calls = 0
        self.refuse: grpc.StatusCode | None = None  # every call, final as the backend marks it
        # One refusal per call until empty: (code, final, retry-after seconds or None).
        self.refusals: list[tuple[grpc.StatusCode, bool, float | None]] = []
        self.call_times: list[float] = []
        self.faults: list[Fault] = []
        self.models: dict[str, tuple[str, Path]] = {}  # session -> (sha256, stored archive)

    async def SubmitResults(
        self, request_iterator: Stream, context: grpc.aio.ServicerContext
    ) -> pb.SubmitResultsResponse:
        self.calls += 1
        self.call_times.append(time.monotonic())
        if self.refusals:
            code, final, retry_after = self.refusals.pop(0)
            await context.abort(
                code,
                "refused by the test backend",
                trailing_metadata=refusal_metadata(final=final, retry_after_s=retry_after),
            )
        if self.refuse is not None:
            final = self.refuse in FINAL_CODES
            await context.abort(
                self.refuse,
                "refused by the test backend",
                trailing_metadata=refusal_metadata(final=final),
            )
        stream = self.faults.pop(0)(request_iterator) if self.faults else request_iterator
        try:
            received = await receive_results(
                stream,
                tmp_dir=self.incoming,
                max_raw_bytes=self.max_raw_bytes,
                validate=validate_bundle,
            )
        except TransferError as error:
            trailer = refusal_metadata(final=error.code in FINAL_CODES)
            await context.abort(error.code, error.message, trailing_metadata=trailer)
        session = received.header.session_id
        known = self.models.get(session)
        if known is not None:
            received.path.unlink()
            if known[0] != received.sha256:
                await context.abort(
                    grpc.StatusCode.ALREADY_EXISTS,
                    f"{session} has a model",
                    trailing_metadata=refusal_metadata(final=True),
                )
            return self._response(received.header.strategy_name, known[1], known[0], True)
        target = self.stored / f"{len(self.models) + 1}.tar"
        os.replace(received.path, target)
        self.models[session] = (received.sha256, target)
        return self._response(received.header.strategy_name, target, received.sha256, False)

    def _response(
        self, strategy: str, path: Path, sha256: str, duplicate: bool
    ) -> pb.SubmitResultsResponse:
        return pb.SubmitResultsResponse(
            model=common_pb2.ModelReference(
                strategy_name=strategy, version=int(path.stem), path=str(path)
            ),
            duplicate=duplicate,
            sha256=sha256,
            raw_size_bytes=path.stat().st_size,
        )


@dataclass
class RunningBackend:
    backend: ReceivingBackend
    server: grpc.aio.Server
    port: int

    @property
    def address(self) -> str:
        return f"127.0.0.1:{self.port}"

    async def stop(self) -> None:
        await self.server.stop(grace=None)


async def start_backend(root: Path, port: int = 0, **kwargs: int) -> RunningBackend:
    backend = ReceivingBackend(root, **kwargs)
    server = grpc.aio.server(options=grpc_options())
    pb_grpc.add_BackendServicer_to_server(backend, server)
    bound = server.add_insecure_port(f"127.0.0.1:{port}")
    await server.start()
    return RunningBackend(backend, server, bound)
