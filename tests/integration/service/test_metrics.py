"""Prometheus metrics of a real backend and a real host, scraped over real HTTP on loopback.

A host-mode training is held mid-way (its first epoch waits for the test) so the scrape sees it
running; then it finishes, the host delivers the model with SubmitResults, and the counters
must have moved: operations created/finished by mode and status, gRPC calls by method and
code, SubmitResults bytes, sessions, epochs, uploads. Every metric the Grafana dashboard
queries must exist in these scrapes. With metrics off (the default) there is no endpoint and
no interceptor: the metrics module is not even imported.
"""

from __future__ import annotations

import asyncio
import json
import re
import shutil
import subprocess
import sys
import threading
import urllib.request
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from pathlib import Path

import grpc
import pytest
from prometheus_client.parser import text_string_to_metric_families
from pydantic import SecretStr

from ktrdr.config import StrategyConfig
from ktrdr.training.cancellation import CancellationToken
from ktrdr.training.progress import ProgressEvent, ProgressKind
from ktrdr.training.result import TrainingResult
from ktrdr.training.v1 import backend_pb2 as pb
from ktrdr.training.v1 import common_pb2
from ktrdr_host.server import RunningHost, start_host
from ktrdr_host.settings import HostSettings
from tests.support.backend import Backend, start_backend, stop_backend
from tests.support.fake_training import FakeTrainer
from tests.support.timing import async_wait_until, scaled

pytestmark = pytest.mark.integration

REPO = Path(__file__).resolve().parents[3]
DASHBOARD = REPO / "deploy" / "grafana" / "ktrdr.json"
HOST_TOKEN = "metrics-test-host-token"  # what the backend presents to the host
HOST = pb.EXECUTION_MODE_HOST
LOCAL = pb.EXECUTION_MODE_LOCAL


class GatedTrainer:
    """A ``FakeTrainer`` whose first epoch waits until the test opens the gate."""

    device_request = "cpu"

    def __init__(self) -> None:
        self.trainer = FakeTrainer(epoch_s=0.01)
        self.gate = threading.Event()
        self.waiting = threading.Event()

    def run(
        self,
        strategy: StrategyConfig,
        progress: Callable[[ProgressEvent], None] | None = None,
        cancel: CancellationToken | None = None,
        *,
        strategy_yaml: str | None = None,
    ) -> TrainingResult:
        def gated(event: ProgressEvent) -> None:
            if event.kind is ProgressKind.EPOCH and not self.gate.is_set():
                self.waiting.set()
                while not self.gate.wait(0.02):
                    if cancel is not None:
                        cancel.raise_if_cancelled()
            if progress is not None:
                progress(event)

        return self.trainer.run(strategy, gated, cancel, strategy_yaml=strategy_yaml)


@dataclass
class Services:
    backend: Backend
    host: RunningHost
    trainer: GatedTrainer

    @property
    def backend_metrics(self) -> str:
        endpoint = self.backend.app.metrics_endpoint
        assert endpoint is not None
        return f"http://127.0.0.1:{endpoint.port}/metrics"

    @property
    def host_metrics(self) -> str:
        assert self.host.metrics is not None
        return f"http://127.0.0.1:{self.host.metrics.port}/metrics"


async def scrape(url: str) -> str:
    def get() -> str:
        with urllib.request.urlopen(url, timeout=scaled(10)) as response:
            assert response.status == 200
            return str(response.read().decode())

    return await asyncio.to_thread(get)


def samples(text: str) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    """Every sample of a scrape, parsed by the Prometheus text parser."""
    out = {}
    for family in text_string_to_metric_families(text):
        for s in family.samples:
            out[(s.name, tuple(sorted(s.labels.items())))] = s.value
    return out


def value(text: str, name: str, **labels: str) -> float:
    """The sample ``name{labels}`` (0 when absent: a counter nothing has touched yet)."""
    return samples(text).get((name, tuple(sorted(labels.items()))), 0.0)


@pytest.fixture
async def services(tmp_path: Path, sample_data_dir: Path) -> AsyncIterator[Services]:
    trainer = GatedTrainer()
    settings = HostSettings(
        address="127.0.0.1:0",
        data_dir=sample_data_dir,
        spool_dir=tmp_path / "host" / "spool",
        device="cpu",
        max_sessions=1,
        heartbeat_interval_s=0.2,
        delivery_initial_backoff_s=0.05,
        delivery_max_backoff_s=0.2,
        delivery_timeout_s=scaled(20),
        shutdown_grace_s=0,
        auth_token=SecretStr(HOST_TOKEN),
        backend_token_file=tmp_path / "backend" / "host.token",  # the backend writes it
        metrics_address="127.0.0.1:0",
    )
    host = await start_host(settings, executor_factory=lambda device: trainer)
    backend = None
    try:
        backend = await start_backend(
            tmp_path / "backend",
            sample_data_dir,
            host_addresses=[host.address],
            host_token=HOST_TOKEN,
            health_check_timeout_s=scaled(5),
            metrics_address="127.0.0.1:0",
        )
        yield Services(backend, host, trainer)
    finally:
        trainer.gate.set()
        if backend is not None:
            await stop_backend(backend)
        await host.shutdown()


