"""Real processes for the e2e tests: a session-wide host and backend driving it
(``host_process``, ``backend_process``), and ``services``: a host and a backend started the
way a user starts them (``LocalServices``), once per test module.
"""

from __future__ import annotations

import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest

from ktrdr.client import LocalServices
from ktrdr.training.v1 import backend_pb2_grpc, host_pb2_grpc
from tests.conftest import EXAMPLE_STRATEGIES, SAMPLE_DATA_DIR
from tests.support.processes import HOST_AUTH_TOKEN, Service, channel_to, start_backend, start_host
from tests.support.timing import scaled


@pytest.fixture(scope="session")
def host_process(tmp_path_factory, sample_data_dir) -> Iterator[Service]:
    service = start_host(tmp_path_factory.mktemp("host"), sample_data_dir)
    yield service
    service.stop()


@pytest.fixture(scope="session")
def backend_process(tmp_path_factory, sample_data_dir, host_process) -> Iterator[Service]:
    service = start_backend(
        tmp_path_factory.mktemp("backend"), sample_data_dir, [host_process.address]
    )
    yield service
    service.stop()


@pytest.fixture
def backend_stub(backend_process) -> Iterator[backend_pb2_grpc.BackendStub]:
    with channel_to(backend_process.address) as channel:
        yield backend_pb2_grpc.BackendStub(channel)


@pytest.fixture
def host_stub(host_process) -> Iterator[host_pb2_grpc.TrainingHostStub]:
    with channel_to(host_process.address, HOST_AUTH_TOKEN) as channel:
        yield host_pb2_grpc.TrainingHostStub(channel)


@pytest.fixture(scope="module")
def services(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[LocalServices]:
    """A host and a backend for one test module, serving the example strategies, or the
    folder the module's ``strategies_for_services(root)`` returns (it may ``pytest.skip``)."""
    root = tmp_path_factory.mktemp("services")
    prepare = getattr(request.module, "strategies_for_services", None)
    strategies: Path = prepare(root) if prepare is not None else EXAMPLE_STRATEGIES
    with LocalServices(
        work_dir=root / "services",
        market_data_dir=SAMPLE_DATA_DIR,
        strategies_dir=strategies,
        startup_timeout_s=scaled(120),
    ) as live:
        yield live


def pytest_collection_finish(session: pytest.Session) -> None:
    """When the MLflow UI test is selected, its venv starts installing now, in the
    background (a minute of mostly waiting on files), instead of when its turn comes."""
    if not any(item.path.name == "test_mlflow_ui.py" for item in session.items):
        return
    from tests.e2e.test_mlflow_ui import start_ui_venv

    root = Path(tempfile.mkdtemp(prefix="ktrdr-mlflow-ui-"))
    early = start_ui_venv(root)
    if early is None:
        return
    session.config._ktrdr_ui_venv = early  # type: ignore[attr-defined]

    def cleanup() -> None:
        early.stop()
        shutil.rmtree(root, ignore_errors=True)

    session.config.add_cleanup(cleanup)
