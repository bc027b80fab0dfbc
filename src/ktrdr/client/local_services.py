"""Start a training host and a backend as child processes on free loopback ports.

For notebooks, the demo and tests: ``with LocalServices(work_dir) as services: ...`` starts
both, waits until their health checks answer SERVING, and stops them (process groups,
SIGTERM then SIGKILL) on exit, also when the block raises or is interrupted. If this
process dies without stopping them (SIGKILL), they stop by themselves
(``ktrdr.service.parent_watch``).
"""

from __future__ import annotations

import contextlib
import logging
import os
import signal
import socket
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, TYPE_CHECKING

import grpc
from grpc_health.v1 import health_pb2, health_pb2_grpc

from ktrdr.security.tokens import read_token_file
from ktrdr.transfer import grpc_options

if TYPE_CHECKING:
    from ktrdr.client.training_client import TrainingClient

logger = logging.getLogger(__name__)


def free_port(host: str = "127.0.0.1") -> int:
    """A TCP port that was free a moment ago on ``host``."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((host, 0))
        port: int = sock.getsockname()[1]
        return port


def wait_serving(
    address: str, timeout_s: float = 30.0, process: subprocess.Popen | None = None
) -> None:  # type: ignore[type-arg]
    """Poll ``grpc.health.v1`` Check on ``address`` until it answers SERVING."""
    deadline = time.monotonic() + timeout_s
    last = "no answer"
    with grpc.insecure_channel(address, options=grpc_options()) as channel:
        stub = health_pb2_grpc.HealthStub(channel)
        while time.monotonic() < deadline:
            if process is not None and process.poll() is not None:
                raise RuntimeError(f"service for {address} exited with code {process.returncode}")
            try:
                response = stub.Check(health_pb2.HealthCheckRequest(), timeout=1.0)
                if response.status == health_pb2.HealthCheckResponse.SERVING:
                    return
                last = health_pb2.HealthCheckResponse.ServingStatus.Name(response.status)
            except grpc.RpcError as exc:
                last = exc.code().name if hasattr(exc, "code") else str(exc)
            time.sleep(0.1)
    raise RuntimeError(f"{address} not SERVING after {timeout_s:.0f} s (last: {last})")


def stop_process(process: subprocess.Popen, grace_s: float = 10.0) -> None:  # type: ignore[type-arg]
    """SIGTERM the process group, wait ``grace_s``, then SIGKILL it."""
    if process.poll() is not None:
        return
    try:
        os.killpg(process.pid, signal.SIGTERM)
    except ProcessLookupError:
        return
    try:
        process.wait(timeout=grace_s)
    except subprocess.TimeoutExpired:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(process.pid, signal.SIGKILL)
        process.wait(timeout=5)


@dataclass
class LocalServices:
    """A host and a backend started from this Python environment, each in its own process
    group, with data under ``work_dir`` (``backend/``, ``host/``, ``*.log``)."""

    work_dir: Path
    market_data_dir: Path = field(default_factory=lambda: Path("data/samples"))
    strategies_dir: Path | None = None
    start_host: bool = True
    default_mode: str | None = None
    startup_timeout_s: float = 60.0
    backend_address: str = ""
    host_address: str = ""
    processes: list[subprocess.Popen] = field(default_factory=list)  # type: ignore[type-arg]
    _logs: list[IO[bytes]] = field(default_factory=list)

    def start(self) -> LocalServices:
        self.work_dir = Path(self.work_dir).resolve()
        self.work_dir.mkdir(parents=True, exist_ok=True)
        env = {k: v for k, v in os.environ.items() if k != "KTRDR_BACKEND_ADDRESS"}
        market_data = str(Path(self.market_data_dir).resolve())
        try:
            if self.start_host:
                self.host_address = f"127.0.0.1:{free_port()}"
                host_env = {
                    **env,
                    "KTRDR_HOST_ADDRESS": self.host_address,
                    "KTRDR_HOST_DATA_DIR": market_data,
                    "KTRDR_HOST_SPOOL_DIR": str(self.work_dir / "host" / "spool"),
                    # The host's own token is created in host/auth.token at its first start;
                    # it presents the backend's local host token, created at the backend's.
                    "KTRDR_HOST_BACKEND_TOKEN_FILE": str(self.work_dir / "backend" / "host.token"),
                }
                self._spawn("host", ["host", "serve"], host_env)
            self.backend_address = f"127.0.0.1:{free_port()}"
            backend_env = {
                **env,
                "KTRDR_BACKEND_ADDRESS": self.backend_address,
                "KTRDR_BACKEND_DATA_DIR": str(self.work_dir / "backend"),
                "KTRDR_BACKEND_MARKET_DATA_DIR": market_data,
                "KTRDR_BACKEND_HOST_ADDRESSES": self.host_address,
                "KTRDR_BACKEND_RESULTS_ADDRESS": self.backend_address,
                "KTRDR_BACKEND_HOST_TOKEN_FILE": str(self.work_dir / "host" / "auth.token"),
            }
            if self.strategies_dir is not None:
                backend_env["KTRDR_BACKEND_STRATEGIES_DIR"] = str(
                    Path(self.strategies_dir).resolve()
                )
            if self.default_mode:
                backend_env["TRAINING_DEFAULT_MODE"] = self.default_mode
            self._spawn("backend", ["backend", "serve"], backend_env)
            addresses = [a for a in (self.host_address, self.backend_address) if a]
            for address, process in zip(addresses, self.processes, strict=True):
                wait_serving(address, self.startup_timeout_s, process)
        except BaseException:
            self.stop()
            raise
        logger.info("host %s, backend %s", self.host_address, self.backend_address)
        return self

    def _spawn(self, name: str, args: list[str], env: dict[str, str]) -> None:
        from ktrdr.service.parent_watch import parent_environment

        env = {**env, **parent_environment()}  # it stops when this process is gone
        log = (self.work_dir / f"{name}.log").open("ab")
        self._logs.append(log)
        self.processes.append(
            subprocess.Popen(
                [sys.executable, "-m", "ktrdr.cli.main", *args],
                env=env,
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,  # its own process group: killpg reaches its children
            )
        )

    def stop(self) -> None:
        """Stop the backend first (it may still talk to the host), then the host."""
        for process in reversed(self.processes):
            stop_process(process)
        self.processes.clear()
        for log in self._logs:
            log.close()
        self._logs.clear()

    @property
    def admin_token(self) -> str | None:
        """The backend's first admin token (written at its first start, mode 0600)."""
        return read_token_file(self.work_dir / "backend" / "admin.token")

    @property
    def host_token(self) -> str | None:
        """The host's token (written at its first start): what the backend presents to it."""
        return read_token_file(self.work_dir / "host" / "auth.token")

    def client(self, **kwargs: object) -> TrainingClient:
        """A ``TrainingClient`` for this backend, with its admin token."""
        from ktrdr.client.training_client import TrainingClient

        return TrainingClient(self.backend_address, token=self.admin_token, **kwargs)  # type: ignore[arg-type]

    def log_tail(self, name: str, lines: int = 30) -> str:
        path = self.work_dir / f"{name}.log"
        if not path.exists():
            return ""
        return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])

    def __enter__(self) -> LocalServices:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()


__all__ = ["LocalServices", "free_port", "stop_process", "wait_serving"]