async def operation(backend: Backend, operation_id: str) -> pb.Operation:
    request = pb.GetOperationRequest(operation_id=operation_id)
    return (await backend.stub.GetOperation(request)).operation


async def until_status(backend: Backend, operation_id: str, status: int) -> None:
    async def reached() -> bool:
        return (await operation(backend, operation_id)).status == status

    await async_wait_until(reached, 30, f"operation {operation_id} in status {status}")


async def train(backend: Backend, yaml_text: str, mode: int) -> str:
    request = pb.CreateTrainingRequest(
        strategy_yaml=yaml_text,
        execution_mode=mode,
        overrides=common_pb2.TrainingOverrides(device="cpu"),
    )
    return str((await backend.stub.CreateTraining(request)).operation.operation_id)


async def run_one_of_each(s: Services, yaml_text: str) -> tuple[str, str]:
    """A host training held mid-way (scrapes returned), released, delivered; a local one;
    a download; a refused call. Returns the two scrapes taken at the end."""
    op_id = await train(s.backend, yaml_text, HOST)
    await async_wait_until(s.trainer.waiting.is_set, 30, "the host training's first epoch")
    await until_status(s.backend, op_id, pb.OPERATION_STATUS_RUNNING)
    during_backend, during_host = await scrape(s.backend_metrics), await scrape(s.host_metrics)
    s.trainer.gate.set()
    await until_status(s.backend, op_id, pb.OPERATION_STATUS_COMPLETED)
    local_id = await train(s.backend, yaml_text, LOCAL)
    await until_status(s.backend, local_id, pb.OPERATION_STATUS_COMPLETED)
    done = await operation(s.backend, op_id)
    selector = pb.ModelSelector(strategy_name=done.strategy_name)  # its latest version
    async for _ in s.backend.stub.DownloadModel(pb.DownloadModelRequest(model=selector)):
        pass
    with pytest.raises(grpc.aio.AioRpcError) as refused:
        await operation(s.backend, "no-such-operation")
    assert refused.value.code() == grpc.StatusCode.NOT_FOUND
    return during_backend, during_host


async def test_counters_move_while_operations_run(services: Services, tiny_strategy_yaml: str):
    s = services
    before = await scrape(s.backend_metrics)
    assert value(before, "ktrdr_operations_created_total", mode="host") == 0
    assert value(before, "ktrdr_hosts_configured") == 1

    during, host_during = await run_one_of_each(s, tiny_strategy_yaml)
    # held mid-way: the backend counts it created and active, the host a running session
    assert value(during, "ktrdr_operations_created_total", mode="host") == 1
    assert value(during, "ktrdr_operations_active", mode="host") == 1
    assert value(during, "ktrdr_hosts_available") == 1
    grpc_ok = {"grpc_service": "ktrdr.training.v1.Backend", "grpc_code": "OK"}
    assert value(during, "ktrdr_grpc_server_handled_total", grpc_method="CreateTraining", **grpc_ok)
    assert value(host_during, "ktrdr_host_sessions_active") == 1
    assert value(host_during, "ktrdr_host_sessions_started_total") == 1

    after = await scrape(s.backend_metrics)
    finished = "ktrdr_operations_finished_total"
    assert value(after, finished, mode="host", status="completed") == 1
    assert value(after, finished, mode="local", status="completed") == 1
    assert value(after, "ktrdr_operations_active", mode="host") == 0
    assert value(after, "ktrdr_operation_duration_seconds_count", mode="host", status="completed")
    assert value(after, "ktrdr_operation_queue_wait_seconds_count", mode="local") == 1
    assert value(after, "ktrdr_results_uploads_total", outcome="stored") == 1
    assert value(after, "ktrdr_results_received_bytes_total") > 1000
    assert value(after, "ktrdr_results_upload_duration_seconds_count", outcome="stored") == 1
    assert value(after, "ktrdr_model_download_bytes_total") > 1000
    calls = "ktrdr_grpc_server_handled_total"
    assert value(after, calls, grpc_method="SubmitResults", **grpc_ok) == 1
    assert value(after, calls, grpc_method="DownloadModel", **grpc_ok) == 1
    not_found = {**grpc_ok, "grpc_code": "NOT_FOUND"}
    assert value(after, calls, grpc_method="GetOperation", **not_found) == 1
    timed = {"grpc_service": "ktrdr.training.v1.Backend", "grpc_method": "GetOperation"}
    assert value(after, "ktrdr_grpc_server_handling_seconds_count", **timed) >= 3

    host = await scrape(s.host_metrics)
    epochs = value(host, "ktrdr_host_epochs_total")
    assert epochs >= 2  # the tiny strategy's epochs (the first timed from the train step)
    assert value(host, "ktrdr_host_epoch_duration_seconds_count") == epochs
    assert value(host, "ktrdr_host_sessions_finished_total", outcome="completed") == 1
    assert value(host, "ktrdr_host_sessions_active") == 0
    assert value(host, "ktrdr_host_uploads_total", outcome="delivered") == 1
    assert value(host, "ktrdr_host_upload_bytes_total") > 1000
    host_ok = {"grpc_service": "ktrdr.training.v1.TrainingHost", "grpc_code": "OK"}
    assert value(host, calls, grpc_method="StartTraining", **host_ok) == 1
    assert value(host, calls, grpc_method="GetCapabilities", **host_ok) >= 1
    # no GPU here: the device memory gauges are absent, not zero
    assert "ktrdr_host_device_memory" not in host

    # no unbounded or secret label values: no operation id, token or path in either scrape
    for text in (after, host):
        assert not re.search(r"[0-9a-f]{32}", text)  # operation ids are 32 hex digits
        assert HOST_TOKEN not in text and str(s.backend.settings.data_dir) not in text


