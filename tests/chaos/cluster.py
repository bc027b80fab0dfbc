"""The soak's services: one backend and two training hosts, real processes on loopback ports.

The backend's data directory (``backend.db`` and the model store) is on a small tmpfs when one
can be mounted (the full-disk fault fills it); its log is beside it, on the ordinary disk. Each
host keeps its spool in a directory of its own and reads its host-role token from a file at
every delivery attempt (the token-rotation fault rewrites that file). A killed service is
started again on the same port and directories. Every stretch during which a service is down
(killed, not yet serving again) is recorded, so the health prober does not count a dead
process as a slow one.
"""

from __future__ import annotations

import os
import subprocess
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

from ktrdr.backend.auth.token_store import TokenStore
from ktrdr.security.tokens import generate_token
from tests.support.processes import (
    ADMIN_TOKEN,
    HOST_AUTH_TOKEN,
    Service,
    free_port,
    start_backend,
    start_host,
)

TMPFS_SIZE = "64m"
MAX_UPLOADS = 2  # the backend's upload slots: the slot fault holds them all
BACKEND = "backend"


def host_name(index: int) -> str:
    return f"host{index}"


@dataclass
class DownWindow:
    """A service is down from ``start`` (killed) until ``end`` (serving again; None: still down)."""

    start: float
    end: float | None = None


@dataclass
class Disk:
    """Where the backend's data lives: a mounted tmpfs, or a plain directory with the reason
    a tmpfs could not be mounted."""

    path: Path
    mounted: bool
    why_not: str = ""

    @classmethod
    def mount(cls, path: Path) -> Disk:
        path.mkdir(parents=True, exist_ok=True)
        done = subprocess.run(
            ["mount", "-t", "tmpfs", "-o", f"size={TMPFS_SIZE},mode=0700", "tmpfs", str(path)],
            capture_output=True,
            text=True,
            check=False,
        )
        if done.returncode != 0:
            return cls(path, False, done.stderr.strip() or "mount not permitted")
        return cls(path, True)

    def unmount(self) -> None:
        if self.mounted:
            subprocess.run(["umount", "-l", str(self.path)], check=False, capture_output=True)
            self.mounted = False


@dataclass
class Cluster:
    root: Path
    disk: Disk
    market_data: Path
    backend_port: int = field(default_factory=free_port)
    host_ports: tuple[int, int] = field(default_factory=lambda: (free_port(), free_port()))
    backend: Service | None = None
    hosts: list[Service | None] = field(default_factory=lambda: [None, None])
    down: dict[str, list[DownWindow]] = field(default_factory=dict)
    host_token: str = field(default_factory=generate_token)
    host_token_name: str = "chaos-host-0"
    rotations: int = 0
    _lock: threading.Lock = field(default_factory=threading.Lock)

    # -- addresses and files --

    @property
    def backend_address(self) -> str:
        return f"127.0.0.1:{self.backend_port}"

    def host_address(self, index: int) -> str:
        return f"127.0.0.1:{self.host_ports[index]}"

    @property
    def data_dir(self) -> Path:
        return self.disk.path / "data"

    @property
    def token_file(self) -> Path:
        return self.root / "host-role.token"

    def spool_dir(self, index: int) -> Path:
        return self.root / host_name(index) / "spool"

    def logs(self) -> dict[str, Path]:
        out = {BACKEND: self.root / BACKEND / "backend.log"}
        for i in range(2):
            out[host_name(i)] = self.root / host_name(i) / "host.log"
        return out

    # -- start and stop --

    def start(self) -> None:
        self.data_dir.mkdir(mode=0o700, parents=True, exist_ok=True)
        store = TokenStore(self.data_dir / "backend.db")
        try:
            store.add("chaos-admin", "admin", ADMIN_TOKEN)
            store.add(self.host_token_name, "host", self.host_token)
        finally:
            store.close()
        self._write_token_file(self.host_token)
        for i in range(2):
            self.hosts[i] = self._start_host(i)
        self.backend = self._start_backend()

    def stop(self) -> None:
        """Stop every service this cluster started (SIGTERM, then SIGKILL), by its pid."""
        for service in [self.backend, *self.hosts]:
            if service is not None:
                service.stop()

    def _start_host(self, index: int) -> Service:
        env = {
            "KTRDR_HOST_BACKEND_TOKEN": "",
            "KTRDR_HOST_BACKEND_TOKEN_FILE": str(self.token_file),
            "KTRDR_HOST_SPOOL_SCAN_INTERVAL_S": "1",
            "KTRDR_HOST_AUTH_TOKEN": HOST_AUTH_TOKEN,
        }
        return start_host(
            self.root / host_name(index), self.market_data, port=self.host_ports[index], env=env
        )

    def _start_backend(self) -> Service:
        env = {
            "KTRDR_BACKEND_MAX_CONCURRENT_UPLOADS": str(MAX_UPLOADS),
            "KTRDR_BACKEND_HOST_QUEUE_POLL_S": "1",
        }
        return start_backend(
            self.root / BACKEND,
            self.market_data,
            [self.host_address(0), self.host_address(1)],
            port=self.backend_port,
            default_mode="host",
            env=env,
            data_dir_override=self.data_dir,
            provision=False,
        )

    # -- faults on processes --

    def kill_host(self, index: int, down_s: float) -> None:
        """kill -9 the host, leave it dead ``down_s``, start it again (same port, spool)."""
        service = self.hosts[index]
        assert service is not None
        self._crash(host_name(index), service)
        time.sleep(down_s)  # the fault's length, not a synchronisation
        self.hosts[index] = self._start_host(index)
        self._up(host_name(index))

    def kill_backend(self, down_s: float) -> None:
        """kill -9 the backend, leave it dead ``down_s``, start it again (same port, data)."""
        assert self.backend is not None
        self._crash(BACKEND, self.backend)
        time.sleep(down_s)  # the fault's length, not a synchronisation
        self.backend = self._start_backend()
        self._up(BACKEND)

    def _crash(self, name: str, service: Service) -> None:
        with self._lock:
            self.down.setdefault(name, []).append(DownWindow(time.monotonic()))
        service.stop(crash=True)

    def _up(self, name: str) -> None:
        with self._lock:
            self.down[name][-1].end = time.monotonic()

    def down_windows(self, name: str) -> list[DownWindow]:
        with self._lock:
            return list(self.down.get(name, []))

    # -- the host-role token --

    def rotate_host_token(self) -> str:
        """Add a new host-role token, point the hosts' token file at it, revoke the old one;
        returns the new token's name."""
        new_token = generate_token()
        new_name = f"chaos-host-{self.rotations + 1}"
        store = TokenStore(self.data_dir / "backend.db")
        try:
            store.add(new_name, "host", new_token)
            self._write_token_file(new_token)
            old_name, self.host_token, self.host_token_name = (
                self.host_token_name,
                new_token,
                new_name,
            )
            store.revoke(old_name)
        finally:
            store.close()
        self.rotations += 1
        return new_name

    def _write_token_file(self, token: str) -> None:
        temp = self.token_file.with_suffix(".tmp")
        temp.write_text(token + "\n")
        temp.chmod(0o600)
        os.replace(temp, self.token_file)
