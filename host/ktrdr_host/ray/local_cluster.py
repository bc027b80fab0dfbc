"""A Ray cluster of local processes on loopback addresses: for tests, benchmarks and trying
Ray mode on one machine.

It follows the recipe that keeps Ray on loopback: nodes on 127.0.0.2, 127.0.0.3, ... (Ray
rewrites 127.0.0.1 to the machine's outward address), ``HOME`` holding a
``ray_bootstrap_config.yaml`` that says the cluster is local (otherwise the head probes
cloud metadata addresses), one ``RAY_AUTH_MODE=token`` and token for every process, usage
stats off, and each node a ``ray start --block`` process that is stopped by its process id
(never ``ray stop``, which ends every Ray process on the machine).

``env()`` is what a driver (the host) needs in its environment to join this cluster.
"""

from __future__ import annotations

import contextlib
import logging
import os
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

logger = logging.getLogger(__name__)

STOP_GRACE_S = 5.0


def free_port(ip: str) -> int:
    with socket.socket() as sock:
        sock.bind((ip, 0))
        return int(sock.getsockname()[1])


@dataclass
class LocalNode:
    """One ``ray start --block`` process."""

    ip: str
    cpus: int
    process: subprocess.Popen[bytes]
    log: Path

    @property
    def pid(self) -> int:
        return self.process.pid

    def stop(self, sig: int = signal.SIGTERM) -> None:
        """Stop the node: ``ray start --block`` takes its Ray processes down on SIGTERM."""
        if self.process.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(self.process.pid, sig)
            try:
                self.process.wait(STOP_GRACE_S)
            except subprocess.TimeoutExpired:
                logger.warning("Ray node %s (pid %d) lingers; killing it", self.ip, self.pid)
        # whatever the node started is in its process group: nothing may outlive it
        with contextlib.suppress(ProcessLookupError):
            os.killpg(self.process.pid, signal.SIGKILL)
        with contextlib.suppress(subprocess.TimeoutExpired):
            self.process.wait(STOP_GRACE_S)


@dataclass
class LocalRayCluster:
    """A head and further nodes on 127.0.0.2, 127.0.0.3, ...; ``cpus`` per node."""

    cpus: list[int]
    root: Path = field(default_factory=lambda: Path(tempfile.mkdtemp(prefix="ktrdr-ray-")))
    token: str = field(default_factory=lambda: secrets.token_hex(16))
    system_env: dict[str, str] = field(default_factory=dict)  # e.g. RAY_health_check_* values
    nodes: list[LocalNode] = field(default_factory=list)
    port: int = 0

    @property
    def head_ip(self) -> str:
        return "127.0.0.2"

    @property
    def address(self) -> str:
        return f"{self.head_ip}:{self.port}"

    def env(self) -> dict[str, str]:
        """The environment every process of this cluster (and its drivers) runs with."""
        home = self.root / "home"
        home.mkdir(parents=True, exist_ok=True)
        (home / "ray_bootstrap_config.yaml").write_text("provider:\n  type: local\n")
        env = dict(os.environ)
        env.update(
            {
                "HOME": str(home),
                "RAY_AUTH_MODE": "token",
                "RAY_AUTH_TOKEN": self.token,
                "RAY_USAGE_STATS_ENABLED": "0",
            }
        )
        env.update(self.system_env)
        return env

    def _ray(self) -> str:
        ray = Path(sys.executable).with_name("ray")
        return str(ray) if ray.exists() else shutil.which("ray") or "ray"

    def _start(self, ip: str, cpus: int, extra: list[str]) -> LocalNode:
        log = self.root / f"node-{ip}.log"
        with log.open("wb") as out:
            process = subprocess.Popen(
                [
                    self._ray(),
                    "start",
                    "--block",
                    f"--node-ip-address={ip}",
                    f"--num-cpus={cpus}",
                    "--num-gpus=0",
                    "--disable-usage-stats",
                    *extra,
                ],
                env=self.env(),
                stdout=out,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
                start_new_session=True,  # its own process group, stopped as one
            )
        node = LocalNode(ip, cpus, process, log)
        self.nodes.append(node)
        return node

    def start(self, timeout_s: float = 90.0) -> LocalRayCluster:
        """Start the head, then the other nodes; returns once every node has joined."""
        self.port = free_port(self.head_ip)
        temp = self.root / "t"
        self._start(
            self.head_ip,
            self.cpus[0],
            [
                "--head",
                f"--port={self.port}",
                "--include-dashboard=false",
                f"--temp-dir={temp}",
            ],
        )
        self._wait_port(self.head_ip, self.port, timeout_s)
        for index, cpus in enumerate(self.cpus[1:]):
            self.add_node(cpus, f"127.0.0.{3 + index}")
        self.wait_nodes(len(self.cpus), timeout_s)
        return self

    def add_node(self, cpus: int, ip: str) -> LocalNode:
        return self._start(ip, cpus, [f"--address={self.address}"])

    def _wait_port(self, ip: str, port: int, timeout_s: float) -> None:
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            if self.nodes[0].process.poll() is not None:
                raise RuntimeError(f"the Ray head exited: see {self.nodes[0].log}")
            with contextlib.suppress(OSError), socket.create_connection((ip, port), 0.5):
                return
            time.sleep(0.2)
        raise TimeoutError(f"the Ray head did not listen on {ip}:{port} in {timeout_s:.0f} s")

    def wait_nodes(self, count: int, timeout_s: float = 60.0) -> None:
        """Wait until ``count`` nodes are alive, asking the cluster from a short-lived driver."""
        script = (
            "import sys, time, ray\n"
            f"ray.init(address={self.address!r}, _node_ip_address={self.head_ip!r},"
            " logging_level='ERROR', log_to_driver=False)\n"
            f"deadline = time.monotonic() + {timeout_s}\n"
            "while time.monotonic() < deadline:\n"
            "    if sum(1 for n in ray.nodes() if n['Alive']) >= "
            f"{count}: sys.exit(0)\n"
            "    time.sleep(0.3)\n"
            "sys.exit(1)\n"
        )
        done = subprocess.run(
            [sys.executable, "-c", script],
            env=self.env(),
            timeout=timeout_s + 30,
            capture_output=True,
            check=False,
        )
        if done.returncode != 0:
            raise TimeoutError(
                f"the Ray cluster at {self.address} did not reach {count} node(s): "
                f"{done.stderr.decode(errors='replace')[-2000:]}"
            )

    def stop(self, sig: int = signal.SIGTERM) -> None:
        """Stop every node by its process id: the other nodes first, then the head (``sig``
        SIGKILL: the cluster crashes rather than shuts down)."""
        for node in reversed(self.nodes):
            node.stop(sig)

    def cleanup(self) -> None:
        self.stop()
        shutil.rmtree(self.root, ignore_errors=True)


__all__ = ["LocalNode", "LocalRayCluster", "free_port"]
