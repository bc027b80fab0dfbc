"""Services started by a test run (or by ``LocalServices``, which ``make demo`` uses) stop
when the run stops: on Ctrl-C (SIGINT) and when the run is killed with SIGKILL, so nothing
is left training after an interrupted ``make test``."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest

from tests.conftest import REPO_ROOT, SAMPLE_DATA_DIR
from tests.support.timing import scaled, wait_until

INNER_TEST = """
import os, time
from pathlib import Path

from tests.support.processes import start_backend


def test_holds_a_backend():
    work = Path(os.environ["INNER_WORK"])
    service = start_backend(work / "backend", Path(os.environ["INNER_DATA"]), [])
    try:
        (work / "pids").write_text(str(service.process.pid))
        while True:  # until the run is interrupted or killed from outside
            time.sleep(0.1)
    finally:
        service.stop()
"""

INNER_SCRIPT = """
import os, time
from pathlib import Path

from ktrdr.client import LocalServices

work = Path(os.environ["INNER_WORK"])
services = LocalServices(work / "services", market_data_dir=Path(os.environ["INNER_DATA"]))
services.start()
(work / "pids").write_text(" ".join(str(p.pid) for p in services.processes))
while True:
    time.sleep(0.1)
"""


def alive(pid: int) -> bool:
    """Running (a zombie waiting for a reaper counts as gone)."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except (FileNotFoundError, ProcessLookupError):
        return False
    return stat.rsplit(")", 1)[1].split()[0] != "Z"


@pytest.mark.parametrize(
    ("starter", "sig"),
    [
        ("pytest", signal.SIGINT),
        ("pytest", signal.SIGKILL),
        ("LocalServices", signal.SIGKILL),
    ],
)
def test_services_stop_when_their_starter_stops(
    tmp_path: Path, starter: str, sig: signal.Signals
) -> None:
    work = tmp_path / "work"
    work.mkdir()
    env = {
        **os.environ,
        "PYTHONPATH": os.pathsep.join([str(REPO_ROOT), os.environ.get("PYTHONPATH", "")]),
        "INNER_WORK": str(work),
        "INNER_DATA": str(SAMPLE_DATA_DIR),
    }
    if starter == "pytest":
        (tmp_path / "test_inner.py").write_text(INNER_TEST)
        command = [sys.executable, "-m", "pytest", "-q", "-s", "-p", "no:cacheprovider"]
        command += ["-p", "no:xdist", "-c", os.devnull, "--rootdir", str(tmp_path)]
        command += [str(tmp_path / "test_inner.py")]
    else:
        command = [sys.executable, "-c", INNER_SCRIPT]
    log = (tmp_path / "starter.log").open("wb")
    starter_process = subprocess.Popen(
        command, cwd=REPO_ROOT, env=env, stdout=log, stderr=subprocess.STDOUT
    )
    pids: list[int] = []
    try:
        wait_until(
            lambda: (work / "pids").exists() or starter_process.poll() is not None,
            120,
            "the services to start",
        )
        assert starter_process.poll() is None, (tmp_path / "starter.log").read_text()
        pids = [int(p) for p in (work / "pids").read_text().split()]
        assert pids and all(alive(pid) for pid in pids)
        starter_process.send_signal(sig)
        try:
            starter_process.wait(scaled(120))
        except subprocess.TimeoutExpired:
            log.flush()
            tail = (tmp_path / "starter.log").read_text(errors="replace")[-3000:]
            pytest.fail(f"the starter did not exit within {scaled(120):g} s of {sig.name}:\n{tail}")
        wait_until(
            lambda: not any(alive(pid) for pid in pids),
            60,
            f"services {pids} to stop after {sig.name} of their starter",
        )
    finally:
        if starter_process.poll() is None:
            starter_process.kill()
            starter_process.wait()
        log.close()
        for pid in pids:  # never leave one behind, even when the test fails
            if alive(pid):
                os.kill(pid, signal.SIGKILL)
