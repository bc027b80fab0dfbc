"""Fixtures shared by every test folder, and the tiers.

The folder a test lives in is its tier: ``tests/unit`` (one process: no ports, no servers,
no child processes, no real-time waits, no training stack unless the test is about the
trainer; ``tests/unit/conftest.py`` fails a test that starts a gRPC server or a process),
``tests/integration`` (real servers, processes and trainings) and ``tests/e2e`` (the services
as users start them). Tests under ``tests/integration`` and ``tests/e2e`` get the
``integration`` and ``e2e`` markers here, so ``-m "not integration and not e2e"`` selects the
unit tier. ``tests/chaos`` (the chaos soak, ``make chaos``) gets ``chaos`` and is in no tier.
Fixtures that tests of more than one tier use are plugins in ``tests/support``
(``pytest_plugins`` below); helpers of one tier live in that tier's conftest. The per-test
timeout scales with ``KTRDR_TEST_TIME_SCALE`` (``tests/support/timing.py``).
"""

from __future__ import annotations

import os
import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.support.strategies import TINY_STRATEGY_YAML
from tests.support.timing import time_scale

# Fixtures that tests of more than one tier use; these modules import the project only inside
# their fixtures (collecting stays light: tests/integration/test_collection.py).
pytest_plugins = ["tests.support.host_fixtures", "tests.support.model_metadata"]

REPO_ROOT = Path(__file__).resolve().parents[1]
SAMPLE_DATA_DIR = REPO_ROOT / "data" / "samples"
EXAMPLE_STRATEGIES = REPO_ROOT / "examples" / "strategies"


@pytest.fixture(scope="session", autouse=True)
def _runtime_dir(tmp_path_factory) -> Iterator[Path]:
    """Services started by tests record where their tokens are (ktrdr.security.local_records)
    here, not in the user's runtime directory; every process a test starts inherits it."""
    path = tmp_path_factory.mktemp("ktrdr-run")
    before = os.environ.get("KTRDR_RUNTIME_DIR")
    os.environ["KTRDR_RUNTIME_DIR"] = str(path)
    yield path
    if before is None:
        os.environ.pop("KTRDR_RUNTIME_DIR", None)
    else:
        os.environ["KTRDR_RUNTIME_DIR"] = before


TIERS = {
    "integration": pytest.mark.integration,
    "e2e": pytest.mark.e2e,
    "chaos": pytest.mark.chaos,  # the chaos soak: `make chaos`, never part of `make test`
}

# Test files (tmp_path) on a tmpfs where there is one: the backend's SQLite stores sync every
# commit (synchronous=FULL), which on a busy disk made each backend start 0.1-0.2 s of waiting
# (on tmpfs ~0.02 s). PYTEST_DEBUG_TEMPROOT (pytest's own setting, read when the first
# tmp_path is made) or KTRDR_TEST_TMPFS=0 keeps them where they would be.
TMPFS = Path("/dev/shm")
if (
    "PYTEST_DEBUG_TEMPROOT" not in os.environ
    and os.environ.get("KTRDR_TEST_TMPFS", "1") != "0"
    and TMPFS.is_dir()
    and os.access(TMPFS, os.W_OK | os.X_OK)
    and shutil.disk_usage(TMPFS).free > 4 << 30
):
    os.environ["PYTEST_DEBUG_TEMPROOT"] = str(TMPFS)


def pytest_configure(config: pytest.Config) -> None:
    timeout = config.getoption("timeout", None)
    if timeout:
        config.option.timeout = float(timeout) * time_scale()


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    tests_dir = Path(__file__).parent
    for item in items:
        parts = item.path.relative_to(tests_dir).parts
        if parts and parts[0] in TIERS:
            item.add_marker(TIERS[parts[0]])


@pytest.fixture(scope="session")
def repo_root() -> Path:
    return REPO_ROOT


@pytest.fixture(scope="session")
def sample_data_dir() -> Path:
    return SAMPLE_DATA_DIR


@pytest.fixture(scope="session")
def example_strategies() -> Path:
    return EXAMPLE_STRATEGIES


@pytest.fixture(scope="session")
def tiny_strategy_yaml() -> str:
    return TINY_STRATEGY_YAML


@pytest.fixture
def tiny_strategy_dict() -> dict:
    import yaml

    return yaml.safe_load(TINY_STRATEGY_YAML)


@pytest.fixture(autouse=True)
def _model_cache_in_tmp(tmp_path_factory: pytest.TempPathFactory, monkeypatch) -> None:
    """Downloaded models go to a per-session temporary cache, never the user's ~/.cache."""
    monkeypatch.setenv("KTRDR_CACHE_DIR", str(tmp_path_factory.getbasetemp() / "model-cache"))
