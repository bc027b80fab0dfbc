"""Callers identified by their verified client certificate (mTLS), against an allow-list.

Under mTLS every certificate the CA signed passes the TLS handshake: users' certificates too,
when one CA serves a whole team. ``CertificateInterceptor`` therefore admits a caller only
when its certificate names an allowed identity (its subject CN or one of its DNS
subjectAltNames, compared case-insensitively), or, when the service also has a token, when the
call presents that token. Anything else is refused with PERMISSION_DENIED naming the
certificate's identity and the setting to change; a refused client stream is read (bounded)
before the answer, as ``AuthInterceptor`` does.

The certificate is only visible inside the call (``context.auth_context()``), so the check
runs in a wrapper around the method's handler rather than in ``intercept_service``.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable, Iterable
from typing import Any

import grpc
import grpc.aio

from ktrdr.security.interceptor import (
    _CURRENT,
    DENIED_STREAM_DRAIN_BYTES,
    DENIED_STREAM_DRAIN_S,
    Identity,
    Policy,
    bearer_token,
)
from ktrdr.security.tokens import same_secret

logger = logging.getLogger(__name__)


def peer_names(auth_context: dict[str, Iterable[bytes]]) -> list[str]:
    """The identities a verified client certificate states: CN first, then its SANs."""
    names: list[str] = []
    for key in ("x509_common_name", "x509_subject_alternative_name"):
        for value in auth_context.get(key, ()):
            text = value.decode("utf-8", "replace") if isinstance(value, bytes) else str(value)
            if text and text not in names:
                names.append(text)
    return names


class CertificateInterceptor(grpc.aio.ServerInterceptor):
    """Admits calls from allowed certificate identities, or with ``token`` when set."""

    def __init__(
        self,
        policy: Policy,
        allowed: Iterable[str],
        *,
        role: str,
        service: str,
        setting: str,
        token: str | None = None,
    ) -> None:
        self.policy = policy
        self.allowed = frozenset(name.strip().lower() for name in allowed if name.strip())
        self.role = role
        self.service = service
        self.setting = setting  # where the operator changes the allow-list
        self.token = token

    def identify(self, context: grpc.aio.ServicerContext, method: str) -> Identity | str:
        """The caller's identity, or why it is refused."""
        token = bearer_token(context.invocation_metadata())
        if self.token and token and same_secret(token, self.token):
            return Identity(self.role, self.role)
        names = peer_names(context.auth_context())
        for name in names:
            if name.lower() in self.allowed:
                if not self.policy.allowed(method, self.role):
                    return f"{name} may not call {method.rsplit('/', 1)[-1]}"
                return Identity(name, self.role)
        shown = ", ".join(names[:4]) if names else "none"
        how = " or its token" if self.token else ""
        return (
            f"this {self.service} accepts only the client certificates on its allow-list"
            f"{how}; this certificate names {shown[:200]} (the operator sets {self.setting})"
        )

    async def intercept_service(
        self,
        continuation: Callable[[grpc.HandlerCallDetails], Awaitable[grpc.RpcMethodHandler]],
        handler_call_details: grpc.HandlerCallDetails,
    ) -> grpc.RpcMethodHandler:
        handler = await continuation(handler_call_details)
        method = handler_call_details.method
        if handler is None or self.policy.is_open(method):
            return handler
        return _checked(handler, lambda context: self.identify(context, method))


Check = Callable[[grpc.aio.ServicerContext], "Identity | str"]


def _checked(handler: grpc.RpcMethodHandler, check: Check) -> grpc.RpcMethodHandler:
    """``handler`` with ``check`` run first in the call: refused, or run as that identity."""
    kw = {
        "request_deserializer": handler.request_deserializer,
        "response_serializer": handler.response_serializer,
    }

    async def admit(context: grpc.aio.ServicerContext, requests: Any = None) -> None:
        verdict = check(context)
        if isinstance(verdict, Identity):
            _CURRENT.set(verdict)
            return
        logger.info("refused a caller: %s", verdict)
        if requests is not None:  # let a client still writing read the status
            await _drain(requests)
        await context.abort(grpc.StatusCode.PERMISSION_DENIED, verdict)

    if handler.unary_unary is not None:
        inner_uu = handler.unary_unary

        async def unary_unary(request: Any, context: grpc.aio.ServicerContext) -> Any:
            await admit(context)
            return await inner_uu(request, context)

        return grpc.unary_unary_rpc_method_handler(unary_unary, **kw)
    if handler.unary_stream is not None:
        inner_us = handler.unary_stream

        async def unary_stream(request: Any, context: grpc.aio.ServicerContext) -> Any:
            await admit(context)
            async for item in inner_us(request, context):
                yield item

        return grpc.unary_stream_rpc_method_handler(unary_stream, **kw)
    if handler.stream_unary is not None:
        inner_su = handler.stream_unary

        async def stream_unary(requests: Any, context: grpc.aio.ServicerContext) -> Any:
            await admit(context, requests)
            return await inner_su(requests, context)

        return grpc.stream_unary_rpc_method_handler(stream_unary, **kw)
    inner_ss = handler.stream_stream
    assert inner_ss is not None

    async def stream_stream(requests: Any, context: grpc.aio.ServicerContext) -> Any:
        await admit(context)
        async for item in inner_ss(requests, context):
            yield item

    return grpc.stream_stream_rpc_method_handler(stream_stream, **kw)


async def _drain(requests: Any) -> None:
    budget = DENIED_STREAM_DRAIN_BYTES
    try:
        async with asyncio.timeout(DENIED_STREAM_DRAIN_S):
            async for item in requests:
                budget -= item.ByteSize() if hasattr(item, "ByteSize") else 0
                if budget < 0:
                    break
    except Exception:  # gone away, or silent too long: answer now
        pass


__all__ = ["CertificateInterceptor", "peer_names"]
