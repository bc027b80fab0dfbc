"""Every channel the project opens: TLS or plaintext, with a bearer token when there is one.

The token travels as ``authorization: Bearer TOKEN`` metadata, added to each call by a client
interceptor (call credentials would need TLS, and a loopback setup may run without it). With
tracing on (``ktrdr.tracing``), each call also gets a client span and ``traceparent``.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import grpc
import grpc.aio

from ktrdr import tracing
from ktrdr.security.tls import ClientTLS

Options = Sequence[tuple[str, Any]]
TokenSource = Callable[[], str | None]


def _metadata(existing: Any, token: str) -> list[tuple[str, str | bytes]]:
    items = [(k, v) for k, v in (existing or ()) if k != "authorization"]
    items.append(("authorization", f"Bearer {token}"))
    return items


def _tls_options(tls: ClientTLS | None, options: Options) -> list[tuple[str, Any]]:
    merged = list(options)
    if tls is not None and tls.enabled and tls.server_name:
        merged.append(("grpc.ssl_target_name_override", tls.server_name))
    return merged


# -- synchronous channels (CLI, TrainingClient, health probes in scripts) --------------------
class SyncDetails(grpc.ClientCallDetails):
    """A call's details with other metadata (interceptors of blocking channels)."""

    def __init__(self, base: grpc.ClientCallDetails, metadata: Any) -> None:
        self.method = base.method
        self.timeout = base.timeout
        self.metadata = metadata
        self.credentials = base.credentials
        self.wait_for_ready = getattr(base, "wait_for_ready", None)
        self.compression = getattr(base, "compression", None)


class _SyncToken(
    grpc.UnaryUnaryClientInterceptor,
    grpc.UnaryStreamClientInterceptor,
    grpc.StreamUnaryClientInterceptor,
    grpc.StreamStreamClientInterceptor,
):
    def __init__(self, source: TokenSource) -> None:
        self._source = source

    def _details(self, details: grpc.ClientCallDetails) -> grpc.ClientCallDetails:
        token = self._source()
        if not token:
            return details
        return SyncDetails(details, _metadata(details.metadata, token))

    def intercept_unary_unary(self, continuation, client_call_details, request):  # type: ignore[no-untyped-def]
        return continuation(self._details(client_call_details), request)

    def intercept_unary_stream(self, continuation, client_call_details, request):  # type: ignore[no-untyped-def]
        return continuation(self._details(client_call_details), request)

    def intercept_stream_unary(self, continuation, client_call_details, request_iterator):  # type: ignore[no-untyped-def]
        return continuation(self._details(client_call_details), request_iterator)

    def intercept_stream_stream(self, continuation, client_call_details, request_iterator):  # type: ignore[no-untyped-def]
        return continuation(self._details(client_call_details), request_iterator)


def sync_channel(
    address: str,
    *,
    options: Options = (),
    tls: ClientTLS | None = None,
    token: str | TokenSource | None = None,
) -> grpc.Channel:
    """A blocking channel to ``address``; TLS when ``tls.enabled``; ``token`` on every call."""
    merged = _tls_options(tls, options)
    if tls is not None and tls.enabled:
        channel = grpc.secure_channel(address, tls.credentials("KTRDR_"), options=merged)
    else:
        channel = grpc.insecure_channel(address, options=merged)
    if tracing.active():  # a client span per call; its traceparent goes in the metadata
        from ktrdr.tracing import grpc_spans

        channel = grpc_spans.traced_channel(channel)
    if token is None:
        return channel
    source = token if callable(token) else (lambda: token)  # type: ignore[return-value]
    return grpc.intercept_channel(channel, _SyncToken(source))


# -- asyncio channels (backend -> host, host -> backend) -------------------------------------
class _AioToken:
    """Adds the token to a call's metadata (one subclass per call shape: grpc.aio files an
    interceptor under the first shape it matches only)."""

    def __init__(self, source: TokenSource) -> None:
        self._source = source

    def _details(self, details: grpc.aio.ClientCallDetails) -> grpc.aio.ClientCallDetails:
        token = self._source()
        if not token:
            return details
        return grpc.aio.ClientCallDetails(
            details.method,
            details.timeout,
            _metadata(details.metadata, token),  # type: ignore[arg-type]
            details.credentials,
            details.wait_for_ready,
        )


class _AioUnaryUnary(_AioToken, grpc.aio.UnaryUnaryClientInterceptor):
    async def intercept_unary_unary(self, continuation, client_call_details, request):  # type: ignore[no-untyped-def]
        return await continuation(self._details(client_call_details), request)


class _AioUnaryStream(_AioToken, grpc.aio.UnaryStreamClientInterceptor):
    async def intercept_unary_stream(self, continuation, client_call_details, request):  # type: ignore[no-untyped-def]
        return await continuation(self._details(client_call_details), request)


class _AioStreamUnary(_AioToken, grpc.aio.StreamUnaryClientInterceptor):
    async def intercept_stream_unary(self, continuation, client_call_details, request_iterator):  # type: ignore[no-untyped-def]
        return await continuation(self._details(client_call_details), request_iterator)


class _AioStreamStream(_AioToken, grpc.aio.StreamStreamClientInterceptor):
    async def intercept_stream_stream(self, continuation, client_call_details, request_iterator):  # type: ignore[no-untyped-def]
        return await continuation(self._details(client_call_details), request_iterator)


def aio_channel(
    address: str,
    *,
    options: Options = (),
    tls: ClientTLS | None = None,
    token: str | TokenSource | None = None,
) -> grpc.aio.Channel:
    """An asyncio channel to ``address``; TLS when ``tls.enabled``; ``token`` on every call.

    ``token`` may be a function: it is called per call, so a token file rewritten while the
    service runs is picked up by the next call.
    """
    merged = _tls_options(tls, options)
    interceptors: list[grpc.aio.ClientInterceptor] | None = None
    if token is not None:
        source = token if callable(token) else (lambda: token)  # type: ignore[return-value]
        interceptors = [
            cls(source)
            for cls in (_AioUnaryUnary, _AioUnaryStream, _AioStreamUnary, _AioStreamStream)
        ]
    if tracing.active():  # a client span per call; its traceparent goes in the metadata
        from ktrdr.tracing import grpc_spans

        interceptors = [*grpc_spans.aio_client_interceptors(), *(interceptors or [])]
    if tls is not None and tls.enabled:
        return grpc.aio.secure_channel(
            address, tls.credentials(), options=merged, interceptors=interceptors
        )
    return grpc.aio.insecure_channel(address, options=merged, interceptors=interceptors)


__all__ = ["TokenSource", "aio_channel", "sync_channel"]
