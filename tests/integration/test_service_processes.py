"""Real ``ktrdr`` processes: a port already served, the tokens CLI beside a running backend."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import grpc
import pytest

from ktrdr.client.local_services import free_port, stop_process, wait_serving
from ktrdr.security.channels import sync_channel
from ktrdr.service.parent_watch import parent_environment
from ktrdr.training.v1 import backend_pb2 as pb
from ktrdr.training.v1 import backend_pb2_grpc
from tests.support.timing import scaled

pytestmark = pytest.mark.integration

REPO = Path(__file__).resolve().parents[2]


def ktrdr(*args: str, env: dict[str, str] | None = None, timeout: float = 60):
    return subprocess.run(
        [sys.executable, "-m", "ktrdr.cli.main", *args],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=timeout,
        env={**os.environ, **(env or {})},
    )


def spawn(*args: str, log: Path) -> subprocess.Popen[bytes]:
    with open(log, "wb") as out:
        return subprocess.Popen(
            [sys.executable, "-m", "ktrdr.cli.main", *args],
            cwd=REPO,
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=True,
            env={**os.environ, **parent_environment()},  # it stops if pytest dies
        )


@pytest.fixture
def backend(tmp_path: Path):
    port = free_port()
    data = tmp_path / "backend"
    process = spawn(
        "backend",
        "serve",
        "--address",
        f"127.0.0.1:{port}",
        "--data-dir",
        str(data),
        log=tmp_path / "backend.log",
    )
    try:
        wait_serving(f"127.0.0.1:{port}", 60, process)
        yield f"127.0.0.1:{port}", data
    finally:
        stop_process(process)


def test_a_second_server_on_a_served_port_exits_with_one_line(backend, tmp_path: Path) -> None:
    address, _ = backend
    second = ktrdr("backend", "serve", "--address", address, "--data-dir", str(tmp_path / "b2"))
    assert second.returncode != 0
    lines = second.stderr.strip().splitlines()
    assert lines[-1] == f"error: cannot listen on {address}: address in use or not available"
    assert "Traceback" not in second.stderr and "serving" not in second.stderr, second.stderr
    assert not (tmp_path / "b2" / "admin.token").exists()  # nothing made for a failed start
    host = ktrdr("host", "serve", "--address", address, "--spool-dir", str(tmp_path / "spool"))
    assert host.returncode != 0
    assert host.stderr.strip().splitlines()[-1].startswith(f"error: cannot listen on {address}")
    assert "Traceback" not in host.stderr and "listening" not in host.stderr, host.stderr


def test_plaintext_on_a_non_loopback_address_is_refused_in_one_line(tmp_path: Path) -> None:
    done = ktrdr("backend", "serve", "--address", "0.0.0.0:0", "--data-dir", str(tmp_path))
    assert done.returncode != 0
    assert done.stderr.strip().splitlines()[-1:] == [
        "error: backend: refusing to serve plaintext on non-loopback address 0.0.0.0:0: give a "
        "TLS certificate and key, or pass --insecure to accept that risk"
    ], done.stderr


def test_tokens_cli_beside_a_running_backend(backend) -> None:
    address, data = backend
    created = ktrdr(
        "backend", "tokens", "create", "carol", "--role", "viewer", "--data-dir", str(data)
    )
    assert created.returncode == 0, created.stderr
    token = created.stdout.strip()
    assert token.startswith("ktrdr_") and "shown only this once" in created.stderr
    listed = ktrdr("backend", "tokens", "list", "--data-dir", str(data))
    names = [line.split()[:2] for line in listed.stdout.splitlines()]
    assert ["carol", "viewer"] in names and ["local-admin", "admin"] in names
    assert token not in listed.stdout
    with sync_channel(address, token=token) as channel:
        stub = backend_pb2_grpc.BackendStub(channel)
        stub.ListStrategies(pb.ListStrategiesRequest(), timeout=scaled(10))  # a viewer may read
        with pytest.raises(grpc.RpcError) as denied:
            stub.CreateTraining(pb.CreateTrainingRequest(strategy_name="x"), timeout=scaled(10))
        assert denied.value.code() == grpc.StatusCode.PERMISSION_DENIED  # type: ignore[attr-defined]
        dup = ktrdr(
            "backend", "tokens", "create", "carol", "--role", "admin", "--data-dir", str(data)
        )
        assert dup.returncode == 2 and "exists already" in dup.stderr
        revoked = ktrdr("backend", "tokens", "revoke", "carol", "--data-dir", str(data))
        assert revoked.returncode == 0
        import time

        deadline = time.monotonic() + scaled(10)
        while True:  # the interceptor may answer from its 2 s cache meanwhile
            try:
                stub.ListStrategies(pb.ListStrategiesRequest(), timeout=scaled(10))
            except grpc.RpcError as exc:
                assert exc.code() == grpc.StatusCode.UNAUTHENTICATED  # type: ignore[attr-defined]
                break
            assert time.monotonic() < deadline, "a revoked token kept working"
            time.sleep(0.1)
