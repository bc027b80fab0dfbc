"""A backend's stored models with a relative and an absolute data directory, rows written by
older versions, and token discovery with non-default directories: real processes, the CLI.

Issue 18: a backend started with a relative ``--data-dir`` (the README's default) stored model
paths relative to its working directory and joined them to the models root again, so show,
download, predict and delete failed or did nothing. Paths are now store-relative and resolved
in one place; rows of older versions are read as they are.
"""

from __future__ import annotations

import os
import sqlite3
import subprocess
import sys
from pathlib import Path

import pytest

from ktrdr.security.tokens import generate_token, write_token_file
from tests.support.processes import ADMIN_TOKEN, Service, start_backend

pytestmark = pytest.mark.e2e

EPOCHS_2 = "model.training.epochs=2"


def ktrdr(cwd: Path, *args: str, token: str | None = ADMIN_TOKEN, ok: bool = True):
    env = {k: v for k, v in os.environ.items() if not k.startswith("KTRDR_TOKEN")}
    env["KTRDR_RUNTIME_DIR"] = os.environ["KTRDR_RUNTIME_DIR"]
    if token:
        env["KTRDR_TOKEN"] = token
    done = subprocess.run(
        [sys.executable, "-m", "ktrdr", *args],
        cwd=cwd,
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
    )
    if ok:
        assert done.returncode == 0, f"ktrdr {' '.join(args)}\n{done.stdout}\n{done.stderr}"
    return done


@pytest.fixture
def workdir(tmp_path: Path, tiny_strategy_yaml: str) -> Path:
    cwd = tmp_path / "cwd"
    (cwd / "strategies").mkdir(parents=True)
    (cwd / "strategies" / "tiny_rsi.yaml").write_text(tiny_strategy_yaml)
    return cwd


def _backend(cwd: Path, data_dir: str, sample_data_dir: Path) -> Service:
    work = cwd / data_dir if not Path(data_dir).is_absolute() else Path(data_dir)
    return start_backend(
        work,
        sample_data_dir,
        [],
        strategies_dir=cwd / "strategies",
        cwd=cwd,
        data_dir_arg=data_dir,
    )


def _train(cwd: Path, backend: Service, times: int = 1) -> None:
    for _ in range(times):
        ktrdr(cwd, "train", "tiny_rsi", "--set", EPOCHS_2, "--backend", backend.address)


def _use_models(cwd: Path, backend: Service, models: Path, versions: list[int]) -> None:
    """show, download, predict MODEL and delete (files gone) each version, through the CLI."""
    data = Path(__file__).resolve().parents[2] / "data/samples/EURUSD_1h.csv"
    for version in versions:
        model = f"tiny_rsi:{version}"
        directory = models / "tiny_rsi" / f"EURUSD_1h_v{version}"
        assert (directory / "metadata.json").is_file()
        shown = ktrdr(cwd, "models", "show", model, "--backend", backend.address)
        assert "lineage" in shown.stdout and "accuracy" in shown.stdout, shown.stdout
        out = cwd / f"download-v{version}"
        ktrdr(cwd, "models", "download", model, "--out", str(out), "--backend", backend.address)
        assert (out / "weights.safetensors").is_file()
        signals = cwd / f"signals-v{version}.csv"
        ktrdr(cwd, "predict", model, "--data", str(data), "--out", str(signals),
              "--backend", backend.address)  # fmt: skip
        assert signals.stat().st_size > 0
        ktrdr(cwd, "models", "delete", model, "--backend", backend.address)
        assert not directory.exists(), f"models delete left {directory}"
    assert not list((models / ".trash").iterdir())


