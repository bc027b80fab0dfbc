"""Throwaway certificates for tests, benchmarks and trying TLS out locally: a CA and
certificates it signs, valid for two days (``ktrdr.security.certs`` makes them; ``ktrdr certs
create`` makes lasting ones). Service certificates name 127.0.0.1 and localhost and may serve
and present themselves as clients (a backend presents its own to its hosts).
"""

from __future__ import annotations

from pathlib import Path

from ktrdr.security import certs
from ktrdr.security.certs import Issued

_DAYS = 2


def make_ca(directory: Path, name: str = "ca") -> Issued:
    """A CA (EC P-256) in ``directory/{name}.pem`` and ``.key``."""
    return certs.make_ca(directory, name, days=_DAYS)


def issue(ca: Issued, name: str, *, service: bool = True) -> Issued:
    """A certificate ``name`` signed by ``ca``, beside it. ``service``: for 127.0.0.1 and
    localhost, usable as server and client; otherwise a client-only certificate."""
    return certs.issue(ca, name, service=service, days=_DAYS, force=True)


__all__ = ["Issued", "issue", "make_ca"]
