"""Smoke test of benchmarks/bench_security.py with minimal sizes (no timing is checked)."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from tests.support.timing import scaled

pytestmark = [
    pytest.mark.integration,
    pytest.mark.skipif(shutil.which("openssl") is None, reason="needs the openssl command"),
]

SCRIPT = Path(__file__).resolve().parents[2] / "benchmarks" / "bench_security.py"


def test_bench_security_runs_and_prints_the_ratio_table() -> None:
    result = subprocess.run(
        [sys.executable, str(SCRIPT), "--rounds", "1", "--calls", "5", "--mb", "1"],
        capture_output=True,
        text=True,
        timeout=scaled(120),
        check=False,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    lines = result.stdout.splitlines()
    rows = [line for line in lines if "A: plaintext, no auth" in line and "@ratio" not in line]
    assert len(rows) == 6, result.stdout  # 3 configurations x (latency, throughput)
    assert all(line.rstrip().endswith("(1)") for line in rows), result.stdout
    collected = [line for line in lines if line.startswith("@ratio\t")]
    assert len(collected) == 6, result.stdout  # the same ratios, for make bench's table
