"""The README walk: README.md's main user flow, run as written, from a fresh working directory.

The working directory is what a user has after cloning (``.venv``, ``examples``, ``data``;
symlinks here), with default settings and relative paths. The commands are taken from the
README's sections by heading and run as written by bash; only the ports (the services listen
where ``KTRDR_HOST_ADDRESS`` / ``KTRDR_BACKEND_ADDRESS`` say, and README addresses are
replaced by those) and the download cache (``KTRDR_CACHE_DIR``, a temporary directory) are
changed. The services start as "Start the services by hand" says, the backend with the MLflow
section's tracking URI in front. Order: in-process training, the services, training through
the backend (host and local, ``--set``), Models (show, download, predict, delete: files
gone), grpcurl (read calls and the model RPCs; the trainings and sweeps it creates are run by
``test_grpcurl_examples.py``), MLflow (runs with metrics and artifacts, read back).
Without a usable grpcurl binary the walk runs the rest and is reported skipped at its end.

Each command's time is printed (``pytest -s``); the whole walk's time is the README's cost
(four 30-epoch trainings of ``rsi_single``).
"""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import grpc
import pytest
from grpc_health.v1 import health_pb2, health_pb2_grpc

from tests.e2e.readme_blocks import (
    README_BACKEND,
    README_HOST,
    REPO_ROOT,
    bash_blocks,
    commands,
    grpcurl_unusable,
)
from tests.support.processes import free_port

pytestmark = [pytest.mark.e2e, pytest.mark.slow]

COMMAND_TIMEOUT_S = 900.0
START_TIMEOUT_S = 90.0
MODELS = Path(".ktrdr/backend/models/rsi_single")
# grpcurl lines left to test_grpcurl_examples.py (each starts a training or a sweep, or needs
# a sweep's id); everything else in the grpcurl section runs here.
GRPCURL_ELSEWHERE = ("Backend/CreateTraining", "Backend/CreateSweep", "SWEEP_ID")


class Walk:
    """A fresh working directory, the environment of a user there, and the commands' times."""

    def __init__(self, cwd: Path) -> None:
        self.cwd = cwd
        self.host_address = f"127.0.0.1:{free_port()}"
        self.backend_address = f"127.0.0.1:{free_port()}"
        env = {k: v for k, v in os.environ.items() if not k.startswith(("KTRDR_", "TRAINING_"))}
        env["KTRDR_RUNTIME_DIR"] = os.environ.get("KTRDR_RUNTIME_DIR", str(cwd / ".run"))
        env["KTRDR_CACHE_DIR"] = str(cwd.parent / "cache")
        env["KTRDR_HOST_ADDRESS"] = self.host_address
        env["KTRDR_BACKEND_ADDRESS"] = self.backend_address
        self.env = env
        self.times: list[tuple[float, str]] = []
        self.services: list[subprocess.Popen[bytes]] = []

    def text(self, command: str) -> str:
        return command.replace(README_HOST, self.host_address).replace(
            README_BACKEND, self.backend_address
        )

    def run(
        self, command: str, *, ok: bool = True, prefix: str = ""
    ) -> subprocess.CompletedProcess[str]:
        script = (prefix + "\n" if prefix else "") + self.text(command)
        started = time.monotonic()
        done = subprocess.run(
            ["bash", "-c", script],
            cwd=self.cwd,
            env=self.env,
            capture_output=True,
            text=True,
            timeout=COMMAND_TIMEOUT_S,
        )
        self.times.append((time.monotonic() - started, command))
        if ok:
            assert done.returncode == 0, (
                f"{command}\n--- stdout\n{done.stdout}\n--- stderr\n{done.stderr}"
            )
        return done

    def start(self, name: str, command: str, address: str, env_prefix: str = "") -> Path:
        log = self.cwd.parent / f"{name}.log"
        started = time.monotonic()
        with open(log, "wb") as out:
            process = subprocess.Popen(
                ["bash", "-c", f"{env_prefix} exec {self.text(command)}"],
                cwd=self.cwd,
                env=self.env,
                stdout=out,
                stderr=subprocess.STDOUT,
            )
        self.services.append(process)
        deadline = time.monotonic() + START_TIMEOUT_S
        with grpc.insecure_channel(address) as channel:
            stub = health_pb2_grpc.HealthStub(channel)
            while True:
                assert process.poll() is None, f"{name} exited:\n{log.read_text()[-3000:]}"
                assert time.monotonic() < deadline, f"{name} not serving:\n{log.read_text()}"
                try:
                    reply = stub.Check(health_pb2.HealthCheckRequest(), timeout=1)
                    if reply.status == health_pb2.HealthCheckResponse.SERVING:
                        break
                except grpc.RpcError:
                    pass
                time.sleep(0.1)
        self.times.append((time.monotonic() - started, command))
        return log

    def stop(self) -> None:
        for process in reversed(self.services):
            if process.poll() is None:
                process.send_signal(signal.SIGTERM)
                try:
                    process.wait(30)
                except subprocess.TimeoutExpired:
                    process.kill()
                    process.wait(10)


