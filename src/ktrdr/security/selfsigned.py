"""Throwaway certificates from the ``openssl`` command: a CA and certificates it signs.

For tests, benchmarks and trying TLS out locally, never for production (keys are written
unencrypted, valid for two days). Service certificates name 127.0.0.1 and localhost and
may serve and present themselves as clients (a backend presents its own to its hosts).
"""

from __future__ import annotations

import shutil
import subprocess
from dataclasses import dataclass
from pathlib import Path


@dataclass(frozen=True)
class Issued:
    """A certificate and its key, as PEM files."""

    cert: Path
    key: Path


def _openssl(*args: str, cwd: Path) -> None:
    subprocess.run(["openssl", *args], cwd=cwd, check=True, capture_output=True)


def _key(directory: Path, name: str) -> None:
    _openssl("ecparam", "-name", "prime256v1", "-genkey", "-noout", "-out", f"{name}.key",
             cwd=directory)  # fmt: skip


def make_ca(directory: Path, name: str = "ca") -> Issued:
    """A self-signed CA (EC P-256) in ``directory/{name}.pem`` and ``.key``."""
    if shutil.which("openssl") is None:
        raise RuntimeError("the openssl command is needed to make certificates")
    directory.mkdir(parents=True, exist_ok=True)
    _key(directory, name)
    _openssl("req", "-x509", "-new", "-key", f"{name}.key", "-sha256", "-days", "2",
             "-subj", f"/CN=ktrdr test {name}", "-out", f"{name}.pem", cwd=directory)  # fmt: skip
    return Issued(directory / f"{name}.pem", directory / f"{name}.key")


def issue(ca: Issued, name: str, *, service: bool = True) -> Issued:
    """A certificate ``name`` signed by ``ca``, beside it. ``service``: for 127.0.0.1 and
    localhost, usable as server and client; otherwise a client-only certificate."""
    directory = ca.cert.parent
    ext = (
        "subjectAltName=IP:127.0.0.1,DNS:localhost\nextendedKeyUsage=serverAuth,clientAuth\n"
        if service
        else "extendedKeyUsage=clientAuth\n"
    )
    (directory / f"{name}.ext").write_text(ext)
    _key(directory, name)
    _openssl("req", "-new", "-key", f"{name}.key", "-subj", f"/CN={name}", "-out",
             f"{name}.csr", cwd=directory)  # fmt: skip
    _openssl("x509", "-req", "-in", f"{name}.csr", "-CA", ca.cert.name, "-CAkey", ca.key.name,
             "-CAcreateserial", "-days", "2", "-sha256", "-extfile", f"{name}.ext",
             "-out", f"{name}.pem", cwd=directory)  # fmt: skip
    return Issued(directory / f"{name}.pem", directory / f"{name}.key")


__all__ = ["Issued", "issue", "make_ca"]
