"""Helpers of the Ray-mode integration tests: a host process in Ray mode, and waiting.

Import as ``from tests.integration.ray.ray_processes import ...``; the fixtures live in the
folder's ``conftest.py``.
"""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

import grpc
import pytest

from ktrdr.service.parent_watch import parent_environment
from ktrdr_host.ray.local_cluster import LocalRayCluster
from tests.support.processes import HOST_AUTH_TOKEN, HOST_ROLE_TOKEN, Service, free_port

REPO_ROOT = Path(__file__).resolve().parents[3]
SAMPLE_DATA = REPO_ROOT / "data" / "samples"

# Node deaths noticed within ~2 s instead of Ray's default ~30 s.
FAST_NODE_DEATH = {
    "RAY_health_check_initial_delay_ms": "1000",
    "RAY_health_check_period_ms": "500",
    "RAY_health_check_timeout_ms": "1000",
    "RAY_health_check_failure_threshold": "3",
}


def start_ray_host(work: Path, cluster: LocalRayCluster | None, **settings: str) -> Service:
    """``ktrdr host serve --ray-address`` on a free loopback port, SERVING when returned;
    without a cluster, a host training in its own worker processes (for comparisons)."""
    port = free_port()
    work.mkdir(parents=True, exist_ok=True)
    args = ["host", "serve", "--address", f"127.0.0.1:{port}", "--data-dir", str(SAMPLE_DATA)]
    args += ["--spool-dir", str(work / "spool"), "--device", "cpu"]
    base = cluster.env() if cluster is not None else dict(os.environ)
    env = {k: v for k, v in base.items() if not k.startswith("KTRDR_HOST_")}
    if cluster is not None:
        args += ["--ray-address", cluster.address]
        env["KTRDR_HOST_RAY_NODE_IP_ADDRESS"] = cluster.head_ip
    env.update(
        {
            "PYTHONUNBUFFERED": "1",
            "KTRDR_HOST_RAY_HEALTH_INTERVAL_S": "0.5",
            "KTRDR_HOST_RAY_LOST_AFTER_S": "3",
            "KTRDR_HOST_HEARTBEAT_INTERVAL_S": "1",
            "KTRDR_HOST_DELIVERY_INITIAL_BACKOFF_S": "0.2",
            "KTRDR_HOST_DELIVERY_MAX_BACKOFF_S": "0.5",
            "KTRDR_HOST_SHUTDOWN_GRACE_S": "1",
            "KTRDR_HOST_AUTH_TOKEN": HOST_AUTH_TOKEN,
            "KTRDR_HOST_BACKEND_TOKEN": HOST_ROLE_TOKEN,
            **{f"KTRDR_HOST_{k.upper()}": v for k, v in settings.items()},
            **parent_environment(),  # the host stops if pytest dies
        }
    )
    log = work / "host.log"
    with open(log, "ab") as out:
        process = subprocess.Popen(
            [sys.executable, "-m", "ktrdr.cli.main", *args],
            cwd=work,
            stdout=out,
            stderr=subprocess.STDOUT,
            env=env,
        )
    service = Service("ray host" if cluster else "host", f"127.0.0.1:{port}", process, log)
    try:
        service.wait_serving()
    except BaseException:
        service.stop(crash=True)
        raise
    return service


def wait_for(condition, timeout_s: float, what: str, detail=None):  # type: ignore[no-untyped-def]
    """Poll ``condition`` until it returns something truthy; fail naming ``what`` (and
    ``detail()``, what the test knows of the situation)."""
    deadline = time.monotonic() + timeout_s
    while True:
        try:
            value = condition()
        except grpc.RpcError:
            value = None
        if value:
            return value
        if time.monotonic() > deadline:
            known = f": {detail()}" if detail is not None else ""
            pytest.fail(f"timed out after {timeout_s:.0f} s waiting for {what}{known}")
        time.sleep(0.05)


__all__ = ["FAST_NODE_DEATH", "SAMPLE_DATA", "start_ray_host", "wait_for"]
