"""Parked models: listed and resent with ``ktrdr host spool`` (a real CLI process), and a
running host delivers a resent model at its next spool scan (a real in-process Backend)."""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
import sys
from pathlib import Path

from ktrdr.training.result import TrainingResult
from ktrdr.training.v1 import common_pb2
from ktrdr_host.server import start_host
from ktrdr_host.settings import HostSettings
from ktrdr_host.spool import Spool
from tests.support.receiving_backend import start_backend
from tests.support.timing import async_wait_until


def cli(*args: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(sys.path)}
    return subprocess.run(
        [sys.executable, "-m", "ktrdr.cli.main", "host", "spool", *args],
        capture_output=True,
        text=True,
        timeout=60,
        env=env,
        check=False,
    )


def park(spool: Spool, result: TrainingResult, session_id: str, target: str) -> None:
    entry = spool.put(
        result.bundle,
        session_id=session_id,
        results_target=target,
        device="cpu",
        duration_s=1.0,
        metrics={},
        summary={"model_type": "mlp"},
    )
    spool.mark_failed(entry, "refused by the test: FAILED_PRECONDITION")


async def test_resent_model_is_delivered_by_the_running_host(
    tmp_path: Path, host_settings: HostSettings, tiny_result: TrainingResult
) -> None:
    backend = await start_backend(tmp_path / "backend")
    settings = host_settings.model_copy(update={"spool_scan_interval_s": 0.1})
    host = await start_host(settings)
    try:
        spool = Spool(settings.spool_dir)
        park(spool, tiny_result, "op-parked", backend.address)
        listed = await asyncio.to_thread(cli, "list", "--json", "--spool-dir", str(spool.directory))
        assert listed.returncode == 0, listed.stderr
        [row] = json.loads(listed.stdout)
        assert row["state"] == "parked" and row["session_id"] == "op-parked"
        assert "FAILED_PRECONDITION" in row["reason"]
        await asyncio.sleep(0.3)  # scans run meanwhile: a parked model is not delivered
        assert backend.backend.calls == 0

        resent = await asyncio.to_thread(
            cli, "resend", "op-parked", "--spool-dir", str(spool.directory)
        )
        assert resent.returncode == 0, resent.stderr
        await async_wait_until(
            lambda: "op-parked" in backend.backend.models, 10, "the resent model to arrive"
        )
        session = host.registry.get("op-parked")
        assert session.delivery is not None
        await asyncio.wait_for(session.delivery.settled.wait(), 10)
        assert session.delivery.status == common_pb2.DELIVERY_STATUS_DELIVERED
        assert spool.entries() == [] and spool.parked() == []
    finally:
        await host.shutdown()
        await backend.stop()


def test_resend_of_an_unknown_session_says_so(tmp_path: Path) -> None:
    Spool(tmp_path / "spool")
    answer = cli("resend", "nope", "--spool-dir", str(tmp_path / "spool"))
    assert answer.returncode == 1
    assert "no parked model of session 'nope'" in answer.stderr