@pytest.fixture
def walk(tmp_path: Path) -> Iterator[Walk]:
    cwd = tmp_path / "clone"
    cwd.mkdir()
    for name in (".venv", "examples", "data"):
        (cwd / name).symlink_to(REPO_ROOT / name)
    w = Walk(cwd)
    try:
        yield w
    finally:
        w.stop()
        total = sum(t for t, _ in w.times)
        print(f"\nREADME walk: {total:.1f} s in {len(w.times)} commands")
        for seconds, command in w.times:
            print(f"  {seconds:7.1f} s  {command[:110]}")


@pytest.mark.timeout(1800)  # four 30-epoch trainings: ~2-3 min quiet, far more on a busy box
def test_readme_walk(walk: Walk) -> None:
    import pandas as pd

    cwd = walk.cwd

    # -- Training in-process (no services) -------------------------------------------------
    local = commands(bash_blocks("## Training in-process", 1)[0])
    assert [c.split()[1] for c in local] == ["strategy", "train", "predict"], local
    outputs = [walk.run(command).stdout for command in local]
    assert outputs[0].startswith("valid"), outputs[0]
    assert "model saved: models/rsi_single/EURUSD_1h_v1 (version 1)" in outputs[1], outputs[1]
    assert (cwd / "models/rsi_single/EURUSD_1h_v1/metadata.json").is_file()
    signals = pd.read_csv(cwd / "signals.csv")
    assert set(signals["signal"]) <= {"BUY", "HOLD", "SELL"} and len(signals) > 4000

    # -- Start the services by hand, with MLflow tracking (the MLflow section) ------------
    services = commands(bash_blocks("## Start the services by hand", 1)[0])
    assert len(services) == 2 and "host serve" in services[0] and "backend serve" in services[1]
    # the section's first block; its second (`make mlflow-ui`) is test_mlflow_ui.py's
    mlflow_lines = commands(bash_blocks("## MLflow", 2)[0])
    tracking = re.match(r"((?:\w+=\S+\s+)+)\.venv/bin/ktrdr backend serve", mlflow_lines[0])
    assert tracking, f"the MLflow section no longer starts a backend: {mlflow_lines[0]}"
    host_log = walk.start("host", services[0], walk.host_address)
    backend_log = walk.start("backend", services[1], walk.backend_address, tracking.group(1))
    assert "paths (relative ones taken from" in backend_log.read_text()
    assert (cwd / ".ktrdr/backend/admin.token").is_file()
    assert (cwd / ".ktrdr-host/auth.token").is_file()

    # -- Training through the backend (CLI) ------------------------------------------------
    cli, overrides = bash_blocks("## Training through the backend", 2)
    detached = ""
    for command in commands(cli):
        done = walk.run(command)
        if "--mode host" in command:
            assert "mode host" in done.stderr, done.stderr
            assert "rsi_single v1" in done.stdout + done.stderr
        if "--detach" in command:
            detached = done.stdout.strip().split()[-1]
    assert detached, "the CLI block no longer detaches a training"
    assert (cwd / "training.png").is_file()
    walk.run(f".venv/bin/ktrdr ops watch {detached}")  # 'ops show|watch|cancel OPERATION_ID'
    walk.run(overrides)  # one script: continuation lines and quoting as written
    listed = json.loads(walk.run(".venv/bin/ktrdr models list --json").stdout)
    versions = sorted(m["version"] for m in _versions(listed, "rsi_single"))
    assert versions == [1, 2, 3], listed
    assert all((cwd / MODELS / f"EURUSD_1h_v{v}/metadata.json").is_file() for v in versions)
    _check_mlflow_runs(cwd, count=3)

    # -- Models ----------------------------------------------------------------------------
    for command in commands(bash_blocks("## Models", 1)[0]):
        done = walk.run(command)
        if command.split()[1:3] == ["models", "show"]:
            assert "production" in done.stdout and "accuracy" in done.stdout, done.stdout
        if " predict " in f" {command} ":
            assert "BUY" in done.stdout or "SELL" in done.stdout or "HOLD" in done.stdout
    assert (cwd / "model/metadata.json").is_file() and (cwd / "model/weights.safetensors").is_file()
    assert not (cwd / MODELS / "EURUSD_1h_v2").exists(), "models delete left the files"
    assert (cwd / MODELS / "EURUSD_1h_v3").is_dir()

    # -- grpcurl (where the binary runs; the walk is reported skipped at its end if not) -----
    unusable = grpcurl_unusable()
    if not unusable:
        _grpcurl_section(walk)

    # -- MLflow: the section's read-back line ----------------------------------------------
    shown = walk.run(mlflow_lines[1])
    assert "Empty DataFrame" not in shown.stdout and "run_id" in shown.stdout, shown.stdout
    # nothing was looked up in a doubled or stale place
    for log in (host_log, backend_log):
        assert ".ktrdr/backend/models/.ktrdr" not in log.read_text()
    if unusable:
        pytest.skip(f"the walk ran without its grpcurl section: {unusable}")


