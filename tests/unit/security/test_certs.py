"""``ktrdr certs create``: a CA reused across calls, service certificates with the given names
and IPs and both usages, client certificates for clients only, keys 0600, no overwrite."""

from __future__ import annotations

import ipaddress
import stat
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.x509.oid import ExtendedKeyUsageOID

from ktrdr.cli.main import main


def _cert(path: Path) -> x509.Certificate:
    return x509.load_pem_x509_certificate(path.read_bytes())


def test_certs_create_makes_what_it_prints(tmp_path: Path, capsys) -> None:
    pki = tmp_path / "pki"
    argv = ["certs", "create", "--dir", str(pki), "--service", "backend=backend.lan,10.0.0.2"]
    assert main([*argv, "--client", "alice"]) == 0
    out = capsys.readouterr().out
    assert f"--tls-cert {pki}/backend.pem --tls-key {pki}/backend.key --tls-ca {pki}/ca.pem" in out
    assert f"KTRDR_TLS_CERT={pki}/alice.pem" in out and "KTRDR_HOST_BACKEND_TLS_CA=" in out
    for key in pki.glob("*.key"):
        assert stat.S_IMODE(key.stat().st_mode) == 0o600, key
    ca, backend, alice = (_cert(pki / f"{n}.pem") for n in ("ca", "backend", "alice"))
    assert ca.extensions.get_extension_for_class(x509.BasicConstraints).value.ca
    sans = backend.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    assert sans.get_values_for_type(x509.DNSName) == ["backend.lan"]
    assert sans.get_values_for_type(x509.IPAddress) == [ipaddress.ip_address("10.0.0.2")]
    usage = backend.extensions.get_extension_for_class(x509.ExtendedKeyUsage).value
    assert set(usage) == {ExtendedKeyUsageOID.SERVER_AUTH, ExtendedKeyUsageOID.CLIENT_AUTH}
    usage = alice.extensions.get_extension_for_class(x509.ExtendedKeyUsage).value
    assert list(usage) == [ExtendedKeyUsageOID.CLIENT_AUTH]
    with pytest.raises(x509.ExtensionNotFound):
        alice.extensions.get_extension_for_class(x509.SubjectAlternativeName)
    alice.verify_directly_issued_by(ca)

    # a second call reuses the CA and refuses to replace a certificate without --force
    assert main(["certs", "create", "--dir", str(pki), "--client", "bob"]) == 0
    assert "using CA" in capsys.readouterr().out
    _cert(pki / "bob.pem").verify_directly_issued_by(ca)
    assert main(["certs", "create", "--dir", str(pki), "--client", "bob"]) == 1
    assert "exists" in capsys.readouterr().err
    assert main(["certs", "create", "--dir", str(pki), "--service", "nohosts"]) == 2
