"""The README's MLflow UI path, as written: ``mlflow server`` from a venv of its own (the
``mlflow-ui`` extra: the full ``mlflow`` package, with the UI) on 127.0.0.1, a backend that
tracks to it over HTTP, a training and a two-trial sweep; then MLflow's REST API on loopback
shows the runs, their metrics and artifacts, the sweep's run with its trials nested, and the
UI's page is served. The server is stopped by its PID.

The venv takes a minute or two to install the first time; ``$KTRDR_TEST_MLFLOW_UI_VENV``
names one made before (``python3 -m venv DIR && DIR/bin/pip install 'mlflow>=3.10'``).
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from ktrdr.client import TrainingClient
from tests.support.processes import ADMIN_TOKEN, free_port, start_backend
from tests.support.timing import scaled

pytestmark = [pytest.mark.e2e, pytest.mark.slow]

INSTALL_TIMEOUT_S = 480
UI_REQUIREMENT = "mlflow>=3.10"  # the mlflow-ui extra of pyproject.toml


class UiVenv:
    """The mlflow-ui venv being made by a background ``pip install``, started when the
    session has this test (``tests/e2e/conftest.py``), so that it installs while the
    tests before it run (the install is mostly waiting on files)."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self.log = root / "install.log"
        root.mkdir(parents=True, exist_ok=True)
        script = (
            f"{sys.executable} -c 'import venv; venv.EnvBuilder(with_pip=True, clear=True)"
            f'.create("{root}/venv")\' && {root}/venv/bin/pip install --quiet '
            f"--disable-pip-version-check '{UI_REQUIREMENT}'"
        )
        with open(self.log, "wb") as out:
            self.process = subprocess.Popen(
                ["bash", "-c", script], stdout=out, stderr=subprocess.STDOUT
            )

    def mlflow(self) -> Path:
        """The venv's ``mlflow``, once the install has finished."""
        try:
            code = self.process.wait(scaled(INSTALL_TIMEOUT_S))
        except subprocess.TimeoutExpired:
            self.stop()
            raise
        assert code == 0, self.log.read_text()[-4000:]
        return self.root / "venv" / "bin" / "mlflow"

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.kill()
            self.process.wait(10)


def start_ui_venv(root: Path) -> UiVenv | None:
    """The background install, unless ``$KTRDR_TEST_MLFLOW_UI_VENV`` names a venv made
    before."""
    return None if os.environ.get("KTRDR_TEST_MLFLOW_UI_VENV") else UiVenv(root)