def _grpcurl_section(walk: Walk) -> None:
    """README's grpcurl section: the read calls, the model RPCs, an unauthenticated call."""
    cwd = walk.cwd
    calls, model_calls, unauthenticated = bash_blocks("## grpcurl", 3)
    tokens, *lines = commands(calls)
    assert tokens.startswith("TOKEN=$(cat .ktrdr/backend/admin.token)"), tokens
    operations = json.loads(walk.run(".venv/bin/ktrdr ops list --json").stdout)
    host_op = next(o for o in operations if o["mode"] == "host")
    for line in lines:
        if any(marker in line for marker in GRPCURL_ELSEWHERE):
            continue
        out = walk.run(line.replace("OPERATION_ID", host_op["operation_id"]), prefix=tokens)
        if "GetOperation" in line:
            assert "OPERATION_STATUS_COMPLETED" in out.stdout
    for line in commands(model_calls):
        out = walk.run(line, prefix=tokens)
        if "Backend/GetModel" in line:
            assert json.loads(out.stdout)["model"]["version"]["version"] == 1
        if "Backend/DownloadModel" in line:
            assert '"trailer"' in out.stdout
    assert not (cwd / MODELS / "EURUSD_1h_v1").exists(), "DeleteModel left the files"
    refused = walk.run(commands(unauthenticated)[0], ok=False)
    assert refused.returncode != 0 and "Unauthenticated" in refused.stderr, refused.stderr


def _versions(listed: list[dict], strategy: str) -> list[dict]:
    """The entries of ``ktrdr models list --json`` of one strategy."""
    return [m for m in listed if m["strategy"] == strategy]


def _check_mlflow_runs(cwd: Path, *, count: int) -> None:
    """The backend's runs (logged in the background): metrics, the model and the plot."""
    from mlflow.tracking import MlflowClient

    client = MlflowClient(tracking_uri=f"sqlite:///{cwd}/.ktrdr/mlflow.db")
    deadline = time.monotonic() + 120
    while True:
        experiment = client.get_experiment_by_name("ktrdr")
        runs = client.search_runs([experiment.experiment_id]) if experiment else []
        # A run is FINISHED once its artifacts are logged (the tags come first, in one batch).
        done = [
            r
            for r in runs
            if r.info.status == "FINISHED" and r.data.tags.get("ktrdr.status") == "completed"
        ]
        if len(done) >= count:
            break
        assert time.monotonic() < deadline, f"{len(done)} of {count} runs logged: {runs}"
        time.sleep(0.5)
    for run in done:
        metrics = run.data.metrics
        assert "train_loss" in metrics and any(k.startswith("final.") for k in metrics), metrics
        names = {a.path for a in client.list_artifacts(run.info.run_id)}
        assert {"strategy.yaml", "model", "plots"} <= names, names
        model = {Path(a.path).name for a in client.list_artifacts(run.info.run_id, "model")}
        assert {"metadata.json", "weights.safetensors"} <= model, model
