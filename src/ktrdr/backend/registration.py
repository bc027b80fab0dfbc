"""Registering the Backend servicer: the generated handlers, SubmitResults read without copies.

The generated ``add_BackendServicer_to_server`` parses every SubmitResults message with
``SubmitResultsRequest.FromString``, which copies a chunk's data twice on the event loop
(into the message, then out of it). Here SubmitResults gets ``decode_request`` instead:
chunks become views into the received bytes (``ChunkFrame``), headers and trailers are
parsed as before. Every other method keeps its generated handler.
"""

from __future__ import annotations

from typing import Any

import grpc

from ktrdr.training.v1 import backend_pb2, backend_pb2_grpc
from ktrdr.transfer.framing import decode_request

SERVICE_NAME = backend_pb2.DESCRIPTOR.services_by_name["Backend"].full_name


class _Captured:
    """Stands in for a server to take the generated handlers (the generated code's API)."""

    def __init__(self) -> None:
        self.handlers: dict[str, grpc.RpcMethodHandler] = {}

    def add_generic_rpc_handlers(self, handlers: Any) -> None:
        pass

    def add_registered_method_handlers(
        self, service: str, handlers: dict[str, grpc.RpcMethodHandler]
    ) -> None:
        self.handlers = dict(handlers)


def add_backend_servicer(
    servicer: backend_pb2_grpc.BackendServicer, server: grpc.aio.Server
) -> None:
    """Like ``add_BackendServicer_to_server``, with SubmitResults's chunks not copied."""
    captured = _Captured()
    backend_pb2_grpc.add_BackendServicer_to_server(servicer, captured)
    handlers = captured.handlers
    generated = handlers["SubmitResults"]
    handlers["SubmitResults"] = grpc.stream_unary_rpc_method_handler(
        servicer.SubmitResults,
        request_deserializer=decode_request,
        response_serializer=generated.response_serializer,
    )
    server.add_generic_rpc_handlers((grpc.method_handlers_generic_handler(SERVICE_NAME, handlers),))
    server.add_registered_method_handlers(SERVICE_NAME, handlers)