async def test_dashboard_queries_name_only_exported_metrics(
    services: Services, tiny_strategy_yaml: str
):
    await run_one_of_each(services, tiny_strategy_yaml)
    exported = set()
    for url in (services.backend_metrics, services.host_metrics):
        for family in text_string_to_metric_families(await scrape(url)):
            exported.update(s.name for s in family.samples)
    used = dashboard_metric_names()
    assert len(used) >= 10, used
    assert used <= exported, f"in the dashboard, not exported: {sorted(used - exported)}"


def dashboard_metric_names() -> set[str]:
    """Every ``ktrdr_*`` metric named in a panel query of the dashboard."""
    board = json.loads(DASHBOARD.read_text())
    names: set[str] = set()
    panels = list(board["panels"])
    while panels:
        panel = panels.pop()
        panels.extend(panel.get("panels", []))
        for target in panel.get("targets", []):
            names.update(re.findall(r"\bktrdr_[a-z0-9_]+", target.get("expr", "")))
    return names


@pytest.mark.skipif(shutil.which("promtool") is None, reason="promtool not installed")
async def test_promtool_check_metrics_passes(services: Services, tiny_strategy_yaml: str):
    await run_one_of_each(services, tiny_strategy_yaml)
    for url in (services.backend_metrics, services.host_metrics):
        text = await scrape(url)
        checked = subprocess.run(
            ["promtool", "check", "metrics"], input=text, capture_output=True, text=True
        )
        assert checked.returncode == 0, checked.stdout + checked.stderr


OFF_SCRIPT = """
import asyncio, sys
from pathlib import Path
import psutil
from tests.support.backend import start_backend, stop_backend
from ktrdr_host.server import start_host
from ktrdr_host.settings import HostSettings

async def main(tmp, data):
    before = {c.laddr.port for c in psutil.Process().net_connections("inet")
              if c.status == psutil.CONN_LISTEN}
    host = await start_host(HostSettings(address="127.0.0.1:0", data_dir=data,
        spool_dir=tmp / "spool", device="cpu", insecure_no_auth=True, worker_spares=0))
    backend = await start_backend(tmp / "backend", data, worker_spares=0)
    listening = {c.laddr.port for c in psutil.Process().net_connections("inet")
                 if c.status == psutil.CONN_LISTEN} - before
    print(sorted(listening))
    print(sorted({host.port, backend.app.port}))
    print(backend.app.metrics, backend.app.metrics_endpoint, host.metrics)
    print(sorted(m for m in sys.modules if m.startswith(("prometheus", "ktrdr.service.metrics",
          "ktrdr.backend.tracking.metrics", "ktrdr_host.metrics"))))
    await stop_backend(backend)
    await host.shutdown()

asyncio.run(main(Path(sys.argv[1]), Path(sys.argv[2])))
"""


def test_metrics_are_off_by_default(tmp_path: Path, sample_data_dir: Path):
    """No port beyond the two gRPC ones, no registry, and nothing of prometheus_client loaded
    (so no interceptor): in a fresh process, where nothing else imported it."""
    out = subprocess.run(
        [sys.executable, "-c", OFF_SCRIPT, str(tmp_path), str(sample_data_dir)],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=scaled(120),
    )
    assert out.returncode == 0, out.stderr[-3000:]
    ports, grpc_ports, objects, modules = out.stdout.strip().splitlines()[-4:]
    assert ports == grpc_ports
    assert objects == "None None None"
    assert modules == "[]"
