"""One server interceptor per service: bearer token -> identity -> allowed or refused.

``Policy`` is the table of RPC (full method name) -> roles allowed to call it; a method not
in the table is refused for everyone unless it is open (health checks). The interceptor
answers UNAUTHENTICATED for a missing or unknown token and PERMISSION_DENIED for a role that
may not call the method, both before the servicer runs and before anything is looked up,
so neither says whether an operation exists. The resolved identity is available to the
servicer through ``current_identity()`` (a context variable set for the call).
"""

from __future__ import annotations

import asyncio
import contextvars
import inspect
import logging
import time
from collections.abc import Awaitable, Callable, Iterable, Mapping
from dataclasses import dataclass
from typing import Any

import grpc
import grpc.aio

logger = logging.getLogger(__name__)

HEALTH_PREFIX = "/grpc.health.v1.Health/"
REFLECTION_METHODS = frozenset(
    {
        "/grpc.reflection.v1alpha.ServerReflection/ServerReflectionInfo",
        "/grpc.reflection.v1.ServerReflection/ServerReflectionInfo",
    }
)
# What a refused client-stream may still send before the refusal is answered (a client still
# writing when the server ends the call would see INTERNAL instead of the real status).
DENIED_STREAM_DRAIN_BYTES = 4 << 20
DENIED_STREAM_DRAIN_S = 5.0  # ... and for at most this long
DENIED_FIRST_MESSAGE_S = 1.0  # a refused bidirectional stream: its first message, this long
CACHE_TTL_S = 2.0  # a revoked token stops working within this long
CACHE_MAX_ENTRIES = 1024


@dataclass(frozen=True)
class Identity:
    """Who is calling: the token's name and role (``host`` for a training host)."""

    name: str
    role: str


_CURRENT: contextvars.ContextVar[Identity | None] = contextvars.ContextVar(
    "ktrdr_identity", default=None
)


def current_identity() -> Identity | None:
    """The identity of the RPC being served (None where authentication is off)."""
    return _CURRENT.get()


@dataclass(frozen=True)
class Policy:
    """RPC full method name -> roles allowed; ``open_methods`` need no token at all."""

    rules: Mapping[str, frozenset[str]]
    open_methods: frozenset[str] = frozenset()

    def is_open(self, method: str) -> bool:
        return method.startswith(HEALTH_PREFIX) or method in self.open_methods

    def allowed(self, method: str, role: str) -> bool:
        return role in self.rules.get(method, frozenset())

    def roles_for(self, method: str) -> list[str]:
        return sorted(self.rules.get(method, frozenset()))


Resolver = Callable[[str], Identity | None]


def bearer_token(metadata: Iterable[tuple[str, Any]] | None) -> str | None:
    """The token of an ``authorization: Bearer TOKEN`` header, or None."""
    for key, value in metadata or ():
        if key.lower() != "authorization":
            continue
        text = value.decode("utf-8", "replace") if isinstance(value, bytes) else str(value)
        scheme, _, token = text.strip().partition(" ")
        if scheme.lower() == "bearer" and token.strip():
            return token.strip()
        return None
    return None


class AuthInterceptor(grpc.aio.ServerInterceptor):
    """Checks every call against ``policy`` with identities from ``resolve(token)``.

    ``resolve`` may block briefly (a SQLite lookup): it runs in a worker thread, and its
    answers for known tokens are cached for ``CACHE_TTL_S``.
    """

    def __init__(self, resolve: Resolver, policy: Policy, *, service: str, hint: str) -> None:
        self._resolve = resolve
        self.policy = policy
        self.service = service
        self.hint = hint  # how to pass a token, for the UNAUTHENTICATED message
        self._cache: dict[str, tuple[float, Identity]] = {}

    async def _identity(self, token: str) -> Identity | None:
        now = time.monotonic()
        hit = self._cache.get(token)
        if hit is not None and hit[0] > now:
            return hit[1]
        identity = await asyncio.to_thread(self._resolve, token)
        if identity is not None:
            if len(self._cache) >= CACHE_MAX_ENTRIES:
                self._cache.clear()
            self._cache[token] = (now + CACHE_TTL_S, identity)
        else:
            self._cache.pop(token, None)
        return identity

    async def intercept_service(
        self,
        continuation: Callable[[grpc.HandlerCallDetails], Awaitable[grpc.RpcMethodHandler]],
        handler_call_details: grpc.HandlerCallDetails,
    ) -> grpc.RpcMethodHandler:
        method = handler_call_details.method
        handler = await continuation(handler_call_details)
        if handler is None or self.policy.is_open(method):
            return handler
        token = bearer_token(handler_call_details.invocation_metadata)
        name = method.rsplit("/", 1)[-1]
        if token is None:
            return _refusal(
                handler,
                grpc.StatusCode.UNAUTHENTICATED,
                f"{self.service} requires a bearer token for {name}: {self.hint}",
            )
        identity = await self._identity(token)
        if identity is None:
            return _refusal(
                handler,
                grpc.StatusCode.UNAUTHENTICATED,
                f"the token is not valid on this {self.service} (unknown or revoked)",
            )
        if not self.policy.allowed(method, identity.role):
            roles = self.policy.roles_for(method)
            needs = f"needs {' or '.join(roles)}" if roles else "not allowed for any role"
            logger.info("refused %s for %s (role %s)", name, identity.name, identity.role)
            return _refusal(
                handler,
                grpc.StatusCode.PERMISSION_DENIED,
                f"role {identity.role!r} ({identity.name}) may not call {name} ({needs})",
            )
        return _bound(handler, identity)


