"""Collecting the suite imports no training stack (``tests/support/light_collection.py``).

The trainer's own tests (data, features, fuzzy sets, indicators, labels, training) import
the library they test at the top and are left out here.
"""

from __future__ import annotations

import os
import subprocess
import sys

from tests.conftest import REPO_ROOT
from tests.support.timing import scaled

TRAINER_FOLDERS = (
    *(f"tests/unit/{name}" for name in ("data", "features", "fuzzy", "indicators", "labels")),
    "tests/unit/training",
    "tests/integration/training",
)


def test_collecting_the_suite_imports_nothing_heavy() -> None:
    ignores = [f"--ignore={folder}" for folder in TRAINER_FOLDERS]
    plugins = ["-p", "no:cacheprovider", "-p", "no:xdist", "-p", "tests.support.light_collection"]
    done = subprocess.run(
        [sys.executable, "-m", "pytest", "-q", *plugins, "--collect-only", "tests", *ignores],
        cwd=REPO_ROOT,
        capture_output=True,
        text=True,
        timeout=scaled(120),
        env={**os.environ, "PYTHONDONTWRITEBYTECODE": "1"},
    )
    assert done.returncode == 0, done.stdout[-4000:] + done.stderr[-2000:]
    assert "tests collected" in done.stdout
