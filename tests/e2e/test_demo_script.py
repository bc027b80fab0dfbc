"""scripts/demo.py end to end (what ``make demo`` runs), and its cleanup on SIGTERM."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from tests.support.timing import scaled

pytestmark = [pytest.mark.e2e, pytest.mark.integration, pytest.mark.slow]

REPO = Path(__file__).resolve().parents[2]


def _children_alive(work_dir: Path) -> list[str]:
    """ktrdr service processes whose command line or environment points into work_dir."""
    alive = []
    for proc in Path("/proc").iterdir():
        if not proc.name.isdigit():
            continue
        try:
            environ = (proc / "environ").read_bytes()
            cmdline = (proc / "cmdline").read_bytes()
        except OSError:
            continue
        if b"ktrdr.cli.main" in cmdline and str(work_dir).encode() in environ:
            alive.append(proc.name)
    return alive


def test_demo_runs_end_to_end(tmp_path: Path) -> None:
    work = tmp_path / "demo"
    began = time.monotonic()
    done = subprocess.run(
        [sys.executable, "scripts/demo.py", "--epochs", "5", "--work-dir", str(work)],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=scaled(240),
    )
    took = time.monotonic() - began
    assert done.returncode == 0, done.stdout + done.stderr
    out = done.stdout
    assert "mode      host (" in out
    assert "test_accuracy" in out
    assert "== the test period traded (strategy vs baselines)" in out
    assert "buy_and_hold  return" in out and "  verdict: " in out
    assert "== model saved by the backend:" in out
    assert "== models on the backend" in out and "rsi_single" in out
    assert (work / "training.png").read_bytes()[:4] == b"\x89PNG"
    assert "epoch 5/5" in done.stderr  # progress, as lines when not on a terminal
    assert not _children_alive(work)
    assert took < scaled(300), f"demo took {took:.0f} s"  # a bound, not a benchmark


@pytest.mark.skipif(not Path("/proc").exists(), reason="needs /proc to find processes")
def test_demo_stops_services_on_sigterm(tmp_path: Path) -> None:
    work = tmp_path / "demo"
    process = subprocess.Popen(
        [sys.executable, "scripts/demo.py", "--work-dir", str(work)],
        cwd=REPO,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    try:
        deadline = time.monotonic() + scaled(120)
        assert process.stdout is not None
        for line in process.stdout:  # wait until training started
            if "== training" in line or time.monotonic() > deadline:
                break
        time.sleep(1.0)
        process.send_signal(signal.SIGTERM)
        process.wait(timeout=scaled(60))
    finally:
        if process.poll() is None:
            os.kill(process.pid, signal.SIGKILL)
    assert process.returncode == 130
    assert not _children_alive(work)
