"""Helpers of the Ray-mode integration tests: a host process in Ray mode, and waiting.

Import as ``from tests.integration.ray.ray_processes import ...``; the fixtures live in the
folder's ``conftest.py``.
"""

from __future__ import annotations

import os
import subprocess
import sys
import threading
import time
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

import grpc
import pytest

from ktrdr.service.parent_watch import parent_environment
from ktrdr.training.v1 import common_pb2, host_pb2, host_pb2_grpc
from ktrdr_host.ray.local_cluster import LocalRayCluster
from tests.support.processes import (
    HOST_AUTH_TOKEN,
    HOST_ROLE_TOKEN,
    Service,
    channel_to,
    free_port,
)
from tests.support.timing import scaled

S = host_pb2

REPO_ROOT = Path(__file__).resolve().parents[3]
SAMPLE_DATA = REPO_ROOT / "data" / "samples"

# Node deaths noticed within ~2 s instead of Ray's default ~30 s.
FAST_NODE_DEATH = {
    "RAY_health_check_initial_delay_ms": "1000",
    "RAY_health_check_period_ms": "500",
    "RAY_health_check_timeout_ms": "1000",
    "RAY_health_check_failure_threshold": "3",
}


def start_ray_host(
    work: Path,
    cluster: LocalRayCluster | None,
    *,
    env_extra: Mapping[str, str] | None = None,
    **settings: str,
) -> Service:
    """``ktrdr host serve --ray-address`` on a free loopback port, SERVING when returned;
    without a cluster, a host training in its own worker processes (for comparisons).
    ``env_extra``: other variables (``OTEL_*``); ``settings``: ``KTRDR_HOST_*`` ones."""
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
            **(env_extra or {}),
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


def host_stub(host) -> tuple[grpc.Channel, host_pb2_grpc.TrainingHostStub]:  # type: ignore[no-untyped-def]
    channel = channel_to(host.address, HOST_AUTH_TOKEN)
    return channel, host_pb2_grpc.TrainingHostStub(channel)


def session(stub, session_id: str) -> host_pb2.Session:  # type: ignore[no-untyped-def]
    return stub.GetSession(S.GetSessionRequest(session_id=session_id), timeout=scaled(5)).session


def start_direct(stub, session_id: str, yaml_text: str, results_target: str) -> Stream:  # type: ignore[no-untyped-def]
    """StartTraining on the host, its stream read in a thread that fills the answer."""
    seen: list[host_pb2.StartTrainingResponse] = []
    errors: list[grpc.RpcError] = []
    call = stub.StartTraining(
        S.StartTrainingRequest(
            session_id=session_id,
            strategy_yaml=yaml_text,
            results_target=results_target,
            overrides=common_pb2.TrainingOverrides(device="cpu", seed=11),
        ),
        timeout=scaled(120),
    )

    def read() -> None:
        try:
            seen.extend(call)
        except grpc.RpcError as exc:  # shown by the test that waits for this stream
            errors.append(exc)

    threading.Thread(target=read, daemon=True).start()
    return Stream(seen, errors)


@dataclass
class Stream:
    """What one StartTraining stream delivered so far, and the error that ended it, if any."""

    responses: list[host_pb2.StartTrainingResponse]
    errors: list[grpc.RpcError]

    def kinds(self) -> list[int]:
        return [r.event.kind for r in list(self.responses)]

    def ended_with(self, kind: int) -> bool:
        return bool(self.responses) and self.responses[-1].event.kind == kind

    def says(self, text: str) -> bool:
        return any(text in r.event.message for r in list(self.responses))


__all__ = [
    "FAST_NODE_DEATH",
    "SAMPLE_DATA",
    "Stream",
    "host_stub",
    "session",
    "start_direct",
    "start_ray_host",
    "wait_for",
]