def _refusal(
    handler: grpc.RpcMethodHandler, code: grpc.StatusCode, message: str
) -> grpc.RpcMethodHandler:
    """A handler of the same shape as ``handler`` that answers ``code``."""

    async def unary_in(request: Any, context: grpc.aio.ServicerContext) -> Any:
        await context.abort(code, message)

    async def stream_in(requests: Any, context: grpc.aio.ServicerContext) -> Any:
        budget = DENIED_STREAM_DRAIN_BYTES
        try:
            async with asyncio.timeout(DENIED_STREAM_DRAIN_S):  # a silent client: answered
                async for item in requests:
                    budget -= item.ByteSize() if hasattr(item, "ByteSize") else 0
                    if budget < 0:
                        break
        except Exception:  # gone away, or silent too long: answer now
            pass
        await context.abort(code, message)

    async def first_in(requests: Any, context: grpc.aio.ServicerContext) -> Any:
        try:
            async with asyncio.timeout(DENIED_FIRST_MESSAGE_S):
                async for _ in requests:
                    break
        except Exception:  # gone away, or silent: answer now
            pass
        await context.abort(code, message)

    kw = {
        "request_deserializer": handler.request_deserializer,
        "response_serializer": handler.response_serializer,
    }
    if handler.unary_unary is not None:
        return grpc.unary_unary_rpc_method_handler(unary_in, **kw)
    if handler.unary_stream is not None:
        return grpc.unary_stream_rpc_method_handler(unary_in, **kw)
    if handler.stream_unary is not None:
        return grpc.stream_unary_rpc_method_handler(stream_in, **kw)
    # A bidirectional client (reflection) waits for answers while it writes: no draining,
    # but its first message is read before the refusal (answered while the client was still
    # writing it, the client saw INTERNAL instead of the refusal).
    return grpc.stream_stream_rpc_method_handler(first_in, **kw)


def _with_identity(behavior: Callable[..., Any], identity: Identity) -> Callable[..., Any]:
    if inspect.isasyncgenfunction(behavior):

        async def generator(request: Any, context: Any) -> Any:
            _CURRENT.set(identity)
            async for item in behavior(request, context):
                yield item

        return generator

    if inspect.iscoroutinefunction(behavior):

        async def coroutine(request: Any, context: Any) -> Any:
            _CURRENT.set(identity)
            return await behavior(request, context)

        return coroutine

    def plain(request: Any, context: Any) -> Any:
        _CURRENT.set(identity)
        return behavior(request, context)

    return plain


def _bound(handler: grpc.RpcMethodHandler, identity: Identity) -> grpc.RpcMethodHandler:
    kw = {
        "request_deserializer": handler.request_deserializer,
        "response_serializer": handler.response_serializer,
    }
    if handler.unary_unary is not None:
        return grpc.unary_unary_rpc_method_handler(
            _with_identity(handler.unary_unary, identity), **kw
        )
    if handler.unary_stream is not None:
        return grpc.unary_stream_rpc_method_handler(
            _with_identity(handler.unary_stream, identity), **kw
        )
    if handler.stream_unary is not None:
        return grpc.stream_unary_rpc_method_handler(
            _with_identity(handler.stream_unary, identity), **kw
        )
    assert handler.stream_stream is not None
    return grpc.stream_stream_rpc_method_handler(
        _with_identity(handler.stream_stream, identity), **kw
    )


__all__ = [
    "HEALTH_PREFIX",
    "REFLECTION_METHODS",
    "AuthInterceptor",
    "Identity",
    "Policy",
    "bearer_token",
    "current_identity",
]
