"""The README's one-machine Ray recipe ("Host on a Ray cluster"), run as written in a fresh
directory: only the ports (Ray's 6379, the host's address) are substituted and ``.venv/bin``
points at this interpreter's. The host must see a one-node cluster on 127.0.0.2, Ray's
session files must be under ``.ktrdr-host/ray``, and the README's ``kill`` of the two process
ids must leave nothing of Ray running."""

from __future__ import annotations

import os
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from ktrdr_host.ray.local_cluster import free_port

pytestmark = [pytest.mark.integration, pytest.mark.slow]

REPO = Path(__file__).resolve().parents[3]


def one_machine_block() -> str:
    text = (REPO / "README.md").read_text()
    start = text.index("**One machine**")
    match = re.search(r"```bash\n(.*?)```", text[start:], re.S)
    assert match is not None, "no bash block after **One machine** in README.md"
    return match.group(1)


def _alive(pid: int) -> bool:
    """Running (a zombie waiting for its reaper counts as gone)."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return False
    return stat.rsplit(")", 1)[1].split()[0] != "Z"


def _descendants(pid: int) -> set[int]:
    out: set[int] = set()
    todo = [pid]
    while todo:
        parent = todo.pop()
        children = Path(f"/proc/{parent}/task/{parent}/children")
        kids = [int(k) for k in children.read_text().split()] if children.exists() else []
        out.update(kids)
        todo += kids
    return out


@pytest.fixture
def short_dir() -> Iterator[Path]:
    """A working directory with a short path: Ray's socket paths under ``--temp-dir`` must
    stay within 107 bytes, which pytest's own tmp_path may exceed."""
    path = Path(tempfile.mkdtemp(prefix="kr-", dir="/tmp"))
    try:
        yield path
    finally:
        shutil.rmtree(path, ignore_errors=True)


def test_the_one_machine_recipe_runs_as_written(short_dir: Path) -> None:
    tmp_path = short_dir
    block = one_machine_block()
    lines = block.splitlines()
    run_part = "\n".join(line for line in lines if "host capabilities" not in line)
    run_part = run_part.split("\nkill ")[0]  # the test kills by the same ids, below
    ray_port, host_port = free_port("127.0.0.2"), free_port("127.0.0.1")
    bin_dir = str(Path(sys.executable).parent)
    script = run_part.replace("6379", str(ray_port)).replace(".venv/bin", bin_dir)
    script = "set -e\n" + script + '\necho "$RAY_PID $HOST_PID" > pids\n'
    env = {k: v for k, v in os.environ.items() if not k.startswith(("KTRDR_", "RAY_"))}
    env["KTRDR_HOST_ADDRESS"] = f"127.0.0.1:{host_port}"
    env["KTRDR_HOST_DEVICE"] = "cpu"
    started = subprocess.run(
        ["bash", "-c", script], cwd=tmp_path, env=env, capture_output=True, text=True, timeout=60
    )
    assert started.returncode == 0, started.stdout + started.stderr
    ray_pid, host_pid = (int(p) for p in (tmp_path / "pids").read_text().split())
    ray_family: set[int] = set()
    try:
        deadline = time.monotonic() + 120
        while True:
            caps = subprocess.run(
                [f"{bin_dir}/ktrdr", "host", "capabilities", "--address",
                 f"127.0.0.1:{host_port}", "--timeout", "2"],
                cwd=tmp_path, env=env, capture_output=True, text=True, timeout=30,
            )  # fmt: skip
            if caps.returncode == 0 and "(reachable): 1 node(s)" in caps.stdout:
                break
            logs = [
                (tmp_path / ".ktrdr-host" / n).read_text(errors="replace")[-2000:]
                for n in ("ray.log", "host.log")
            ]
            assert time.monotonic() < deadline, (caps.stdout, caps.stderr, logs)
            time.sleep(1)
        assert "127.0.0.2 (head)" in caps.stdout, caps.stdout
        sessions = list((tmp_path / ".ktrdr-host" / "ray").glob("session_2*"))
        assert sessions, "Ray's session files are not under .ktrdr-host/ray"
        ray_family = _descendants(ray_pid)
        assert ray_family, "ray start --block started no Ray processes"
    finally:
        for pid in (host_pid, ray_pid):  # the README's `kill $HOST_PID $RAY_PID`
            if _alive(pid):
                os.kill(pid, signal.SIGTERM)
        deadline = time.monotonic() + 30
        while any(_alive(p) for p in (host_pid, ray_pid, *ray_family)):
            if time.monotonic() > deadline:
                left = [p for p in (host_pid, ray_pid, *ray_family) if _alive(p)]
                for pid in left:
                    os.kill(pid, signal.SIGKILL)
                pytest.fail(f"Ray or the host outlived the README's kill: {left}")
            time.sleep(0.2)
