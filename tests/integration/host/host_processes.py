"""Real host processes for the integration tests (the backend's tests may copy this pattern).

Import as ``from tests.integration.host.host_processes import ...``; the fixtures live in the
folder's ``conftest.py``.

``start_host_process`` runs ``python -m ktrdr.cli.main host serve --address 127.0.0.1:0 ...``,
reads the bound address from its first stdout line ("ktrdr host listening on HOST:PORT"),
and waits until the standard health check answers SERVING. Every process started through the
``host_processes`` fixture (``conftest.py``) is killed in teardown, whatever the test did.
Logs go to a file in the test's temporary directory and are shown when a start fails.
"""

from __future__ import annotations

import os
import selectors
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

import grpc
import pytest
from grpc_health.v1 import health_pb2, health_pb2_grpc

from ktrdr.service.parent_watch import parent_environment
from tests.support.timing import scaled

REPO_ROOT = Path(__file__).resolve().parents[3]
SAMPLE_DATA = REPO_ROOT / "data" / "samples"
START_TIMEOUT_S = scaled(60.0)

# Quick heartbeats and delivery retries, so the tests need not wait for production intervals.
FAST_ENV = {
    "KTRDR_HOST_HEARTBEAT_INTERVAL_S": "0.5",
    "KTRDR_HOST_DELIVERY_INITIAL_BACKOFF_S": "0.2",
    "KTRDR_HOST_DELIVERY_MAX_BACKOFF_S": "0.5",
    "KTRDR_HOST_DELIVERY_TIMEOUT_S": "20",
    "KTRDR_HOST_SHUTDOWN_GRACE_S": "1",
    # the training stack is imported with the first session (tests/support/processes.py)
    "KTRDR_HOST_WORKER_PRELOAD": "first-run",
}


@dataclass
class HostProcess:
    """A running ``ktrdr host serve`` process."""

    process: subprocess.Popen[bytes]
    address: str
    spool_dir: Path
    log_path: Path
    extra: dict[str, str] = field(default_factory=dict)

    def log(self) -> str:
        return self.log_path.read_text(errors="replace") if self.log_path.exists() else ""

    def signal(self, signum: int) -> None:
        if self.process.poll() is None:
            self.process.send_signal(signum)

    def wait(self, timeout: float) -> int:
        return self.process.wait(timeout)

    def kill(self) -> None:
        if self.process.poll() is None:
            self.process.kill()
            self.process.wait(10)
        if self.process.stdout is not None:
            self.process.stdout.close()


def health_status(address: str, service: str = "", timeout: float = 2.0) -> int:
    with grpc.insecure_channel(address) as channel:
        response = health_pb2_grpc.HealthStub(channel).Check(
            health_pb2.HealthCheckRequest(service=service), timeout=timeout
        )
    return int(response.status)


def _read_address(process: subprocess.Popen[bytes], deadline: float) -> str | None:
    assert process.stdout is not None
    selector = selectors.DefaultSelector()
    selector.register(process.stdout, selectors.EVENT_READ)
    buffer = b""
    try:
        while time.monotonic() < deadline and process.poll() is None:
            if not selector.select(timeout=0.2):
                continue
            chunk = os.read(process.stdout.fileno(), 4096)
            if not chunk:
                return None
            buffer += chunk
            if b"\n" in buffer:
                line = buffer.split(b"\n", 1)[0].decode()
                return line.rsplit(" ", 1)[-1] if "listening on" in line else None
    finally:
        selector.close()
    return None


def start_host_process(
    workdir: Path,
    *,
    spool_dir: Path | None = None,
    max_sessions: int = 1,
    env: dict[str, str] | None = None,
) -> HostProcess:
    """Start a host on a free loopback port and wait until it is SERVING."""
    workdir.mkdir(parents=True, exist_ok=True)
    spool_dir = spool_dir or workdir / "spool"
    log_path = workdir / f"host-{time.monotonic_ns()}.log"
    command = [
        sys.executable,
        "-m",
        "ktrdr.cli.main",
        "host",
        "serve",
        "--address",
        "127.0.0.1:0",
        "--data-dir",
        str(SAMPLE_DATA),
        "--spool-dir",
        str(spool_dir),
        "--max-sessions",
        str(max_sessions),
        "--device",
        "cpu",
    ]
    full_env = {k: v for k, v in os.environ.items() if not k.startswith("KTRDR_HOST_")}
    full_env.update(FAST_ENV)
    full_env.update(parent_environment())  # the host stops if pytest dies
    full_env.update(env or {})
    with open(log_path, "wb") as log:
        process = subprocess.Popen(
            command, cwd=workdir, env=full_env, stdout=subprocess.PIPE, stderr=log
        )
    deadline = time.monotonic() + START_TIMEOUT_S
    address = _read_address(process, deadline)
    host = HostProcess(process, address or "", spool_dir, log_path)
    if address is None:
        host.kill()
        pytest.fail(f"the host did not start; its log:\n{host.log()}")
    while time.monotonic() < deadline:
        try:
            if health_status(address) == health_pb2.HealthCheckResponse.SERVING:
                return host
        except grpc.RpcError:
            pass
        time.sleep(0.05)
    host.kill()
    pytest.fail(f"the host never reported SERVING; its log:\n{host.log()}")


class HostProcesses:
    """Starts hosts and kills every one of them at teardown."""

    def __init__(self, workdir: Path) -> None:
        self.workdir = workdir
        self.started: list[HostProcess] = []

    def start(self, name: str = "host", **kwargs: object) -> HostProcess:
        host = start_host_process(self.workdir / name, **kwargs)  # type: ignore[arg-type]
        self.started.append(host)
        return host

    def kill_all(self) -> None:
        for host in self.started:
            host.kill()


__all__ = ["FAST_ENV", "HostProcess", "HostProcesses", "health_status", "start_host_process"]