@pytest.fixture(scope="module")
def mlflow_bin(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Path:
    given = os.environ.get("KTRDR_TEST_MLFLOW_UI_VENV")
    if given:
        return Path(given) / "bin" / "mlflow"
    early: UiVenv | None = getattr(request.config, "_ktrdr_ui_venv", None)
    if early is None:  # the test run on its own (-k, a node id): install now
        early = UiVenv(tmp_path_factory.mktemp("mlflow-ui"))
    return early.mlflow()


def _http(url: str, body: dict[str, Any] | None = None) -> Any:
    data = json.dumps(body).encode() if body is not None else None
    request = urllib.request.Request(url, data=data, headers={"Content-Type": "application/json"})
    with urllib.request.urlopen(request, timeout=10) as response:
        text = response.read().decode()
    return json.loads(text) if text.lstrip().startswith("{") else text


@pytest.fixture
def mlflow_server(mlflow_bin: Path, tmp_path: Path) -> Iterator[str]:
    """``mlflow server`` on 127.0.0.1 as the README starts it; its URL."""
    port = free_port()
    store = tmp_path / "mlflow"
    store.mkdir()
    log = open(store / "server.log", "wb")  # noqa: SIM115 - closed below
    process = subprocess.Popen(
        [str(mlflow_bin), "server", "--host", "127.0.0.1", "--port", str(port),
         "--backend-store-uri", f"sqlite:///{store}/mlflow.db",
         "--artifacts-destination", str(store / "artifacts"), "--workers", "1"],
        stdout=log, stderr=subprocess.STDOUT, cwd=tmp_path, start_new_session=True,
    )  # fmt: skip
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 120
        while True:
            assert process.poll() is None, (store / "server.log").read_text()[-3000:]
            assert time.monotonic() < deadline, (store / "server.log").read_text()[-3000:]
            try:
                if "OK" in str(_http(f"{url}/health")):
                    break
            except (urllib.error.URLError, ConnectionError, TimeoutError):
                time.sleep(0.2)
        yield url
    finally:
        # the server's own PID and its worker children (its process group, which it leads)
        if process.poll() is None:
            os.killpg(process.pid, signal.SIGTERM)
            try:
                process.wait(15)
            except subprocess.TimeoutExpired:
                os.killpg(process.pid, signal.SIGKILL)
                process.wait(10)
        log.close()


def _runs(url: str, experiment_id: str, kind: str) -> list[dict[str, Any]]:
    found = _http(
        f"{url}/api/2.0/mlflow/runs/search",
        {"experiment_ids": [experiment_id], "filter": f"tags.`ktrdr.kind` = '{kind}'"},
    )
    return list(found.get("runs", []))


def _tags(run: dict[str, Any]) -> dict[str, str]:
    return {t["key"]: t["value"] for t in run["data"].get("tags", [])}


def test_the_mlflow_ui_shows_trainings_and_sweeps(
    mlflow_server: str,
    tmp_path: Path,
    sample_data_dir: Path,
    tiny_strategy_yaml: str,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("KTRDR_BACKEND_MLFLOW_TRACKING_URI", mlflow_server)
    backend = start_backend(tmp_path / "backend", sample_data_dir, [])
    try:
        with TrainingClient(backend.address, token=ADMIN_TOKEN) as client:
            trained = client.train(tiny_strategy_yaml, mode="local", seed=7, progress=False)
            assert trained.status == "completed", trained.error_message
            client.sweep(
                tiny_strategy_yaml,
                {"model.training.learning_rate": "float:1e-3:1e-1:log"},
                trials=2,
                parallel=1,
                objective="val_loss:min",
                fields={"model.training.epochs": 2},
            )
        experiments = _http(
            f"{mlflow_server}/api/2.0/mlflow/experiments/search", {"max_results": 10}
        )
        names = {e["name"]: e["experiment_id"] for e in experiments["experiments"]}
        assert "ktrdr" in names, names
        ktrdr = names["ktrdr"]
        deadline = time.monotonic() + 120  # the backend logs in the background
        while True:
            trainings, trials = (
                _runs(mlflow_server, ktrdr, "training"),
                _runs(mlflow_server, ktrdr, "trial"),
            )
            sweeps = [
                r for r in _runs(mlflow_server, ktrdr, "sweep") if r["info"]["status"] != "RUNNING"
            ]
            if trainings and len(trials) == 2 and sweeps:
                break
            assert time.monotonic() < deadline, (trainings, trials, sweeps)
            time.sleep(0.5)
        run = trainings[0]
        assert _tags(run)["ktrdr.operation_id"] == trained.operation_id
        metrics = {m["key"] for m in run["data"]["metrics"]}
        assert {"val_loss", "train_loss"} <= metrics, metrics
        query = urllib.parse.urlencode({"run_id": run["info"]["run_id"]})
        artifacts = _http(f"{mlflow_server}/api/2.0/mlflow/artifacts/list?{query}")
        paths = {f["path"] for f in artifacts.get("files", [])}
        assert {"model", "strategy.yaml"} <= paths, paths
        sweep_run = sweeps[0]["info"]["run_id"]
        assert {_tags(t)["mlflow.parentRunId"] for t in trials} == {sweep_run}
        page = _http(f"{mlflow_server}/")
        assert "<html" in page.lower() and "Unable to display MLflow UI" not in page
    finally:
        backend.stop()
