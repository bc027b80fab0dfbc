"""Certificates for the services and their users: a CA, and certificates it signs.

``ktrdr certs create`` is built on this module (the ``cryptography`` package, part of the
``training`` extra). Keys are EC P-256, written with mode 0600; certificates are PEM.

* the CA (``ca.pem``, ``ca.key``): a self-signed CA certificate (basicConstraints CA:true,
  keyCertSign), made once and reused when the directory already holds one;
* a **service** certificate (backend or host): the names and IP addresses it is reached by in
  its subjectAltName, extendedKeyUsage serverAuth and clientAuth (a backend presents its own
  certificate to its hosts, and a host its own to the backend);
* a **client** certificate (a user, a notebook): extendedKeyUsage clientAuth only.
"""

from __future__ import annotations

import datetime as dt
import ipaddress
import os
from dataclasses import dataclass
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

CA_NAME = "ca"
CA_DAYS = 3650


class CertError(Exception):
    """A certificate that cannot be made as asked (a file in the way, a bad name)."""


@dataclass(frozen=True)
class Issued:
    """A certificate and its key, as PEM files."""

    cert: Path
    key: Path


def _write_key(path: Path, key: ec.EllipticCurvePrivateKey) -> None:
    data = key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )
    path.unlink(missing_ok=True)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "wb") as out:
        out.write(data)


def _write_cert(path: Path, cert: x509.Certificate) -> None:
    path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))


def _name(common_name: str) -> x509.Name:
    return x509.Name(
        [
            x509.NameAttribute(NameOID.ORGANIZATION_NAME, "ktrdr"),
            x509.NameAttribute(NameOID.COMMON_NAME, common_name),
        ]
    )


def _check_free(directory: Path, name: str, force: bool) -> None:
    if not name or "/" in name or name.startswith("."):
        raise CertError(f"{name!r}: a certificate name is a plain file name, e.g. backend")
    for suffix in (".pem", ".key"):
        if (directory / f"{name}{suffix}").exists() and not force:
            raise CertError(
                f"{directory / (name + suffix)} exists; choose another name or pass --force"
            )


def load_or_make_ca(
    directory: Path, *, name: str = CA_NAME, days: int = CA_DAYS
) -> tuple[Issued, bool]:
    """The CA in ``directory`` (``{name}.pem``/``.key``), made when missing; True when made."""
    directory.mkdir(parents=True, exist_ok=True)
    issued = Issued(directory / f"{name}.pem", directory / f"{name}.key")
    if issued.cert.exists() and issued.key.exists():
        return issued, False
    if issued.cert.exists() or issued.key.exists():
        raise CertError(
            f"{directory} holds only one of {name}.pem and {name}.key; remove it or add both"
        )
    key = ec.generate_private_key(ec.SECP256R1())
    now = dt.datetime.now(dt.UTC)
    subject = _name(f"ktrdr {name}")
    cert = (
        x509.CertificateBuilder()
        .subject_name(subject)
        .issuer_name(subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(minutes=5))
        .not_valid_after(now + dt.timedelta(days=days))
        .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
        .add_extension(
            x509.KeyUsage(
                digital_signature=True,
                content_commitment=False,
                key_encipherment=False,
                data_encipherment=False,
                key_agreement=False,
                key_cert_sign=True,
                crl_sign=True,
                encipher_only=False,
                decipher_only=False,
            ),
            critical=True,
        )
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), False)
        .sign(key, hashes.SHA256())
    )
    _write_key(issued.key, key)
    _write_cert(issued.cert, cert)
    return issued, True


def subject_alt_names(names: list[str]) -> list[x509.GeneralName]:
    """``DNSName`` for names, ``IPAddress`` for IPv4/IPv6 addresses."""
    out: list[x509.GeneralName] = []
    for raw in names:
        name = raw.strip().strip("[]")
        if not name:
            continue
        try:
            out.append(x509.IPAddress(ipaddress.ip_address(name)))
        except ValueError:
            out.append(x509.DNSName(name))
    return out


def issue(
    ca: Issued,
    name: str,
    *,
    hosts: list[str] | None = None,
    service: bool = True,
    days: int = 365,
    force: bool = False,
) -> Issued:
    """A certificate ``name`` signed by ``ca``, beside it.

    ``service``: a backend's or host's certificate for ``hosts`` (names and IPs; default
    127.0.0.1 and localhost), usable as server and client; otherwise a client certificate.
    """
    directory = ca.cert.parent
    _check_free(directory, name, force)
    ca_cert = x509.load_pem_x509_certificate(ca.cert.read_bytes())
    ca_key = serialization.load_pem_private_key(ca.key.read_bytes(), password=None)
    if not isinstance(ca_key, ec.EllipticCurvePrivateKey):
        raise CertError(f"{ca.key} is not an EC key made by ktrdr certs create")
    key = ec.generate_private_key(ec.SECP256R1())
    now = dt.datetime.now(dt.UTC)
    usages = [ExtendedKeyUsageOID.CLIENT_AUTH]
    builder = (
        x509.CertificateBuilder()
        .subject_name(_name(name))
        .issuer_name(ca_cert.subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(minutes=5))
        .not_valid_after(now + dt.timedelta(days=days))
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(
            x509.AuthorityKeyIdentifier.from_issuer_public_key(ca_key.public_key()), False
        )
    )
    if service:
        sans = subject_alt_names(hosts or ["127.0.0.1", "localhost"])
        if not sans:
            raise CertError(f"{name}: a service certificate needs at least one name or IP")
        builder = builder.add_extension(x509.SubjectAlternativeName(sans), critical=False)
        usages.insert(0, ExtendedKeyUsageOID.SERVER_AUTH)
    builder = builder.add_extension(x509.ExtendedKeyUsage(usages), critical=False)
    cert = builder.sign(ca_key, hashes.SHA256())
    issued = Issued(directory / f"{name}.pem", directory / f"{name}.key")
    _write_key(issued.key, key)
    _write_cert(issued.cert, cert)
    return issued


def make_ca(directory: Path, name: str = CA_NAME, *, days: int = CA_DAYS) -> Issued:
    """The CA ``{name}.pem``/``.key`` in ``directory`` (made unless it is there already)."""
    return load_or_make_ca(directory, name=name, days=days)[0]


__all__ = ["CA_NAME", "CertError", "Issued", "issue", "load_or_make_ca", "make_ca"]
