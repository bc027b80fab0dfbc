"""A bad TLS key stops a real ``ktrdr host serve`` with one line that says so (not the
"address in use" grpcio's failed bind would otherwise suggest)."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from ktrdr.security.selfsigned import issue, make_ca

pytestmark = pytest.mark.skipif(shutil.which("openssl") is None, reason="needs openssl")


def serve(tmp_path: Path, cert: Path, key: Path) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("KTRDR_HOST_")}
    env.update(
        {
            "PYTHONPATH": os.pathsep.join(sys.path),
            "KTRDR_HOST_TLS_CERT": str(cert),
            "KTRDR_HOST_TLS_KEY": str(key),
            "KTRDR_HOST_AUTH_TOKEN": "a-token-long-enough-for-the-host",
        }
    )
    command = [sys.executable, "-m", "ktrdr.cli.main", "host", "serve", "--address"]
    command += ["127.0.0.1:0", "--spool-dir", str(tmp_path / "spool"), "--device", "cpu"]
    return subprocess.run(command, env=env, capture_output=True, text=True, timeout=60, check=False)


@pytest.mark.parametrize("fault", ["other_key", "not_pem"])
def test_bad_tls_key_is_reported_as_such(tmp_path: Path, fault: str) -> None:
    ca = make_ca(tmp_path / "pki")
    mine, other = issue(ca, "gpu1"), issue(ca, "gpu2")
    key = other.key
    if fault == "not_pem":
        key = tmp_path / "garbage.key"
        key.write_text("not a key\n")
    done = serve(tmp_path, mine.cert, key)
    assert done.returncode == 1, done.stderr
    errors = [line for line in done.stderr.splitlines() if line.startswith("error:")]
    assert len(errors) == 1, done.stderr
    assert "KTRDR_HOST_TLS_KEY" in errors[0] and "address in use" not in errors[0], errors[0]
