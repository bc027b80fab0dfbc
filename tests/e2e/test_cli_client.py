"""The ``ktrdr`` client commands as a person runs them, against a live host and backend."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import yaml

from ktrdr.client import LocalServices

pytestmark = [pytest.mark.e2e, pytest.mark.integration]

REPO = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def services(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LocalServices]:
    root = tmp_path_factory.mktemp("cli")
    with LocalServices(
        work_dir=root / "services",
        market_data_dir=REPO / "data" / "samples",
        strategies_dir=REPO / "examples" / "strategies",
    ) as live:
        yield live


def ktrdr(services: LocalServices, *args: str, timeout: float = 120) -> subprocess.CompletedProcess:
    env = {
        **os.environ,
        "KTRDR_BACKEND_ADDRESS": services.backend_address,
        # found as a local user would: the backend's data dir holds its admin token and store
        "KTRDR_BACKEND_DATA_DIR": str(services.work_dir / "backend"),
    }
    return subprocess.run(
        [sys.executable, "-m", "ktrdr.cli.main", *args],
        cwd=REPO,
        env=env,
        capture_output=True,
        text=True,
        timeout=timeout,
    )


def test_train_in_host_mode_then_inspect(services, tiny_strategy_yaml, tmp_path: Path) -> None:
    strategy = tmp_path / "tiny.yaml"
    strategy.write_text(tiny_strategy_yaml)
    done = ktrdr(services, "train", str(strategy), "--mode", "host", "--seed", "7")
    assert done.returncode == 0, done.stderr
    assert "mode host" in done.stderr and "epoch 4/4" in done.stderr
    assert "test_accuracy" in done.stdout and "model saved:" in done.stdout

    listed = json.loads(ktrdr(services, "ops", "list", "--json").stdout)
    op = listed[0]
    assert op["status"] == "completed" and op["mode"] == "host"
    shown = ktrdr(services, "ops", "show", op["operation_id"])
    assert "completed" in shown.stdout and op["operation_id"] in shown.stdout

    plot = tmp_path / "curves.png"
    shown = ktrdr(services, "models", "show", "tiny_rsi", "--plot", str(plot))
    assert shown.returncode == 0, shown.stderr
    assert plot.read_bytes()[:4] == b"\x89PNG" and "BUY" in shown.stdout
    models = ktrdr(services, "models", "list")
    assert "tiny_rsi" in models.stdout
    strategies = json.loads(ktrdr(services, "strategies", "list", "--json").stdout)
    assert {"name": "tiny_rsi", "status": "trained"}.items() <= next(
        s for s in strategies if s["name"] == "tiny_rsi"
    ).items()


def test_config_default_mode(services) -> None:
    shown = json.loads(ktrdr(services, "config", "show", "--json").stdout)
    assert services.host_address in shown["host_addresses"]
    changed = ktrdr(services, "config", "set-default-mode", "local")
    assert changed.returncode == 0 and "-> local" in changed.stdout
    assert json.loads(ktrdr(services, "config", "show", "--json").stdout)["default_mode"] == "local"
    ktrdr(services, "config", "set-default-mode", shown["default_mode"])


def test_errors_are_one_line(services, tmp_path: Path) -> None:
    bad = tmp_path / "bad.yaml"
    bad.write_text("name: bad\nmodel: {}\n")
    done = ktrdr(services, "train", str(bad))
    assert done.returncode == 1
    assert done.stderr.startswith("error: INVALID_ARGUMENT") and done.stderr.count("\n") == 1
    done = ktrdr(services, "ops", "show", "no-such-op")
    assert done.returncode == 1 and done.stderr.startswith("error: NOT_FOUND")


def test_ctrl_c_cancels_on_the_backend(services, tiny_strategy_yaml, tmp_path: Path) -> None:
    strategy = yaml.safe_load(tiny_strategy_yaml)
    strategy["name"] = "long_rsi"
    strategy["model"]["training"]["epochs"] = 400
    strategy["model"]["training"]["early_stopping"]["patience"] = 1000
    path = tmp_path / "long.yaml"
    path.write_text(yaml.safe_dump(strategy))
    env = {
        **os.environ,
        "KTRDR_BACKEND_ADDRESS": services.backend_address,
        "KTRDR_BACKEND_DATA_DIR": str(services.work_dir / "backend"),
    }
    process = subprocess.Popen(
        [sys.executable, "-m", "ktrdr.cli.main", "train", str(path), "--mode", "local"],
        cwd=REPO,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        assert process.stderr is not None
        deadline = time.monotonic() + 90
        for line in process.stderr:
            if "epoch 2/400" in line or time.monotonic() > deadline:
                break
        process.send_signal(signal.SIGINT)
        _, err = process.communicate(timeout=60)
    finally:
        if process.poll() is None:
            process.kill()
    assert process.returncode == 130, err
    assert "interrupted: cancelling operation" in err and ": cancelled" in err
    ops = json.loads(ktrdr(services, "ops", "list", "--strategy", "long_rsi", "--json").stdout)
    assert ops[0]["status"] == "cancelled"
