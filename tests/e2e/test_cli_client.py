"""The ``ktrdr`` client commands as a person runs them, against a live host and backend."""

from __future__ import annotations

import json
import os
import random
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest
import yaml

from ktrdr.client import LocalServices
from tests.support.timing import scaled

pytestmark = [pytest.mark.e2e, pytest.mark.integration]

REPO = Path(__file__).resolve().parents[2]


def ktrdr(services: LocalServices, *args: str, timeout: float = 120) -> subprocess.CompletedProcess:
    env = {
        **os.environ,
        "KTRDR_BACKEND_ADDRESS": services.backend_address,
        # found as a local user would: the backend data dir holds its admin token and store
        "KTRDR_BACKEND_DATA_DIR": str(services.work_dir / "backend"),
    }
    return subprocess.run(
        [sys.executable, "-m", "ktrdr.cli.main", *args],
        cwd=REPO,
        env=env,
        capture_output=True,
        text=True,
        timeout=scaled(timeout),
    )


def test_train_in_host_mode_then_inspect(services, tiny_strategy_yaml, tmp_path: Path) -> None:
    strategy = tmp_path / "tiny.yaml"
    strategy.write_text(tiny_strategy_yaml)
    done = ktrdr(services, "train", str(strategy), "--mode", "host", "--seed", "7")
    assert done.returncode == 0, done.stderr
    assert "mode host" in done.stderr and "epoch 4/4" in done.stderr
    assert "test accuracy  " in done.stdout and "model saved:" in done.stdout
    assert "trained on cpu on host 127.0.0.1:" in done.stdout

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


class _Cli:
    """A ``ktrdr`` subprocess whose output (stderr and stdout together) is read as it comes."""

    def __init__(self, args: list[str], env: dict[str, str]) -> None:
        self.process = subprocess.Popen(
            [sys.executable, "-m", "ktrdr.cli.main", *args],
            cwd=REPO,
            env={**env, "PYTHONUNBUFFERED": "1"},
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
        )
        self._output = ""
        self._ended = False
        self._changed = threading.Condition()
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()

    def _read(self) -> None:
        assert self.process.stdout is not None
        while chunk := self.process.stdout.read1(65536):
            with self._changed:
                self._output += chunk.decode(errors="replace")
                self._changed.notify_all()
        with self._changed:
            self._ended = True
            self._changed.notify_all()

    @property
    def output(self) -> str:
        with self._changed:
            return self._output

    def wait_for(self, text: str, timeout: float = 60) -> None:
        """Until the output contains ``text``; fails if it ends or time runs out first."""
        with self._changed:
            self._changed.wait_for(lambda: text in self._output or self._ended, scaled(timeout))
            found = text in self._output
        assert found, f"no {text!r} in the output of ktrdr:\n{self.output[-3000:]}"

    def finish(self, timeout: float = 60) -> int:
        try:
            code = self.process.wait(scaled(timeout))
        finally:
            if self.process.poll() is None:
                self.process.kill()
                self.process.wait()
        self._reader.join(scaled(10))
        return code


def _long_strategy(tiny_strategy_yaml: str, name: str, epochs: int = 2000) -> str:
    strategy = yaml.safe_load(tiny_strategy_yaml)
    strategy["name"] = name
    strategy["model"]["training"]["epochs"] = epochs
    strategy["model"]["training"]["early_stopping"]["patience"] = 100_000
    return yaml.safe_dump(strategy)


# Where each Ctrl-C lands: after this text appears, plus a random delay of up to that long.
_MOMENTS = {
    "connect": ("to create a training operation", 0.15),  # before or during CreateTraining
    "steps": (", mode ", 0.3),  # the operation was created: its first steps (or queued)
    "epochs": ("training: epoch ", 1.0),
}


def test_ctrl_c_always_cancels_on_the_backend(services, tiny_strategy_yaml, tmp_path: Path) -> None:
    """12 Ctrl-Cs at seeded random moments (each moment three times locally, once on a host):
    each run exits 130 and its operation ends CANCELLED, or was never created when the Ctrl-C
    came before CreateTraining was sent."""
    rng = random.Random(20260808)
    env = {
        **os.environ,
        "KTRDR_BACKEND_ADDRESS": services.backend_address,
        # found as a local user would: the backend data dir holds its admin token and store
        "KTRDR_BACKEND_DATA_DIR": str(services.work_dir / "backend"),
    }
    client = services.client()
    try:
        for run in range(12):
            moment = ("connect", "steps", "epochs")[run % 3]
            mode = "host" if run % 4 == 3 else "local"
            name = f"ctrl_c_{run}"
            path = tmp_path / f"{name}.yaml"
            path.write_text(_long_strategy(tiny_strategy_yaml, name))
            marker, max_delay = _MOMENTS[moment]
            what = f"run {run}: Ctrl-C at {moment}, mode {mode}"
            cli = _Cli(["-v", "train", str(path), "--mode", mode], env)
            try:
                cli.wait_for(marker)
                time.sleep(rng.uniform(0, max_delay))  # a random moment after the marker
                cli.process.send_signal(signal.SIGINT)
                code = cli.finish()
            finally:
                if cli.process.poll() is None:
                    cli.process.kill()
            out = cli.output
            assert code == 130, f"{what}: exit {code}\n{out[-3000:]}"
            ops = client.operations(strategy=name)
            if not ops:
                assert moment == "connect", f"{what}: no operation\n{out[-3000:]}"
                assert "interrupted: no operation was created" in out, f"{what}\n{out[-3000:]}"
                continue
            assert len(ops) == 1 and ops[0].status == "cancelled", f"{what}: {ops}\n{out[-3000:]}"
            assert f"operation {ops[0].operation_id}: cancelled" in out, f"{what}\n{out[-3000:]}"
    finally:
        client.close()


def test_ctrl_c_cancels_in_process_training(tiny_strategy_yaml, tmp_path: Path) -> None:
    """``ktrdr train --local``: Ctrl-C stops the run through its cancellation token."""
    path = tmp_path / "long.yaml"
    path.write_text(_long_strategy(tiny_strategy_yaml, "long_local"))
    models = tmp_path / "models"
    args = ["train", str(path), "--local", "--models-dir", str(models)]
    cli = _Cli([*args, "--data-dir", str(REPO / "data" / "samples")], dict(os.environ))
    cli.wait_for("epoch 1/")  # stderr is a pipe: one plain line per epoch, no bars
    cli.process.send_signal(signal.SIGINT)
    code = cli.finish()
    assert code == 130, cli.output[-3000:]
    assert "interrupted: training cancelled" in cli.output
    assert not any(models.rglob("*.pt")) if models.exists() else True