@pytest.mark.parametrize("relative", [True, False], ids=["relative", "absolute"])
def test_data_dir_relative_and_absolute(workdir: Path, sample_data_dir, relative: bool):
    data_dir = "state/backend" if relative else str(workdir.parent / "abs-backend")
    backend = _backend(workdir, data_dir, sample_data_dir)
    try:
        _train(workdir, backend)
        models = (workdir / data_dir if relative else Path(data_dir)) / "models"
        assert not (models / "state").exists()  # no doubled root
        db = sqlite3.connect(models.parent / "backend.db")
        assert db.execute("SELECT path FROM models").fetchall() == [("tiny_rsi/EURUSD_1h_v1",)]
        db.close()
        _use_models(workdir, backend, models, [1])
    finally:
        backend.stop()
    log = (models.parent / "backend.log").read_text()
    assert f"data_dir={models.parent}" in log  # made absolute and logged at start


def test_rows_written_by_older_versions(workdir: Path, sample_data_dir):
    """A database whose rows hold what older backends recorded: the path relative to the
    working directory of the time (relative data dir) and an absolute one."""
    data_dir = "state/backend"
    backend = _backend(workdir, data_dir, sample_data_dir)
    try:
        _train(workdir, backend, times=2)
    finally:
        backend.stop()
    root = workdir / data_dir
    legacy = {
        1: f"{data_dir}/models/tiny_rsi/EURUSD_1h_v1",
        2: str(root / "models/tiny_rsi/EURUSD_1h_v2"),
    }
    db = sqlite3.connect(root / "backend.db")
    with db:
        for version, path in legacy.items():
            db.execute("UPDATE models SET path = ? WHERE version = ?", (path, version))
            db.execute(
                "UPDATE operations SET model_path = ? WHERE model_version = ?", (path, version)
            )
    db.close()
    backend = _backend(workdir, data_dir, sample_data_dir)
    try:
        _use_models(workdir, backend, root / "models", [1, 2])
    finally:
        backend.stop()


def test_token_discovery_follows_the_services_dirs(workdir: Path, sample_data_dir):
    """Stale token files in the working directory (an earlier run with the defaults) are not
    used: the client finds the admin token of the backend it talks to (its data dir is
    elsewhere), and the backend presents the token of the host it calls (its spool dir is
    elsewhere), both through the records the services wrote for their ports."""
    from tests.support.processes import _spawn, free_port

    write_token_file(workdir / ".ktrdr/backend/admin.token", generate_token())  # stale
    write_token_file(workdir / ".ktrdr-host/auth.token", generate_token())  # stale
    port = free_port()
    host = _spawn(
        "host",
        ["host", "serve", "--address", f"127.0.0.1:{port}", "--data-dir", str(sample_data_dir),
         "--spool-dir", "elsewhere/host/spool", "--device", "cpu"],
        port,
        workdir.parent / "host.log",
        {"KTRDR_HOST_BACKEND_TOKEN_FILE": str(workdir / "elsewhere/backend/host.token")},
        workdir,
    )  # fmt: skip
    backend_port = free_port()
    backend = _spawn(
        "backend",
        ["backend", "serve", "--address", f"127.0.0.1:{backend_port}",
         "--data-dir", "elsewhere/backend", "--host-address", host.address],
        backend_port,
        workdir.parent / "backend.log",
        {"KTRDR_BACKEND_STRATEGIES_DIR": str(workdir / "strategies"),
         "KTRDR_BACKEND_MARKET_DATA_DIR": str(sample_data_dir), "KTRDR_BACKEND_DEVICE": "cpu"},
        workdir,
    )  # fmt: skip
    try:
        listed = ktrdr(workdir, "ops", "list", "--backend", backend.address, token=None)
        assert listed.returncode == 0
        trained = ktrdr(workdir, "train", "tiny_rsi", "--mode", "host", "--set", EPOCHS_2,
                        "--backend", backend.address, token=None)  # fmt: skip
        assert "mode host" in trained.stderr, trained.stderr
        assert (workdir / "elsewhere/backend/models/tiny_rsi/EURUSD_1h_v1").is_dir()
    finally:
        backend.stop()
        host.stop()
    backend_log = (workdir.parent / "backend.log").read_text()
    assert f"the token in {workdir / 'elsewhere/host/auth.token'}" in backend_log, backend_log
    assert str(workdir / ".ktrdr-host/auth.token") not in backend_log
