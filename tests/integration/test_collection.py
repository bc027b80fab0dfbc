"""Collecting the suite imports no training stack (``tests/support/light_collection.py``).

Every test folder is collected, the trainer's own tests (data, features, fuzzy sets,
indicators, labels, training) too: they import pandas, torch, TA-Lib and the trainer's
modules inside the tests and fixtures that use them, so an xdist worker collecting the unit
tier pays for none of it. A heavy import back at a module's top fails this test, naming it.
"""

from __future__ import annotations

import os
import subprocess
import sys

from tests.conftest import REPO_ROOT
from tests.support.timing import scaled


def test_collecting_the_suite_imports_nothing_heavy() -> None:
    plugins = ["-p", "no:cacheprovider", "-p", "no:xdist", "-p", "tests.support.light_collection"]
    done = subprocess.run(
        [sys.executable, "-m", "pytest", "-q", *plugins, "--collect-only", "tests"],
        cwd=REPO_ROOT,
        capture_output=True,
        text=True,
        timeout=scaled(120),
        env={**os.environ, "PYTHONDONTWRITEBYTECODE": "1"},
    )
    assert done.returncode == 0, done.stdout[-4000:] + done.stderr[-2000:]
    assert "tests collected" in done.stdout
    assert "error" not in done.stdout.splitlines()[-1], done.stdout[-4000:]
