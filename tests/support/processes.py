"""Real ``ktrdr host serve`` / ``ktrdr backend serve`` processes on free loopback ports."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import grpc
from grpc_health.v1 import health_pb2, health_pb2_grpc

from ktrdr.backend.auth.token_store import TokenStore
from ktrdr.security.channels import sync_channel
from ktrdr.security.tokens import generate_token
from ktrdr.service.parent_watch import parent_environment
from tests.support.timing import scaled

REPO_ROOT = Path(__file__).resolve().parents[2]
START_TIMEOUT_S = scaled(60.0)
# The services these helpers start import the training stack with their first run, not at
# start: many never train (or train only elsewhere), and a preload costs ~2-3 s of CPU each.
# The services started as users start them (``LocalServices``: the e2e ``services`` fixture,
# the README walk, the notebook, the demo) keep the default, and
# tests/integration/{backend/test_local_worker,host/test_host_preload}.py prove it works.
WORKER_PRELOAD = "first-run"

# Tokens of this test session: every e2e backend registers the admin and host-role tokens,
# every e2e host requires HOST_AUTH_TOKEN (presented by the backends) and presents
# HOST_ROLE_TOKEN, so any backend of the session can drive any host.
ADMIN_TOKEN = generate_token()
HOST_ROLE_TOKEN = generate_token()
HOST_AUTH_TOKEN = generate_token()


def provision_tokens(data_dir: Path) -> None:
    """Register the session's admin and host tokens in a backend's database (idempotent)."""
    store = TokenStore(data_dir / "backend.db")
    try:
        names = {info.name for info in store.list()}
        if "e2e-admin" not in names:
            store.add("e2e-admin", "admin", ADMIN_TOKEN)
        if "e2e-host" not in names:
            store.add("e2e-host", "host", HOST_ROLE_TOKEN)
    finally:
        store.close()


def channel_to(address: str, token: str | None = ADMIN_TOKEN) -> grpc.Channel:
    """A channel that presents ``token`` (the admin token by default)."""
    return sync_channel(address, token=token)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@dataclass
class Service:
    """One service process; ``stop`` kills it (SIGKILL with ``crash=True``)."""

    name: str
    address: str
    process: subprocess.Popen[bytes]
    log: Path

    def stop(self, *, crash: bool = False) -> None:
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGKILL if crash else signal.SIGTERM)
            try:
                self.process.wait(10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(10)

    def wait_serving(self) -> None:
        deadline = time.monotonic() + START_TIMEOUT_S
        with grpc.insecure_channel(self.address) as channel:
            stub = health_pb2_grpc.HealthStub(channel)
            while time.monotonic() < deadline:
                if self.process.poll() is not None:
                    raise RuntimeError(f"{self.name} exited early:\n{self.log.read_text()[-3000:]}")
                try:
                    reply = stub.Check(health_pb2.HealthCheckRequest(), timeout=scaled(1))
                    if reply.status == health_pb2.HealthCheckResponse.SERVING:
                        return
                except grpc.RpcError:
                    pass
                time.sleep(0.1)
        self.stop()
        raise RuntimeError(
            f"{self.name} not SERVING in {START_TIMEOUT_S} s:\n{self.log.read_text()}"
        )


def _spawn(
    name: str,
    args: list[str],
    port: int,
    log: Path,
    env: dict[str, str],
    cwd: Path = REPO_ROOT,
) -> Service:
    full_env = {**os.environ, "PYTHONUNBUFFERED": "1", **parent_environment(), **env}
    with open(log, "ab") as out:
        process = subprocess.Popen(
            [sys.executable, "-m", "ktrdr.cli.main", *args],
            cwd=cwd,
            stdout=out,
            stderr=subprocess.STDOUT,
            env=full_env,
        )
    service = Service(name, f"127.0.0.1:{port}", process, log)
    try:
        service.wait_serving()
    except BaseException:
        service.stop()
        raise
    return service


def start_host(
    work: Path,
    data_dir: Path,
    *,
    port: int | None = None,
    env: dict[str, str] | None = None,
    flags: list[str] | None = None,
) -> Service:
    """``ktrdr host serve`` on a free loopback port; ``flags`` are more command-line options."""
    port = port or free_port()
    work.mkdir(parents=True, exist_ok=True)
    args = ["host", "serve", "--address", f"127.0.0.1:{port}", "--data-dir", str(data_dir)]
    args += ["--spool-dir", str(work / "spool"), "--device", "cpu", *(flags or [])]
    defaults = {
        "KTRDR_HOST_DELIVERY_MAX_BACKOFF_S": "1",
        "KTRDR_HOST_DELIVERY_INITIAL_BACKOFF_S": "0.5",
        "KTRDR_HOST_AUTH_TOKEN": HOST_AUTH_TOKEN,
        "KTRDR_HOST_BACKEND_TOKEN": HOST_ROLE_TOKEN,
        "KTRDR_HOST_WORKER_PRELOAD": WORKER_PRELOAD,
    }
    return _spawn("host", args, port, work / "host.log", {**defaults, **(env or {})})


def start_backend(
    work: Path,
    data_dir: Path,
    hosts: list[str],
    *,
    port: int | None = None,
    default_mode: str = "local",
    strategies_dir: Path | None = None,
    cwd: Path = REPO_ROOT,
    data_dir_arg: str | None = None,
    env: dict[str, str] | None = None,
    data_dir_override: Path | None = None,
    provision: bool = True,
) -> Service:
    """``work`` holds the log and, unless ``data_dir_override`` is given, the data;
    ``data_dir_arg``: ``--data-dir`` as given (relative to ``cwd``); ``provision=False``
    leaves the tokens to the caller (who registered its own)."""
    port = port or free_port()
    work.mkdir(parents=True, exist_ok=True)
    data = data_dir_override or work
    if provision:
        provision_tokens(data)
    args = ["backend", "serve", "--address", f"127.0.0.1:{port}"]
    args += ["--data-dir", data_dir_arg or str(data)]
    for host in hosts:
        args += ["--host-address", host]
    defaults = {
        "TRAINING_DEFAULT_MODE": default_mode,
        "KTRDR_BACKEND_MARKET_DATA_DIR": str(data_dir),
        "KTRDR_BACKEND_DEVICE": "cpu",
        "KTRDR_BACKEND_HEALTH_CHECK_TIMEOUT_S": "1",
        "KTRDR_BACKEND_HOST_TOKEN": HOST_AUTH_TOKEN,
        "KTRDR_BACKEND_WORKER_PRELOAD": WORKER_PRELOAD,
    }
    if strategies_dir is not None:
        defaults["KTRDR_BACKEND_STRATEGIES_DIR"] = str(strategies_dir)
    return _spawn("backend", args, port, work / "backend.log", {**defaults, **(env or {})}, cwd)
