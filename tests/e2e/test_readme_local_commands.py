"""The README's in-process commands, run exactly as written (from a scratch directory)."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest

from tests.e2e.readme_blocks import readme_block
from tests.support.timing import scaled

pytestmark = pytest.mark.e2e


def test_readme_in_process_commands_work_as_written(repo_root: Path, tmp_path: Path):
    # a scratch working directory that looks like a fresh clone's root, so models/ and
    # signals.csv land in tmp_path and not in the repository
    import pandas as pd

    for name in (".venv", "examples", "data"):
        (tmp_path / name).symlink_to(repo_root / name)
    commands = readme_block(repo_root, "Training in-process (no services)")
    assert [c.split()[1] for c in commands] == ["strategy", "train", "predict"]
    outputs = []
    for command in commands:
        done = subprocess.run(
            command, shell=True, cwd=tmp_path, capture_output=True, text=True, timeout=scaled(300)
        )
        assert done.returncode == 0, f"{command}\n{done.stdout}\n{done.stderr}"
        outputs.append(done.stdout)
    assert outputs[0].startswith("valid")
    assert "model saved: models/rsi_single/EURUSD_1h_v1 (version 1)" in outputs[1]
    signals = pd.read_csv(tmp_path / "signals.csv")
    assert set(signals["signal"]) <= {"BUY", "HOLD", "SELL"} and len(signals) > 4000
