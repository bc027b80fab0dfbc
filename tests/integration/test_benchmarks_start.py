"""Every benchmark of ``make bench`` gets past its imports (``--help`` in a process of its
own, from another working directory): a benchmark importing a test helper that moved fails
here, not an hour into ``make bench``."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from tests.support.timing import scaled

BENCH_DIR = Path(__file__).resolve().parents[2] / "benchmarks"


def test_every_benchmark_starts(tmp_path: Path) -> None:
    benches = sorted(BENCH_DIR.glob("bench_*.py"))
    running = {
        path.name: subprocess.Popen(
            [sys.executable, str(path), "--help"],
            cwd=tmp_path,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
            text=True,
        )
        for path in benches
    }
    failed = {}
    for name, process in running.items():
        try:
            _, err = process.communicate(timeout=scaled(120))
        except subprocess.TimeoutExpired:
            process.kill()
            _, err = process.communicate()
        if process.returncode != 0:
            failed[name] = err.strip().splitlines()[-1:] or [f"exit {process.returncode}"]
    assert failed == {}
