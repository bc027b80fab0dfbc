"""The README's MLflow UI path, as written: ``mlflow server`` from a venv of its own (the
``mlflow-ui`` extra: the full ``mlflow`` package, with the UI) on 127.0.0.1, a backend that
tracks to it over HTTP, a training and a two-trial sweep; then MLflow's REST API on loopback
shows the runs, their metrics and artifacts, the sweep's run with its trials nested, and the
UI's page is served. The server is stopped by its PID.

The venv takes a minute or two (~60 s of CPU) to install; ``$KTRDR_TEST_MLFLOW_UI_VENV`` names
where it lives and is made once (``make test`` names ``.venv-mlflow``, the venv ``make mlflow-ui``
makes and uses; unset: a temporary one per session).
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
    """The mlflow-ui venv at ``venv``, made by a background ``pip install`` unless it holds
    ``bin/mlflow`` already; started when the session has this test (``tests/e2e/conftest.py``),
    so that it installs while the tests before it run (the install is mostly waiting on files).
    Made under a lock (``VENV.lock``): a second suite in the same checkout waits for it."""

    def __init__(self, venv: Path, log: Path) -> None:
        self.venv = venv
        self.log = log
        venv.parent.mkdir(parents=True, exist_ok=True)
        create = f"import venv; venv.EnvBuilder(with_pip=True, clear=True).create({str(venv)!r})"
        make = (
            f'test -x {venv}/bin/mlflow || ({sys.executable} -c "{create}" && {venv}/bin/pip '
            f"install --quiet --disable-pip-version-check '{UI_REQUIREMENT}')"
        )
        with open(self.log, "wb") as out:
            self.process = subprocess.Popen(
                ["flock", f"{venv}.lock", "bash", "-c", make],
                stdout=out,
                stderr=subprocess.STDOUT,
                start_new_session=True,  # stop() ends pip too
            )

    def mlflow(self) -> Path:
        """The venv's ``mlflow``, once the install has finished."""
        try:
            code = self.process.wait(scaled(INSTALL_TIMEOUT_S))
        except subprocess.TimeoutExpired:
            self.stop()
            raise
        assert code == 0, self.log.read_text()[-4000:]
        return self.venv / "bin" / "mlflow"

    def stop(self) -> None:
        if self.process.poll() is None:
            os.killpg(self.process.pid, signal.SIGKILL)
            self.process.wait(10)


def ui_venv_path() -> Path | None:
    """``$KTRDR_TEST_MLFLOW_UI_VENV``: the venv to use, made there once if it is not yet
    (``make test`` names the ``.venv-mlflow`` that ``make mlflow-ui`` uses); None: a
    temporary one for this session."""
    given = os.environ.get("KTRDR_TEST_MLFLOW_UI_VENV")
    return Path(given).resolve() if given else None


def start_ui_venv(root: Path) -> UiVenv | None:
    """The background install, unless the venv to use has ``mlflow`` already."""
    venv = ui_venv_path() or root / "venv"
    return None if (venv / "bin" / "mlflow").exists() else UiVenv(venv, root / "install.log")


@pytest.fixture(scope="module")
def mlflow_bin(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Path:
    early: UiVenv | None = getattr(request.config, "_ktrdr_ui_venv", None)
    if early is not None:
        return early.mlflow()
    given = ui_venv_path()
    if given is not None and (given / "bin" / "mlflow").exists():
        return given / "bin" / "mlflow"
    # the test run on its own (-k, a node id): install now
    root = tmp_path_factory.mktemp("mlflow-ui")
    return UiVenv(given or root / "venv", root / "install.log").mlflow()


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
