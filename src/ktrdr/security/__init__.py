"""Security at the service edge: TLS material, channels, bearer tokens and the auth interceptor.

``tls`` builds server and channel credentials from PEM files and knows which addresses are
loopback; ``channels`` opens every channel the project uses (TLS or not, with a bearer token
attached by a client interceptor); ``interceptor`` is the one server interceptor that turns a
token into an identity and checks it against a table of RPC -> allowed roles; ``tokens``
generates and hashes tokens and finds the token a local client should use.

May import grpc and the standard library only: the training library never imports this.
"""

from ktrdr.security.channels import aio_channel, sync_channel
from ktrdr.security.interceptor import (
    AuthInterceptor,
    Identity,
    Policy,
    current_identity,
)
from ktrdr.security.tls import (
    ClientTLS,
    SecurityConfigError,
    ServerTLS,
    check_listen_security,
    is_loopback_address,
)
from ktrdr.security.tokens import generate_token, hash_token

__all__ = [
    "AuthInterceptor",
    "ClientTLS",
    "Identity",
    "Policy",
    "SecurityConfigError",
    "ServerTLS",
    "aio_channel",
    "check_listen_security",
    "current_identity",
    "generate_token",
    "hash_token",
    "is_loopback_address",
    "sync_channel",
]
